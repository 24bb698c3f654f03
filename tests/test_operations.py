"""Operational parts of the write path: GeoIP and proxies, health, migrations run
concurrently, retention, website administration."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import asyncpg
import httpx
import pytest

from db.migrate import OUTSIDE_TRANSACTION, discover, migrate
from db.queries.retention import delete_older_than
from graph.app import create_app
from graph.settings import Settings
from tests.conftest import ADMIN_DSN, gql, make_website
from tests.test_write_path import iso, tracker_event

BATCH = "/api/v1/analytics/event/batch"


@pytest.fixture(scope="module")
def geoip_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    path = tmp_path_factory.mktemp("geo") / "test-city.mmdb"
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City",
                        languages=["en"], description="footfall test")  # fmt: skip
    writer.insert_network(IPSet(["198.51.100.0/24"]),
                          {"country": {"iso_code": "JP"}, "city": {"names": {"en": "Osaka"}}})  # fmt: skip
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
async def proxied_client(settings: Settings, geoip_db: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app behind a trusted proxy (the test client's 203.0.113.7) with a GeoIP file."""
    app = create_app(settings.with_(geoip_db=geoip_db,
                                    trusted_proxies=(ip_network("203.0.113.0/24"),)))  # fmt: skip
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://ff.test") as c:
            yield c


async def test_geoip_from_forwarded_for_behind_trusted_proxy(
    proxied_client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(proxied_client, admin_headers)
    ev = tracker_event(site)
    r = await proxied_client.post(BATCH, json={"siteId": site, "events": [ev]},
                                  headers={"X-Forwarded-For": "10.0.0.1, 198.51.100.9"})  # fmt: skip
    assert r.status_code == 201
    row = await pool.fetchrow("SELECT country, city FROM events WHERE website_id = $1", site)
    assert (row["country"], row["city"]) == ("JP", "Osaka")
    # a client-sent country wins over GeoIP
    ev2 = tracker_event(site, country="fr", session_id="other")
    r = await proxied_client.post(BATCH, json={"siteId": site, "events": [ev2]},
                                  headers={"X-Forwarded-For": "198.51.100.9"})  # fmt: skip
    assert (
        await pool.fetchval(
            "SELECT country FROM events WHERE website_id = $1 AND session_id = 'other'", site
        )
        == "FR"
    )


async def test_forwarded_for_ignored_without_trusted_proxy(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    r = await client.post(BATCH, json={"siteId": site, "events": [tracker_event(site)]},
                          headers={"X-Forwarded-For": "198.51.100.9"})  # fmt: skip
    assert r.status_code == 201
    assert await pool.fetchval("SELECT country FROM events WHERE website_id = $1", site) is None


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    body = r.json()
    assert r.status_code == 200
    assert {"status", "database", "timescale", "hypertable", "timestamp", "version",
            "queue_depth"} <= set(body)  # fmt: skip
    assert body["status"] == "healthy" and body["database"] == "connected"
    assert body["timescale"] is False and body["hypertable"] is False
    assert datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert (await client.get("/ready")).json() == {"ready": True}
    for path in ("/health/", "/ready/", "/metrics/"):  # rest-compat: no redirects
        assert (await client.get(path)).status_code == 200, path


async def test_migrations_are_safe_from_two_processes_at_once() -> None:
    name = f"footfall_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        applied = await asyncio.gather(migrate(a, timescale=False), migrate(b, timescale=False))
        expected = [m.name for m in discover() if m.path_kind != "timescale"]
        assert sorted(applied[0] + applied[1]) == sorted(expected)  # each applied exactly once
        assert await a.fetchval("SELECT count(*) FROM schema_migrations") == len(expected)
        assert await migrate(a, timescale=False) == []
        outside = [m for m in discover() if OUTSIDE_TRANSACTION in m.sql]
        assert {m.name for m in outside} >= {"004_stats_indexes.sql", "006_funnel_page_index.sql"}
        invalid = await a.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        built = await a.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = ANY($1)",
                                 ["events_site_ts_stats", "events_funnel_page"])  # fmt: skip
        assert (invalid, built) == (0, 2)
        await a.close()
        await b.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_index_migration_lets_writes_go_on_and_reruns_after_a_failure() -> None:
    """An outside-transaction migration (CREATE INDEX CONCURRENTLY) does not block an
    insert made while it waits for an open transaction; and re-running it after a
    failed build (an invalid index left behind) rebuilds the index valid."""
    name = f"footfall_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    mig = next(m for m in discover() if m.name == "004_stats_indexes.sql")
    try:
        a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        await migrate(a, timescale=False)
        await a.execute("DELETE FROM schema_migrations WHERE name = $1", mig.name)
        await a.execute("DROP INDEX events_site_ts_stats")
        reader = b.transaction()
        await reader.start()
        await b.fetchval("SELECT count(*) FROM events")  # an open transaction: the build waits
        build = asyncio.create_task(migrate(a, timescale=False))
        await asyncio.sleep(0.5)
        writer = await asyncpg.connect(dsn)
        await writer.execute("INSERT INTO websites (id, domain) VALUES ('w', 'w.example')")
        await asyncio.wait_for(writer.execute(
            "INSERT INTO events (website_id, ts, id, event_type, visitor_id, session_id, page)"
            " VALUES ('w', now(), gen_random_uuid(), 'pageview', 'v', 's', '/')"), 5)  # fmt: skip
        assert not build.done()  # still waiting for the open transaction, yet writes went on
        await reader.rollback()
        assert await asyncio.wait_for(build, 30) == [mig.name]
        # a failed build leaves an invalid index; the re-run replaces it
        await a.execute("DELETE FROM schema_migrations WHERE name = $1", mig.name)
        await a.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid ="
                        " 'events_site_ts_stats'::regclass")  # fmt: skip
        assert await migrate(a, timescale=False) == [mig.name]
        assert await a.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
        for conn in (a, b, writer):
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_retention_deletes_old_events_and_audits(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    now = datetime.now(UTC)
    events = [{"page": "/old", "sessionId": "o", "visitorId": "v",
               "timestamp": iso(now - timedelta(days=400))},
              {"page": "/new", "sessionId": "n", "visitorId": "v",
               "timestamp": iso(now - timedelta(days=1))}]  # fmt: skip
    res = await gql(client, """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
        accepted } }""", {"i": {"websiteId": site, "events": events}}, admin_headers)  # fmt: skip
    assert res["data"]["importEvents"]["accepted"] == 2
    deleted = await delete_older_than(pool, 365)
    assert deleted >= 1
    pages = [r["page"] for r in await pool.fetch(
        "SELECT page FROM events WHERE website_id = $1", site)]  # fmt: skip
    assert pages == ["/new"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sessions WHERE website_id = $1 AND session_id = 'o'", site
        )
        == 0
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'retention_delete'") >= 1
    )


