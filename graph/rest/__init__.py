"""REST routes: the Seentics-compatible API (thin adapters over resolvers/)."""
