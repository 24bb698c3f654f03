"""Funnel reports against the independent model (tests/reference/funnel_model.py).

Given generated traffic imported with ``importEvents`` and the same four-step funnel
defined with every ordering and both counting units, when the reports are queried,
then reached / conversions / dropped / time to convert equal the model's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import gql, make_website
from tests.reference import funnel_model, funnel_traffic

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - timedelta(days=20)
END = START + timedelta(days=6, hours=7)
MODES = [(o, c) for o in ("ORDERED", "STRICT", "ANY") for c in ("VISITOR", "SESSION")]

CREATE = """mutation($i: CreateFunnelInput!) { createFunnel(input: $i) {
  funnel { id } userErrors { field message code } } }"""
IMPORT = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
  accepted userErrors { field message } } }"""
REPORT_FIELDS = """entered converted conversionRate
  steps { name reached conversionFromStart conversionFromPrevious dropped }
  timeToConvert { mean median histogram { upTo count } }"""
COMPARE = f"""query($ids: [ID!]!, $r: RangeInput!) {{
  compareFunnels(ids: $ids, range: $r) {{ funnel {{ id ordering countBy }} {REPORT_FIELDS} }} }}"""
REPORT = f"""query($id: ID!, $r: RangeInput!, $tz: String) {{ funnel(id: $id) {{
  report(range: $r, timezone: $tz, compare: true) {{ {REPORT_FIELDS}
    previous {{ {REPORT_FIELDS} previous {{ entered }} }}
    daily {{ date entered converted conversionRate }}
    device: breakdown(dimension: DEVICE, limit: 2) {{ rows {{ value entered converted }} totalRows }}
    country: breakdown(dimension: COUNTRY, limit: 100) {{ rows {{ value entered converted conversionRate }} totalRows }}
  }} }} }}"""


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _steps_input() -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if v is not None} for s in funnel_traffic.STEPS]


@pytest.fixture(scope="module")
async def loaded(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    site = await make_website(client, admin_headers, domain="funnels.example")
    events = funnel_traffic.generate(site, START, END)
    for i in range(0, len(events), 10_000):
        res = await gql(client, IMPORT, {"i": {"websiteId": site, "events": [
            {"id": e["id"], "visitorId": e["visitor_id"], "sessionId": e["session_id"],
             "eventType": e["event_type"], "page": e["page"], "timestamp": e["timestamp"],
             "properties": e.get("properties"), "device": e.get("device"),
             "country": e.get("country")}
            for e in events[i : i + 10_000]]}}, admin_headers)  # fmt: skip
        assert res["data"]["importEvents"]["userErrors"] == [], res
    funnels: dict[tuple[str, str], str] = {}
    for ordering, count_by in MODES:
        res = await gql(client, CREATE, {"i": {
            "websiteId": site, "name": f"{ordering} {count_by}", "steps": _steps_input(),
            "window": funnel_traffic.WINDOW, "countBy": count_by, "ordering": ordering,
        }}, admin_headers)  # fmt: skip
        payload = res["data"]["createFunnel"]
        assert payload["userErrors"] == [], payload
        funnels[(ordering, count_by)] = payload["funnel"]["id"]
    return {"site": site, "events": events, "funnels": funnels}


def _model(loaded: dict[str, Any], ordering: str, count_by: str, start: datetime,
           end: datetime, **kw: Any) -> dict[str, Any]:  # fmt: skip
    funnel = {"id": loaded["funnels"][(ordering, count_by)], "steps": funnel_traffic.STEPS,
              "window": funnel_traffic.WINDOW, "countBy": count_by, "ordering": ordering}  # fmt: skip
    return funnel_model.funnel_report(loaded["events"], funnel, start, end, **kw)


def _assert_same(got: dict[str, Any], want: dict[str, Any], label: str) -> None:
    assert got["entered"] == want["entered"], label
    assert [s["reached"] for s in got["steps"]] == [s["reached"] for s in want["steps"]], label
    for g, w in zip(got["steps"], want["steps"], strict=True):
        assert g["dropped"] == w["dropped"], label
        assert g["conversionFromStart"] == pytest.approx(w["conversionFromStart"]), label
        assert g["conversionFromPrevious"] == pytest.approx(w["conversionFromPrevious"]), label
    assert got["converted"] == want["converted"], label
    assert got["conversionRate"] == pytest.approx(want["conversionRate"]), label
    if want["timeToConvert"] is None:
        assert got["timeToConvert"] is None, label
        return
    ttc = got["timeToConvert"]
    assert ttc["mean"] == pytest.approx(want["timeToConvert"]["mean"], abs=1e-6), label
    assert ttc["median"] == pytest.approx(want["timeToConvert"]["median"], abs=1e-6), label
    assert sum(b["count"] for b in ttc["histogram"]) == want["converted"], label
    assert ttc["histogram"][-1]["upTo"] == funnel_traffic.WINDOW


async def test_every_mode_matches_the_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str], loaded: dict[str, Any]
) -> None:
    ids = [loaded["funnels"][m] for m in MODES]
    rng = {"from": _iso(START), "to": _iso(END)}
    res = await gql(client, COMPARE, {"ids": ids, "r": rng}, admin_headers)
    assert "errors" not in res, res
    reports = res["data"]["compareFunnels"]
    assert [r["funnel"]["id"] for r in reports] == ids
    for (ordering, count_by), got in zip(MODES, reports, strict=True):
        want = _model(loaded, ordering, count_by, START, END)
        assert want["converted"] > 5 and want["entered"] > want["converted"]
        _assert_same(got, want, f"{ordering}/{count_by}")