async def test_website_update_and_delete(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    await client.post(BATCH, json={"siteId": site, "events": [tracker_event(site)]})
    upd = """mutation($i: UpdateWebsiteInput!) { updateWebsite(input: $i) {
               website { timezone name } userErrors { field code } } }"""
    res = await gql(client, upd, {"i": {"id": site, "timezone": "Mars/Olympus"}}, admin_headers)
    assert res["data"]["updateWebsite"]["userErrors"][0]["field"] == ["timezone"]
    res = await gql(client, upd, {"i": {"id": site, "timezone": "Asia/Kolkata", "name": "N"}},
                    admin_headers)  # fmt: skip
    assert res["data"]["updateWebsite"]["website"] == {"timezone": "Asia/Kolkata", "name": "N"}
    dele = """mutation($i: DeleteWebsiteInput!) { deleteWebsite(input: $i) {
                deletedId userErrors { code } } }"""
    res = await gql(client, dele, {"i": {"id": site}}, admin_headers)
    assert res["data"]["deleteWebsite"]["deletedId"] == site
    assert await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site) == 0
    q = await gql(
        client, "query($id: ID!) { website(id: $id) { id } }", {"id": site}, admin_headers
    )
    assert q["data"]["website"] is None
    r = await client.post(BATCH, json={"siteId": site, "events": [tracker_event(site)]})
    assert r.status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'footfall_events_rejected_total{reason="unknown_website"}' in metrics


def test_every_setting_is_read_somewhere() -> None:
    """Each Settings field is used outside graph/settings.py (no dead configuration)."""
    from dataclasses import fields

    root = Path(__file__).resolve().parents[1]
    code = "\n".join(p.read_text() for d in ("graph", "resolvers", "db")
                     for p in (root / d).rglob("*.py") if p.name != "settings.py")  # fmt: skip
    unused = [f.name for f in fields(Settings) if f".{f.name}" not in code]
    assert not unused, f"settings never read: {unused}"




async def test_migrations_run_without_the_pools_statement_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A migration longer than the connection's statement timeout (a request pool's)
    completes, in a transaction or outside one, and the timeout is back afterwards."""
    import db.migrate as migrate_module
    from db.migrate import Migration

    name = f"footfall_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    slow = [Migration(901, "901_slow.sql", "SELECT pg_sleep(0.6);", "both"),
            Migration(902, "902_slow_outside.sql",
                      f"{OUTSIDE_TRANSACTION}\nSELECT pg_sleep(0.6);", "both")]  # fmt: skip
    monkeypatch.setattr(migrate_module, "discover", lambda: slow)
    try:
        conn = await asyncpg.connect(dsn, server_settings={"statement_timeout": "300"})
        assert await migrate(conn, timescale=False) == ["901_slow.sql", "902_slow_outside.sql"]
        assert await conn.fetchval("SHOW statement_timeout") == "300ms"
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
