"""Tables the service fills in bulk are analysed once enough of them changed, so that
their statements are planned with current statistics even where autovacuum is off (as
on this project's CI machines)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from db.queries import table_stats
from graph.jobs import run_maintenance
from tests.conftest import make_website
from tests.stats_support import import_events

STATS = """SELECT s.analyze_count + s.autoanalyze_count AS analysed, s.n_mod_since_analyze AS changed
           FROM pg_stat_user_tables s WHERE s.relid = 'events'::regclass"""


async def _changed_at_least(pool: asyncpg.Pool, n: int) -> asyncpg.Record:
    """The events table's counters once they show ``n`` changed rows (backends report
    them within about a second of committing)."""
    for _ in range(100):
        row = await pool.fetchrow(STATS)
        if row["changed"] >= n:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"events never showed {n} changed rows: {row}")


async def test_a_table_is_analysed_once_enough_of_it_changed(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    await pool.execute("ANALYZE events")
    site = await make_website(client, admin_headers, domain="stats.example")
    events: list[dict[str, Any]] = [
        {"id": f"00000000-0000-4000-8000-{i:012d}", "visitor_id": f"v{i}", "session_id": f"s{i}",
         "event_type": "pageview", "page": "/", "timestamp": "2026-10-01T12:00:00+00:00"}
        for i in range(20)
    ]  # fmt: skip
    await import_events(client, admin_headers, site, events)
    before = await _changed_at_least(pool, 20)
    monkeypatch.setattr(table_stats, "BASE", 10**9)  # below the threshold: left alone
    assert await table_stats.analyze_if_stale(pool, "events") is False
    assert (await pool.fetchrow(STATS))["analysed"] == before["analysed"]
    monkeypatch.setattr(table_stats, "BASE", 10)
    monkeypatch.setattr(table_stats, "FRACTION", 0.0)
    assert await table_stats.analyze_if_stale(pool, "events") is True
    after = await pool.fetchrow(STATS)
    assert after["analysed"] == before["analysed"] + 1 and after["changed"] == 0, after
    assert await table_stats.analyze_if_stale(pool, "events") is False  # nothing changed since
    # the maintenance run does the same for events and sessions
    await import_events(client, admin_headers, site, [
        {**e, "id": e["id"][:-3] + "999", "visitor_id": "v-late"} for e in events[:1]])
    before = await _changed_at_least(pool, 1)
    monkeypatch.setattr(table_stats, "BASE", 0)
    assert await run_maintenance(app.state.runtime) is not None
    after = await pool.fetchrow(STATS)
    assert after["analysed"] == before["analysed"] + 1, after
    with pytest.raises(ValueError):
        await table_stats.analyze_if_stale(pool, "websites; DROP TABLE events")
