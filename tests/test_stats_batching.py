"""Batching: how many SQL statements a dashboard costs.

Bound (the design's "fields sharing a scope share a scan"): a full dashboard of one
website — ``summary(compare: true)``, ``timeseries(DAY)``, 8 breakdowns and
``realtime`` — issues at most **3** statements on the read pool, whatever the number of
breakdowns: the current range's summary, series and session breakdowns; its event
breakdowns (PAGE, EVENT) together with the previous period's summary, which run at the
same time on a second connection (resolvers/stats_plans.py); and realtime.
``websites { stats { summary } }`` over N websites issues one stats statement (plus the
websites list itself), not N.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import gql, make_website
from tests.reference.traffic import generate_traffic
from tests.stats_support import counting_reads, import_events, iso

DASHBOARD_BOUND = 3
START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 9, 8, tzinfo=UTC)

DASHBOARD = """query($id: ID!, $r: RangeInput!) { website(id: $id) {
  stats(range: $r) {
    summary(compare: true) { visitors visits bounceRate previous { visitors } change { visitors } }
    timeseries(interval: DAY) { start visitors pageviews }
    pages: breakdown(dimension: PAGE) { totalRows rows { value visitors pageviews } }
    entry: breakdown(dimension: ENTRY_PAGE) { rows { value visits } }
    sources: breakdown(dimension: SOURCE) { rows { value visitors } }
    channels: breakdown(dimension: CHANNEL) { rows { value visitors } }
    countries: breakdown(dimension: COUNTRY) { rows { value visitors } }
    browsers: breakdown(dimension: BROWSER) { rows { value visitors } }
    devices: breakdown(dimension: DEVICE) { rows { value visitors } }
    events: breakdown(dimension: EVENT) { rows { value events } }
  }
  realtime { visitors pageviews topPages { value visitors } }
} }"""

ALL_SUMMARIES = """query($r: RangeInput!) { websites { id
  stats(range: $r) { summary { visitors pageviews visits } } } }"""


async def _site_with_traffic(client: httpx.AsyncClient, headers: dict[str, str], seed: int) -> str:
    site = await make_website(client, headers, domain="batch.example")
    events = generate_traffic(seed, site, "batch.example", START, END, n_visitors=25)
    await import_events(client, headers, site, events)
    return site


async def test_full_dashboard_statement_bound(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await _site_with_traffic(client, admin_headers, 1)
    variables = {"id": site, "r": {"from": iso(START + timedelta(days=2)), "to": iso(END)}}
    async with counting_reads(app) as reads:
        res = await gql(client, DASHBOARD, variables, admin_headers)
    assert "errors" not in res, res
    stats = res["data"]["website"]["stats"]
    assert stats["summary"]["visitors"] > 0 and stats["pages"]["totalRows"] > 0
    assert len(stats["timeseries"]) == 5
    assert len(reads.ours) <= DASHBOARD_BOUND, reads.ours


async def test_many_websites_summaries_are_one_statement(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    sites = [await _site_with_traffic(client, admin_headers, seed) for seed in (2, 3, 4)]
    variables = {"r": {"from": iso(START), "to": iso(END)}}
    async with counting_reads(app) as reads:
        res = await gql(client, ALL_SUMMARIES, variables, admin_headers)
    assert "errors" not in res, res
    found = {w["id"]: w["stats"]["summary"] for w in res["data"]["websites"]}
    assert all(found[s]["visitors"] > 0 for s in sites)
    stats_statements = [q for q in reads.ours if "FROM q JOIN events" in q]
    assert len(stats_statements) == 1, reads.statements
    assert len(reads.ours) <= 2, reads.ours  # + the websites list


async def test_stats_statements_carry_the_request_id(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """JSON logs and the heavy SQL share the request id (``/* request_id=… */``)."""
    site = await make_website(client, admin_headers, domain="trace.example")
    variables = {"id": site, "r": {"from": iso(START), "to": iso(END)}}
    headers = {**admin_headers, "X-Request-ID": "trace-42"}
    async with counting_reads(app) as reads:
        r = await client.post("/graphql", json={"query": DASHBOARD, "variables": variables},
                              headers=headers)  # fmt: skip
    assert r.headers["x-request-id"] == "trace-42"
    scans = [q for q in reads.ours if "WITH q AS" in q]  # current + previous period scans
    assert len(scans) == 2, [q[:60] for q in reads.ours]
    assert all(q.startswith("/* request_id=trace-42 */") for q in scans)


def test_plan_batch_pairs_the_event_part_with_the_previous_period() -> None:
    """Pure planning: which statements a batch becomes, and where each part is answered."""
    from db.queries.dimensions import FilterSpec
    from db.queries.stats import DimensionSpec
    from resolvers.ranges import Range
    from resolvers.stats_plans import EVENTS, MAIN, Shape, plan_batch
    from resolvers.stats_types import Scope

    now = datetime(2026, 11, 1, tzinfo=UTC)
    cur = Scope("a", Range(now - timedelta(days=7), now, "UTC"), ())
    prev = Scope("a", Range(now - timedelta(days=14), now - timedelta(days=7), "UTC"), ())
    page, country = DimensionSpec("PAGE", None, 0, 10), DimensionSpec("COUNTRY", None, 0, 10)
    full = Shape((), "UTC", ("DAY",), (country, page))
    summary = Shape((), None, (), ())
    batch = plan_batch({full: [cur], summary: [prev]}, None)
    assert len(batch.plans) == 2
    main, other = batch.plans
    assert (main.dimensions, main.intervals) == ((country,), ("DAY",))
    assert other.dimensions == (page,) and other.intervals == ()
    assert [(s.lo, s.main, s.events) for s in other.scopes] == [
        (prev.range.start, True, False), (cur.range.start, False, True)]  # fmt: skip
    assert batch.route[(cur, MAIN)] == (0, 0) and batch.route[(cur, EVENTS)] == (1, 1)
    assert batch.route[(prev, MAIN)] == (1, 0)

    # no previous period: the event part gets its own statement; other filters don't pair
    filtered = Shape((FilterSpec("COUNTRY", "IS", ("DE",)),), None, (), ())
    batch = plan_batch({full: [cur], filtered: [prev]}, None)
    assert len(batch.plans) == 3 and batch.route[(cur, EVENTS)] == (2, 0)
    # event dimensions alone, or summaries alone, stay one statement
    assert len(plan_batch({Shape((), None, (), (page,)): [cur]}, None).plans) == 1
    assert len(plan_batch({summary: [cur, prev]}, None).plans) == 1
