"""Storage layer: asyncpg pools, SQL per domain, the ingest writer, migrations,
embedded PostgreSQL and TimescaleDB detection. Nothing here imports graph/ or resolvers/."""