async def test_modes_differ_on_the_crafted_cases(loaded: dict[str, Any]) -> None:
    """The model itself: the edge cases separate the modes as the rules say."""

    def converted(ordering: str, count_by: str) -> int:
        return int(_model(loaded, ordering, count_by, START, END)["converted"])

    assert converted("STRICT", "VISITOR") < converted("ORDERED", "VISITOR")
    assert converted("ORDERED", "VISITOR") < converted("ANY", "VISITOR")
    assert converted("ORDERED", "SESSION") != converted("ORDERED", "VISITOR")


async def test_previous_daily_and_breakdown(
    client: httpx.AsyncClient, admin_headers: dict[str, str], loaded: dict[str, Any]
) -> None:
    fid = loaded["funnels"][("ORDERED", "VISITOR")]
    tz = "America/New_York"
    rng = {"from": _iso(START), "to": _iso(END)}
    res = await gql(client, REPORT, {"id": fid, "r": rng, "tz": tz}, admin_headers)
    assert "errors" not in res, res
    got = res["data"]["funnel"]["report"]
    want = _model(loaded, "ORDERED", "VISITOR", START, END, tz=tz, session_field="country")
    _assert_same(got, want, "current")
    before = _model(loaded, "ORDERED", "VISITOR", START - (END - START), START)
    _assert_same(got["previous"], before, "previous")
    assert got["previous"]["previous"] is None
    days = {d["date"]: (d["entered"], d["converted"]) for d in got["daily"]}
    assert len(got["daily"]) == 8  # local days touched by [START, END) in New York
    assert {k: v for k, v in days.items() if v != (0, 0)} == want["daily"]
    country = {r["value"]: (r["entered"], r["converted"]) for r in got["country"]["rows"]}
    assert country == want["breakdown"]
    assert got["country"]["totalRows"] == len(want["breakdown"])
    entered = [r["entered"] for r in got["country"]["rows"]]
    assert entered == sorted(entered, reverse=True)
    by_device = _model(loaded, "ORDERED", "VISITOR", START, END, session_field="device")
    ranked = sorted(by_device["breakdown"].items(), key=lambda kv: (-kv[1][0], kv[0]))[:2]
    assert [(r["value"], (r["entered"], r["converted"])) for r in got["device"]["rows"]] == ranked
    assert got["device"]["totalRows"] == 3


async def test_breakdown_finds_sessions_that_began_before_the_range(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """The breakdown reads the sessions with an event in the range: ones that began
    shortly before it, and ones longer than an hour that began long before it."""
    site = await make_website(client, admin_headers, domain="edges.example")
    start = TODAY - timedelta(days=3)
    events: list[dict[str, Any]] = []
    for visitor, country, began in (("long", "NZ", start - timedelta(hours=5)),
                                    ("short", "JP", start - timedelta(minutes=20)),
                                    ("inside", "CA", start + timedelta(hours=2))):  # fmt: skip
        first = {"visitorId": visitor, "sessionId": f"s-{visitor}", "page": "/about",
                 "timestamp": _iso(began), "country": country}  # fmt: skip
        if visitor == "long":  # active all along: one session of more than an hour
            events += [dict(first, page="/pricing", timestamp=_iso(began + timedelta(minutes=m)),
                            country=None) for m in range(20, 300, 20)]  # fmt: skip
        step1 = dict(first, page="/", timestamp=_iso(max(began, start) + timedelta(minutes=5)),
                     country=None)  # fmt: skip
        events += [first, step1]
    res = await gql(client, IMPORT, {"i": {"websiteId": site, "events": events}}, admin_headers)
    assert res["data"]["importEvents"]["userErrors"] == [], res
    res = await gql(client, CREATE, {"i": {"websiteId": site, "name": "edges",
                                           "steps": _steps_input(), "window": 3600}},
                    admin_headers)  # fmt: skip
    fid = res["data"]["createFunnel"]["funnel"]["id"]
    query = """query($id: ID!, $r: RangeInput!) { funnel(id: $id) { report(range: $r) {
      entered breakdown(dimension: COUNTRY) { rows { value entered } } } } }"""
    rng = {"from": _iso(start), "to": _iso(start + timedelta(days=1))}
    res = await gql(client, query, {"id": fid, "r": rng}, admin_headers)
    report = res["data"]["funnel"]["report"]
    assert report["entered"] == 3, res
    rows = {r["value"]: r["entered"] for r in report["breakdown"]["rows"]}
    assert rows == {"NZ": 1, "JP": 1, "CA": 1}
