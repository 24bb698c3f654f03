"""Funnel definitions over GraphQL: validation, access, deletion, and the browser
funnel tracker's reports (POST /api/v1/funnels/track) satisfying EVENT steps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from graph.settings import Settings
from tests.conftest import gql, make_website, token

FUNNEL_FIELDS = """id name description isActive window countBy ordering createdAt updatedAt
  website { id } steps { name type pattern properties }"""
CREATE = f"""mutation($i: CreateFunnelInput!) {{ createFunnel(input: $i) {{
  funnel {{ {FUNNEL_FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($i: UpdateFunnelInput!) {{ updateFunnel(input: $i) {{
  funnel {{ {FUNNEL_FIELDS} }} userErrors {{ field message code }} }} }}"""
DELETE = """mutation($i: DeleteFunnelInput!) { deleteFunnel(input: $i) {
  deletedId userErrors { field message code } } }"""
GET = f"query($id: ID!) {{ funnel(id: $id) {{ {FUNNEL_FIELDS} }} }}"
LIST = """query($site: ID!, $active: Boolean) { website(id: $site) {
  funnels(activeOnly: $active) { id name isActive } } }"""
REPORT = """query($id: ID!, $r: RangeInput!) { funnel(id: $id) { report(range: $r) {
  entered converted steps { name reached dropped } timeToConvert { mean median } } } }"""
COMPARE = """query($ids: [ID!]!, $r: RangeInput!) { compareFunnels(ids: $ids, range: $r) {
  funnel { id } entered } }"""
TWO_STEPS = [
    {"name": "Home", "type": "PAGE", "pattern": "/"},
    {"name": "Signup", "type": "CUSTOM", "pattern": "signup", "properties": {"plan": "pro"}},
]


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    res = await gql(client, CREATE, {"i": fields}, headers)
    return res["data"]["createFunnel"]


async def test_create_defaults_read_update(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers)
    made = await _create(client, admin_headers, websiteId=site, name=" Signup ", steps=TWO_STEPS)
    assert made["userErrors"] == []
    f = made["funnel"]
    assert (f["name"], f["isActive"], f["window"], f["countBy"], f["ordering"]) == (
        "Signup", True, 604800, "VISITOR", "ORDERED")  # fmt: skip
    assert f["website"] == {"id": site} and f["description"] is None
    assert f["steps"][1] == {"name": "Signup", "type": "CUSTOM", "pattern": "signup",
                             "properties": {"plan": "pro"}}  # fmt: skip
    assert (await gql(client, GET, {"id": f["id"]}, admin_headers))["data"]["funnel"] == f

    changes = {"id": f["id"], "description": "why", "isActive": False, "window": 3600,
               "ordering": "STRICT", "countBy": "SESSION"}  # fmt: skip
    res = await gql(client, UPDATE, {"i": changes}, admin_headers)
    g = res["data"]["updateFunnel"]["funnel"]
    assert res["data"]["updateFunnel"]["userErrors"] == []
    assert (g["description"], g["isActive"], g["window"], g["ordering"], g["countBy"]) == (
        "why", False, 3600, "STRICT", "SESSION")  # fmt: skip
    assert g["name"] == "Signup" and g["steps"] == f["steps"] and g["updatedAt"] > f["updatedAt"]
    listed = await gql(client, LIST, {"site": site, "active": True}, admin_headers)
    assert listed["data"]["website"]["funnels"] == []
    listed = await gql(client, LIST, {"site": site}, admin_headers)
    assert [x["id"] for x in listed["data"]["website"]["funnels"]] == [f["id"]]
    cleared = await gql(client, UPDATE, {"i": {"id": f["id"], "description": None}}, admin_headers)
    assert cleared["data"]["updateFunnel"]["funnel"]["description"] is None


async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers)
    page = {"name": "P", "type": "PAGE", "pattern": "/a"}
    cases: list[tuple[dict[str, Any], list[str], str]] = [
        ({"steps": [page]}, ["steps"], "INVALID"),
        ({"steps": [page] * 21}, ["steps"], "INVALID"),
        ({"name": "  "}, ["name"], "REQUIRED"),
        ({"steps": [page, {**page, "name": ""}]}, ["steps", "1", "name"], "REQUIRED"),
        ({"steps": [page, {**page, "pattern": " "}]}, ["steps", "1", "pattern"], "REQUIRED"),
        ({"steps": [page, {**page, "pattern": "a/b"}]}, ["steps", "1", "pattern"], "INVALID"),
        ({"steps": [page, {**page, "pattern": "/" + "x" * 2048}]}, ["steps", "1", "pattern"],
         "TOO_LONG"),
        ({"steps": [page, {"name": "C", "type": "CUSTOM", "pattern": "pageview"}]},
         ["steps", "1", "pattern"], "INVALID"),
        ({"steps": [{**page, "properties": {"a": 1}}, page]}, ["steps", "0", "properties"],
         "INVALID"),
        ({"steps": [page, {"name": "C", "type": "CUSTOM", "pattern": "x",
                           "properties": {"a": {"b": 1}}}]}, ["steps", "1", "properties"],
         "INVALID"),
        ({"steps": [page, {"name": "C", "type": "CUSTOM", "pattern": "x", "properties": [1]}]},
         ["steps", "1", "properties"], "INVALID"),
        ({"window": 0}, ["window"], "OUT_OF_RANGE"),
        ({"window": 90 * 86400 + 1}, ["window"], "OUT_OF_RANGE"),
        ({"websiteId": "no-such-site"}, ["websiteId"], "NOT_FOUND"),
    ]  # fmt: skip
    for override, field, code in cases:
        fields = {"websiteId": site, "name": "F", "steps": [page, page], **override}
        made = await _create(client, admin_headers, **fields)
        assert made["funnel"] is None, override
        [err] = made["userErrors"]
        assert (err["field"], err["code"]) == (field, code), (override, err)
        if code != "NOT_FOUND":
            assert err["message"].startswith(".".join(field)), err
    ok = await _create(client, admin_headers, websiteId=site, name="F", steps=[page, page],
                       window=90 * 86400)  # fmt: skip
    assert ok["userErrors"] == []
    res = await gql(client, UPDATE, {"i": {"id": ok["funnel"]["id"], "steps": [page]}},
                    admin_headers)  # fmt: skip
    assert res["data"]["updateFunnel"]["userErrors"][0]["field"] == ["steps"]
    res = await gql(client, UPDATE, {"i": {"id": str(uuid.uuid4()), "name": "x"}}, admin_headers)
    assert res["data"]["updateFunnel"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_other_websites_token_sees_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    mine = await make_website(client, admin_headers)
    theirs = await make_website(client, admin_headers)
    f = (await _create(client, admin_headers, websiteId=mine, name="F", steps=TWO_STEPS))["funnel"]
    other = {"Authorization": f"Bearer {token(settings, [theirs], 'admin')}"}
    reader = {"Authorization": f"Bearer {token(settings, [mine], 'read')}"}
    assert (await gql(client, GET, {"id": f["id"]}, other))["data"]["funnel"] is None
    assert (await gql(client, LIST, {"site": mine}, other))["data"]["website"] is None
    rng = {"preset": "LAST_7_DAYS"}
    assert (await gql(client, COMPARE, {"ids": [f["id"]], "r": rng}, other))["data"] == {
        "compareFunnels": []}  # fmt: skip
    for query, name in ((UPDATE, "updateFunnel"), (DELETE, "deleteFunnel")):
        res = await gql(client, query, {"i": {"id": f["id"]}}, other)
        assert res["data"][name]["userErrors"][0]["code"] == "NOT_FOUND"
    made = await _create(client, other, websiteId=mine, name="F", steps=TWO_STEPS)
    assert made["userErrors"][0]["code"] == "NOT_FOUND"
    # a read token on the website reads but cannot write
    assert (await gql(client, GET, {"id": f["id"]}, reader))["data"]["funnel"]["id"] == f["id"]
    res = await gql(client, DELETE, {"i": {"id": f["id"]}}, reader)
    assert res["data"]["deleteFunnel"]["userErrors"][0]["code"] == "FORBIDDEN"
    made = await _create(client, reader, websiteId=mine, name="F", steps=TWO_STEPS)
    assert made["userErrors"][0]["code"] == "FORBIDDEN"


async def test_deleted_funnel_is_gone_everywhere(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers)
    f = (await _create(client, admin_headers, websiteId=site, name="F", steps=TWO_STEPS))["funnel"]
    res = await gql(client, DELETE, {"i": {"id": f["id"]}}, admin_headers)
    assert res["data"]["deleteFunnel"] == {"deletedId": f["id"], "userErrors": []}
    assert (await gql(client, GET, {"id": f["id"]}, admin_headers))["data"]["funnel"] is None
    listed = await gql(client, LIST, {"site": site}, admin_headers)
    assert listed["data"]["website"]["funnels"] == []
    rng = {"preset": "TODAY"}
    res = await gql(client, REPORT, {"id": f["id"], "r": rng}, admin_headers)
    assert res["data"]["funnel"] is None
    res = await gql(client, COMPARE, {"ids": [f["id"]], "r": rng}, admin_headers)
    assert res["data"]["compareFunnels"] == []
    res = await gql(client, DELETE, {"i": {"id": f["id"]}}, admin_headers)
    assert res["data"]["deleteFunnel"]["userErrors"][0]["code"] == "NOT_FOUND"
    res = await gql(client, UPDATE, {"i": {"id": f["id"], "name": "x"}}, admin_headers)
    assert res["data"]["updateFunnel"]["userErrors"][0]["code"] == "NOT_FOUND"
    gone = await client.post("/api/v1/funnels/track", json={
        "funnel_id": f["id"], "website_id": site, "current_step": 1})  # fmt: skip
    assert gone.status_code == 404 and gone.json() == {"error": "Funnel not found"}


def _stored(value: str) -> str:
    """How tracker.js keeps ids in localStorage, sent raw by funnel-tracker.js."""
    return orjson.dumps({"value": value, "expiresAt": 1893456000000}).decode()


async def test_tracker_reports_satisfy_event_steps(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers, domain="shop.example")
    steps = [
        {"name": "Landing", "type": "PAGE", "pattern": "/landing/*"},
        {"name": "Clicked", "type": "EVENT", "pattern": "#cta"},
        {"name": "Filled", "type": "EVENT", "pattern": "form.signup button"},
    ]
    f = (await _create(client, admin_headers, websiteId=site, name="T", steps=steps))["funnel"]
    other = (await _create(client, admin_headers, websiteId=site, name="O", steps=steps))["funnel"]
    now = datetime.now(UTC)

    def at(seconds: float) -> str:
        return (now - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    visit = {"website_id": site, "event_type": "pageview", "page": "/landing/a?x=1"}
    batch = {"siteId": site, "events": [
        {**visit, "visitor_id": "va", "session_id": "sa", "timestamp": at(60)},
        {**visit, "visitor_id": "vb", "session_id": "sb", "timestamp": at(60)},
        {**visit, "visitor_id": "vc", "session_id": "sc", "timestamp": at(60)},
    ]}  # fmt: skip
    assert (await client.post("/api/v1/analytics/event/batch", json=batch)).status_code == 201

    def report(visitor: str, session: str, step: int, ago: float, fid: str = f["id"],
               **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {"funnel_id": fid, "website_id": site, "visitor_id": _stored(visitor),
                "session_id": _stored(session), "current_step": step,
                "completed_steps": list(range(step - 1)), "started_at": at(60),
                "last_activity": at(ago), "converted": step == 3, "step_name": "x",
                "step_type": "event", "conversion_value": 5, **extra}  # fmt: skip

    sent = [
        report("va", "sa", 2, 50),
        report("va", "sa", 3, 40),  # converts
        report("vb", "sb", 2, 50, event_type="dropoff"),  # a drop-off is no step
        report("vc", "sc", 3, 50),
        report("vc", "sc", 2, 40),  # wrong order
        report("vb", "sb", 2, 30, fid=other["id"]),  # another funnel's step
    ]
    for i, payload in enumerate(sent):
        path = "/api/v1/funnels/track" + ("/" if i % 2 else "")
        r = await client.post(path, content=orjson.dumps(payload),
                              headers={"content-type": "text/plain"})  # fmt: skip
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "success" and body["funnel_id"] == payload["funnel_id"]
        assert body["visitor_id"] in ("va", "vb", "vc") and body["session_id"].startswith("s")
    res = await gql(client, REPORT, {"id": f["id"], "r": {"preset": "LAST_24_HOURS"}},
                    admin_headers)  # fmt: skip
    rep = res["data"]["funnel"]["report"]
    assert [s["reached"] for s in rep["steps"]] == [3, 2, 1], res
    assert rep["timeToConvert"] == {"mean": 20.0, "median": 20.0}

    bad = [
        ({**report("va", "sa", 1, 1), "website_id": "someone-else"}, 404),
        ({**report("va", "sa", 1, 1), "funnel_id": str(uuid.uuid4())}, 404),
        ({**report("va", "sa", 1, 1), "funnel_id": "nope"}, 400),
        ({**report("va", "sa", 1, 1), "current_step": "2"}, 400),
        ({**report("va", "sa", 1, 1), "current_step": 4}, 400),
    ]
    for payload, status in bad:
        r = await client.post("/api/v1/funnels/track", json=payload)
        assert r.status_code == status, (payload, r.text)
        want = "Funnel not found" if status == 404 else "Invalid funnel event data"
        assert r.json()["error"] == want


async def test_report_arguments_are_checked(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers)
    f = (await _create(client, admin_headers, websiteId=site, name="F", steps=TWO_STEPS))["funnel"]
    query = """query($id: ID!, $r: RangeInput!, $tz: String, $d: Dimension!) { funnel(id: $id) {
      report(range: $r, timezone: $tz) { entered breakdown(dimension: $d) { totalRows } } } }"""
    ok = {"from": "2024-01-02T00:00:00Z", "to": "2024-01-03T00:00:00Z"}
    cases = [
        ({"from": ok["to"], "to": ok["from"]}, None, "DEVICE", "range"),
        (ok, "Mars/Olympus", "DEVICE", "timezone"),
        (ok, None, "PAGE", "dimension"),
    ]
    for rng, tz, dim, name in cases:
        res = await gql(client, query, {"id": f["id"], "r": rng, "tz": tz, "d": dim},
                        admin_headers)  # fmt: skip
        assert res["errors"][0]["message"].startswith(name), res
    res = await gql(client, query, {"id": f["id"], "r": ok, "d": "CHANNEL"}, admin_headers)
    assert res["data"]["funnel"]["report"] == {"entered": 0, "breakdown": {"totalRows": 0}}
    many = """query($ids: [ID!]!) { compareFunnels(ids: $ids, range: {preset: TODAY}) {
      entered } }"""
    res = await gql(client, many, {"ids": [f["id"]] * 21}, admin_headers)
    assert res["errors"][0]["message"].startswith("ids"), res


async def test_page_patterns_are_literal_except_star(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers)
    steps = [{"name": "A", "type": "PAGE", "pattern": "/a_b.c"},
             {"name": "B", "type": "PAGE", "pattern": "/50%\\*/*"}]  # fmt: skip
    f = (await _create(client, admin_headers, websiteId=site, name="F", steps=steps))["funnel"]
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    paths = {"lit": ["/a_b.c", "/50%\\x/1"], "like": ["/aXb.c", "/50%\\x/1"],
             "pct": ["/a_b.c", "/50x\\x/1"], "anchor": ["/a_b.c", "/z/50%\\x/1"],
             "empty-star": ["/a_b.c", "/50%\\/"]}  # fmt: skip
    events = [
        {"visitorId": v, "sessionId": v, "page": p,
         "timestamp": (t0 + timedelta(seconds=i)).isoformat()}
        for v, ps in paths.items() for i, p in enumerate(ps)
    ]  # fmt: skip
    res = await gql(client, """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
      accepted } }""", {"i": {"websiteId": site, "events": events}}, admin_headers)  # fmt: skip
    assert res["data"]["importEvents"]["accepted"] == 10
    rng = {"from": "2024-05-01T00:00:00Z", "to": "2024-05-02T00:00:00Z"}
    res = await gql(client, REPORT, {"id": f["id"], "r": rng}, admin_headers)
    rep = res["data"]["funnel"]["report"]
    assert [s["reached"] for s in rep["steps"]] == [4, 2], rep  # lit and empty-star convert
