"""Bad arguments of the read path are GraphQL errors naming the argument; another
tenant's website is null; the definitions are queryable."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from graph.settings import Settings
from tests.conftest import gql, make_website, token

OK_RANGE = {"from": "2026-10-01T00:00:00Z", "to": "2026-10-08T00:00:00Z"}
STATS = """query($id: ID!, $r: RangeInput!, $tz: String, $f: [FilterInput!], $l: Int, $o: Int,
  $d: Dimension!, $p: String) { website(id: $id) { stats(range: $r, timezone: $tz, filters: $f) {
  breakdown(dimension: $d, property: $p, limit: $l, offset: $o) { totalRows } } } }"""
EVENTS = """query($id: ID!, $n: Int, $a: String) { website(id: $id) {
  events(first: $n, after: $a) { nodes { id } } } }"""
TOP = """query($id: ID!, $n: Int!) { website(id: $id) { realtime { topPages(limit: $n) { value } } } }"""

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown_zone": ({"tz": "Mars/Olympus"}, "timezone"),
    "zone_folder": ({"tz": "America"}, "timezone"),  # a folder of the tz database
    "zone_factory": ({"tz": "Factory"}, "timezone"),
    "from_after_to": (
        {"r": {"from": "2026-10-08T00:00:00Z", "to": "2026-10-01T00:00:00Z"}},
        "range",
    ),  # fmt: skip
    "from_equals_to": (
        {"r": {"from": "2026-10-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}},
        "range",
    ),  # fmt: skip
    "no_range": ({"r": {}}, "range"),
    "both": ({"r": {**OK_RANGE, "preset": "TODAY"}}, "range"),
    "only_from": ({"r": {"from": "2026-10-01T00:00:00Z"}}, "range"),
    "beyond_retention": (
        {"r": {"from": "2020-01-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}},
        "range",
    ),  # fmt: skip
    "limit_zero": ({"l": 0}, "limit"),
    "limit_too_big": ({"l": 1001}, "limit"),
    "negative_offset": ({"o": -1}, "offset"),
    "property_missing": ({"d": "PROPERTY"}, "property"),
    "filter_property_missing": (
        {"f": [{"dimension": "PROPERTY", "operator": "IS", "values": ["x"]}]},
        "filters[0].property",
    ),  # fmt: skip
    "bad_regex": (
        {"f": [{"dimension": "PAGE", "operator": "MATCHES", "values": ["(/x"]}]},
        "filters[0].values",
    ),  # fmt: skip
    "no_filter_values": (
        {"f": [{"dimension": "PAGE", "operator": "IS", "values": []}]},
        "filters[0].values",
    ),  # fmt: skip
}


@pytest.fixture(scope="module")
async def site(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> str:
    return await make_website(client, admin_headers, domain="valid.example")


def the_error(res: dict[str, Any]) -> dict[str, Any]:
    assert res.get("errors"), res
    error: dict[str, Any] = res["errors"][0]
    return error


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_argument_is_a_user_error_naming_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: str, case: str
) -> None:
    overrides, field = CASES[case]
    variables = {"id": site, "r": OK_RANGE, "tz": None, "f": None, "l": 10, "o": 0,
                 "d": "PAGE", "p": None, **overrides}  # fmt: skip
    error = the_error(await gql(client, STATS, variables, admin_headers))
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert error["message"].startswith(field.split("[")[0]), error


@pytest.mark.parametrize("first,after,field", [(101, None, "first"), (0, None, "first"),
                                               (5, "not-a-cursor", "after")])  # fmt: skip
async def test_events_arguments(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: str, first: int,
    after: str | None, field: str,
) -> None:  # fmt: skip
    error = the_error(await gql(client, EVENTS, {"id": site, "n": first, "a": after},
                                admin_headers))  # fmt: skip
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert field in error["message"]


async def test_top_pages_limit(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: str
) -> None:
    error = the_error(await gql(client, TOP, {"id": site, "n": 0}, admin_headers))
    assert error["extensions"]["field"] == "limit"


async def test_read_token_sees_only_its_website(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    mine = await make_website(client, admin_headers, domain="a.example")
    other = await make_website(client, admin_headers, domain="b.example")
    headers = {"Authorization": f"Bearer {token(settings, [mine], 'read')}"}
    query = """query($id: ID!, $r: RangeInput!) { website(id: $id) {
      stats(range: $r) { summary { visitors } } realtime { visitors }
      events { nodes { id } } } }"""
    res = await gql(client, query, {"id": other, "r": OK_RANGE}, headers)
    assert res["data"] == {"website": None} and "errors" not in res
    res = await gql(client, query, {"id": mine, "r": OK_RANGE}, headers)
    assert "errors" not in res and res["data"]["website"]["stats"]["summary"]["visitors"] == 0
    listed = await gql(client, "query($r: RangeInput!) { websites { id stats(range: $r) "
                       "{ summary { visits } } } }", {"r": OK_RANGE}, headers)  # fmt: skip
    assert [w["id"] for w in listed["data"]["websites"]] == [mine]


async def test_presets_resolve(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: str
) -> None:
    query = """query($id: ID!, $p: RangePreset!) { website(id: $id) {
      stats(range: {preset: $p}, timezone: "Asia/Kolkata") { from to timezone } } }"""
    for preset in ("TODAY", "YESTERDAY", "LAST_24_HOURS", "LAST_7_DAYS", "LAST_30_DAYS",
                   "LAST_90_DAYS", "THIS_MONTH", "LAST_MONTH", "THIS_YEAR"):  # fmt: skip
        res = await gql(client, query, {"id": site, "p": preset}, admin_headers)
        assert "errors" not in res, (preset, res)
        stats = res["data"]["website"]["stats"]
        assert stats["timezone"] == "Asia/Kolkata" and stats["from"] < stats["to"]


async def test_definitions_are_metrics_md(client: httpx.AsyncClient) -> None:
    res = await gql(client, "{ definitions { name description unit kind } }")
    defs = {d["name"]: d for d in res["data"]["definitions"]}
    for name in ("pageviews", "events", "visitors", "visits", "bounceRate", "visitDuration",
                 "viewsPerVisit", "realtimeVisitors"):  # fmt: skip
        assert defs[name]["description"]
    assert defs["bounceRate"]["unit"] == "PERCENT" and defs["visits"]["kind"] == "SESSION"
    assert defs["visitDuration"]["unit"] == "SECONDS" and defs["visitors"]["kind"] == "EVENT"
