"""The whole-response cache (graph/response_cache.py): a repeated query is answered
without SQL, but never across callers, never after this process changed data, never
after its TTL, and a cached answer is still charged against the cost budget."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from graph.auth import create_token
from graph.settings import Settings
from tests.conftest import gql, make_website, token
from tests.security_support import bearer, other_app
from tests.stats_support import counting_reads

SUMMARY = """query($id: ID!) { website(id: $id) { domain stats(range: {preset: LAST_24_HOURS})
  { summary { pageviews visitors } } } }"""
RENAME = """mutation($i: UpdateWebsiteInput!) { updateWebsite(input: $i) {
  userErrors { message } } }"""


async def _summary(client: httpx.AsyncClient, headers: dict[str, str], site: str) -> Any:
    res = await gql(client, SUMMARY, {"id": site}, headers)
    assert "errors" not in res, res
    return res["data"]["website"]


async def _track(client: httpx.AsyncClient, site: str, visitor: str) -> None:
    event = {"website_id": site, "visitor_id": visitor, "session_id": f"s-{visitor}",
             "page": "/", "timestamp": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()}  # fmt: skip
    r = await client.post("/api/v1/analytics/event", json=event)
    assert r.status_code == 201, r.text


async def test_repeat_is_served_without_sql_until_data_changes(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers, domain="responses.example")
    await _track(client, site, "v1")
    first = await _summary(client, admin_headers, site)
    async with counting_reads(app) as reads:
        again = await _summary(client, admin_headers, site)
    assert again == first and first["stats"]["summary"]["pageviews"] == 1
    assert reads.ours == []  # answered whole from the response cache

    await _track(client, site, "v2")  # a write through this process: a new generation
    after = await _summary(client, admin_headers, site)
    assert after["stats"]["summary"] == {"pageviews": 2, "visitors": 2}

    res = await gql(client, RENAME, {"i": {"id": site, "domain": "renamed.example"}},
                    admin_headers)  # fmt: skip
    assert res["data"]["updateWebsite"]["userErrors"] == [], res
    assert (await _summary(client, admin_headers, site))["domain"] == "renamed.example"


async def test_callers_never_share_entries(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    site = await make_website(client, admin_headers, domain="owner.example")
    other = await make_website(client, admin_headers, domain="stranger.example")
    await _track(client, site, "v1")
    assert (await _summary(client, admin_headers, site))["stats"]["summary"]["pageviews"] == 1
    stranger = bearer(token(settings, websites=[other]))  # same subject, other websites
    res = await gql(client, SUMMARY, {"id": site}, stranger)
    assert res["data"] == {"website": None}, res


async def test_entries_expire_after_the_ttl(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers, domain="ttl.example")
    cache = app.state.responses
    old_ttl, cache.ttl = cache.ttl, 0.2
    try:
        await _summary(client, admin_headers, site)
        hits = cache.hits
        await _summary(client, admin_headers, site)
        assert cache.hits == hits + 1
        await asyncio.sleep(0.3)
        await _summary(client, admin_headers, site)
    finally:
        cache.ttl = old_ttl
    assert cache.hits == hits + 1, "an expired entry is not served"


async def test_cached_answers_are_charged_against_the_budget(settings: Settings) -> None:
    """Budget 120 per minute, a query of cost 50: the third identical request is refused
    although the second was served from the cache."""
    async with other_app(settings, "10.9.8.7", graphql_cost_per_minute=120) as (client, app):
        who = f"budget-{uuid.uuid4().hex[:8]}"  # its own, empty budget
        headers = bearer(create_token(settings, subject=who, websites=["budget-site"],
                                      scope="read", ttl_seconds=600))  # fmt: skip
        query = "{ websites { id stats(range: {preset: TODAY}) { summary { visits } } } }"
        costs, codes = [], []
        for _ in range(3):
            res = await gql(client, query, headers=headers)
            costs.append((res.get("extensions") or {}).get("cost"))
            codes.append(((res.get("errors") or [{}])[0].get("extensions") or {}).get("code"))
        hits = app.state.responses.hits
    assert costs[0] is not None and 2 * costs[0] <= 120 < 3 * costs[0], costs
    assert codes == [None, None, "RATE_LIMITED"], codes
    assert hits == 2  # the 2nd answer came from the cache; the 3rd hit, was refused, ran


def test_cache_keeps_within_its_byte_budget() -> None:
    """Least recently used answers go first once the stored bodies pass ``max_total``."""
    from graph.response_cache import ResponseCache
    from resolvers.access import Principal

    cache = ResponseCache(max_total=2_500)
    who = Principal("budget-test", "read", frozenset({"s"}))
    request = b'{"query": "{ websites { id } }"}'
    keys = []
    for i in range(4):
        body = b'{"data": {"x": "' + b"a" * 1_000 + str(i).encode() + b'"}}'
        key = cache.key(who, request + str(i).encode())
        assert key is not None
        cache.put(key, 200, body)
        keys.append(key)
    assert cache.size <= 2_500
    assert [cache.get(k) is not None for k in keys] == [False, False, True, True]


WEBSITE = "query($id: ID!) { website(id: $id) { name isPublic } }"
UPDATE = """mutation($i: UpdateWebsiteInput!) { updateWebsite(input: $i) {
  website { name } userErrors { field } } }"""


async def _eventually(check: Any, seconds: float = 2.0) -> Any:
    """Poll ``check()`` (a coroutine function) until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        got = await check()
        if got or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


async def test_a_website_changed_in_one_worker_is_fresh_in_the_others(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    """Website rows are cached 10 s per process (``WEBSITE_TTL``); a change made through
    one worker reaches the others through Redis within the 1 s the README promises."""
    site = await make_website(client, admin_headers, domain="rename.example", is_public=True)
    async with other_app(settings, "198.51.100.93") as (other, _):
        before = await gql(other, WEBSITE, {"id": site}, {})  # anonymous: public site
        assert before["data"]["website"]["isPublic"] is True
        res = await gql(client, UPDATE, {"i": {"id": site, "name": "Renamed",
                                               "isPublic": False}}, admin_headers)  # fmt: skip
        assert res["data"]["updateWebsite"]["userErrors"] == []

        async def hidden() -> bool:
            got = await gql(other, WEBSITE, {"id": site}, {})
            return got["data"]["website"] is None

        async def renamed() -> bool:
            got = await gql(other, WEBSITE, {"id": site}, admin_headers)
            return got["data"]["website"]["name"] == "Renamed"

        assert await _eventually(hidden, 1.5), "the other worker still shows a private site"
        assert await _eventually(renamed, 1.5)
