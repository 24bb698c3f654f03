"""The maintenance scheduler: ``AGGREGATION_TIME`` / ``AGGREGATION_INTERVAL`` and what a
run does on each storage path."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time
from typing import Any

import asyncpg
import pytest

from db.queries.retention import RETENTION_LOCK
from graph.jobs import next_run, run_maintenance
from graph.settings import Settings, SettingsError


def test_aggregation_defaults_match_the_seed() -> None:
    s = Settings.from_env({})
    assert s.aggregation_interval == 86_400 and s.aggregation_time == time(0, 0)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AGGREGATION_INTERVAL": "daily"}, "AGGREGATION_INTERVAL"),
        ({"AGGREGATION_INTERVAL": "10s"}, "AGGREGATION_INTERVAL"),  # under a minute
        ({"AGGREGATION_INTERVAL": "90d"}, "AGGREGATION_INTERVAL"),
        ({"AGGREGATION_TIME": "24:00"}, "AGGREGATION_TIME"),
        ({"AGGREGATION_TIME": "12:60"}, "AGGREGATION_TIME"),
        ({"AGGREGATION_TIME": "noon"}, "AGGREGATION_TIME"),
    ],
)
def test_invalid_schedule_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "at", "interval", "expected"),
    [
        (_utc(2026, 3, 1, 12, 0), time(0, 0), 86_400, _utc(2026, 3, 2, 0, 0)),
        (_utc(2026, 3, 1, 0, 0), time(0, 0), 86_400, _utc(2026, 3, 2, 0, 0)),  # strictly after
        (_utc(2026, 3, 1, 2, 59), time(3, 0), 86_400, _utc(2026, 3, 1, 3, 0)),
        (_utc(2026, 3, 1, 10, 0), time(3, 30), 6 * 3600, _utc(2026, 3, 1, 15, 30)),
        (_utc(2026, 3, 1, 23, 50), time(0, 15), 3600, _utc(2026, 3, 2, 0, 15)),
        (_utc(2026, 3, 1, 0, 1), time(0, 0), 60, _utc(2026, 3, 1, 0, 2)),
    ],
)
def test_next_run(now: datetime, at: time, interval: float, expected: datetime) -> None:
    assert next_run(now, at, interval) == expected


async def test_run_deletes_old_events_once_and_skips_on_timescale(
    app: Any, pool: asyncpg.Pool
) -> None:
    rt = app.state.runtime
    assert await run_maintenance(rt) is not None  # plain path: retention ran (maybe 0 rows)
    assert await run_maintenance(dataclasses.replace(rt, timescale=True)) is None
    async with pool.acquire() as other:  # another process is running retention
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK)
        try:
            assert await run_maintenance(rt) is None
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK)
