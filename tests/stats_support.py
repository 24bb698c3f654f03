"""Helpers of the stats tests: importing generated traffic, queries, comparisons."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import gql

IMPORT = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
  accepted userErrors { field message code } } }"""

_CAMEL = {
    "id": "id", "visitor_id": "visitorId", "session_id": "sessionId", "event_type": "eventType",
    "page": "page", "referrer": "referrer", "timestamp": "timestamp", "utm_source": "utmSource",
    "utm_medium": "utmMedium", "utm_campaign": "utmCampaign", "utm_term": "utmTerm",
    "utm_content": "utmContent", "properties": "properties", "browser": "browser", "os": "os",
    "device": "device", "country": "country", "city": "city",
}  # fmt: skip

SUMMARY_FIELDS = "pageviews events visitors visits bounceRate visitDuration viewsPerVisit"
ROW_FIELDS = "value visitors pageviews visits events bounceRate visitDuration share"
BUCKET_FIELDS = "start pageviews visitors visits bounceRate visitDuration"
SESSION_DIMENSIONS = (
    "ENTRY_PAGE", "EXIT_PAGE", "REFERRER", "SOURCE", "CHANNEL", "UTM_SOURCE", "UTM_MEDIUM",
    "UTM_CAMPAIGN", "UTM_TERM", "UTM_CONTENT", "COUNTRY", "CITY", "BROWSER", "OS", "DEVICE",
)  # fmt: skip
ALL_DIMENSIONS = (("PAGE", None), ("EVENT", None), *((d, None) for d in SESSION_DIMENSIONS),
                  ("PROPERTY", "plan"), ("PROPERTY", "trial"), ("PROPERTY", "seats"))  # fmt: skip


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


async def import_events(
    client: httpx.AsyncClient, headers: dict[str, str], site: str, events: list[dict[str, Any]]
) -> None:
    """Import through GraphQL ``importEvents`` in chunks of ≤ 10,000; an empty
    User-Agent so that enrichment adds nothing the payloads do not say."""
    inputs = [{_CAMEL[k]: v for k, v in e.items() if k in _CAMEL} for e in events]
    for i in range(0, len(inputs), 10_000):
        r = await client.post(
            "/graphql",
            json={"query": IMPORT, "variables": {"i": {"websiteId": site,
                                                         "events": inputs[i : i + 10_000]}}},
            headers={**headers, "User-Agent": ""},
        )  # fmt: skip
        body = r.json()
        payload = body["data"]["importEvents"]
        assert payload["userErrors"] == [], payload
        assert payload["accepted"] == len(inputs[i : i + 10_000])


def dashboard_query(
    *,
    intervals: tuple[str, ...] = (),
    dimensions: tuple[tuple[str, str | None], ...] = (),
    limit: int = 1000,
    offset: int = 0,
    compare: bool = True,
) -> str:
    """One ``website { stats }`` query with aliases for every interval and dimension."""
    parts = [f"summary(compare: {str(compare).lower()}) {{ {SUMMARY_FIELDS} "
             f"previous {{ {SUMMARY_FIELDS} }} change {{ {SUMMARY_FIELDS} }} }}"]  # fmt: skip
    for interval in intervals:
        parts.append(f"ts_{interval}: timeseries(interval: {interval}) {{ {BUCKET_FIELDS} }}")
    for dim, prop in dimensions:
        alias = f"b_{dim}" + (f"_{prop}" if prop else "")
        arg = f', property: "{prop}"' if prop else ""
        parts.append(f"{alias}: breakdown(dimension: {dim}{arg}, limit: {limit}, offset: {offset})"
                     f" {{ totalRows rows {{ {ROW_FIELDS} }} }}")  # fmt: skip
    body = "\n".join(parts)
    return f"""query($id: ID!, $r: RangeInput!, $tz: String, $f: [FilterInput!]) {{
  website(id: $id) {{ stats(range: $r, timezone: $tz, filters: $f) {{ {body} }} }} }}"""


async def stats(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    site: str,
    query: str,
    start: datetime,
    end: datetime,
    tz: str | None,
    filters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    res = await gql(client, query, {"id": site, "r": {"from": iso(start), "to": iso(end)},
                                    "tz": tz, "f": filters}, headers)  # fmt: skip
    assert "errors" not in res, res["errors"]
    data: dict[str, Any] = res["data"]["website"]["stats"]
    return data


def close(a: Any, b: Any, where: str) -> None:
    """Equal, floats within 1e-6 (absolute or relative)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{where}: {a!r} != {b!r}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def same_summary(api: dict[str, Any], model: dict[str, Any], where: str) -> None:
    for name in SUMMARY_FIELDS.split():
        close(api[name], model[name], f"{where}.{name}")


def model_filters(filters: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [dict(f) for f in filters or []]


class CountingPool:
    """Stands in for ``rt.pools.read`` and records every statement sent through it
    (asyncpg ``Connection.add_query_logger`` on each acquired connection)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.statements: list[str] = []

    def _log(self, record: Any) -> None:
        self.statements.append(record.query)

    @property
    def ours(self) -> list[str]:
        """Statements our code sent: without asyncpg's one-off type introspection of a
        fresh connection (``typeinfo_tree`` and the ``jit`` switch around it)."""
        return [q for q in self.statements if "typeinfo_tree" not in q and "'jit'" not in q]

    @contextlib.asynccontextmanager
    async def acquire(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with self._pool.acquire(*args, **kwargs) as conn:
            conn.add_query_logger(self._log)
            try:
                yield conn
            finally:
                conn.remove_query_logger(self._log)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.execute(query, *args, **kwargs)


@contextlib.asynccontextmanager
async def counting_reads(app: Any) -> AsyncIterator[CountingPool]:
    """Count the read pool's statements while the block runs."""
    rt = app.state.runtime
    real = rt.pools.read
    counting = CountingPool(real)
    rt.pools.read = counting
    try:
        yield counting
    finally:
        await asyncio.sleep(0.01)  # query loggers run via call_soon
        rt.pools.read = real
