"""Limits: tracking rate limits (429 + Retry-After) and the Origin rule (403), GraphQL
cost (extensions.cost, maximum, per-caller budget), error masking and suggestions."""

from __future__ import annotations

import logging
import uuid
from ipaddress import ip_network
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import strawberry

from graph.auth import create_token
from graph.masking import FootfallSchema, mask_errors
from graph.schema import schema
from graph.settings import Settings
from resolvers.errors import UserError
from resolvers.limits import RateLimiter, wait_seconds
from tests.conftest import API_KEY, gql, make_website
from tests.security_support import CREATE_FUNNEL, TRACK, bearer, event_count, other_app

WEBSITES = "{ websites { id } }"


def event(site: str, **extra: Any) -> dict[str, Any]:
    return {"website_id": site, "visitor_id": "v1", "session_id": "s1", "event_type": "pageview",
            "page": "/", **extra}  # fmt: skip


# --- the limiter -------------------------------------------------------------------------


def test_wait_seconds() -> None:
    assert wait_seconds(0, 10, 1, 10, 30, 60) == 36  # full: next window, once 10·(1−t/60) ≤ 9
    assert wait_seconds(10, 0, 1, 10, 0, 60) == 6  # previous window decays: 10·(1−t/60) ≤ 9
    assert wait_seconds(0, 0, 11, 10, 0, 60) == 60  # never fits: a whole window
    assert 1 <= wait_seconds(5, 5, 1, 10, 59.9, 60) <= 60


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_sliding_window(backend: str, redis_url: str) -> None:
    now = [6000.0]
    client = aioredis.from_url(redis_url) if backend == "redis" else None
    limiter = RateLimiter(client, f"test-{uuid.uuid4().hex[:8]}", clock=lambda: now[0])
    try:
        assert limiter.using_redis is (backend == "redis")
        assert (await limiter.hit([("k", 10)], 4)).allowed
        assert (await limiter.hit([("k", 10)], 4)).allowed
        refused = await limiter.hit([("k", 10)], 4)
        assert not refused.allowed and refused.retry_after == 75  # 60 s + until 8·(1−t/60) ≤ 6
        assert refused.over == ("k",)
        assert (await limiter.hit([("other", 100), ("k", 10)], 4)).over == ("k",)
        assert (await limiter.hit([("k", 10)], 2)).allowed
        # Half-way through the next minute, 50 % of the previous count (10) remains.
        now[0] += 90
        assert (await limiter.hit([("k", 10)], 5)).allowed
        assert not (await limiter.hit([("k", 10), ("other", 100)], 1)).allowed
        assert (await limiter.hit([("other", 100)], 1)).allowed  # keys are separate
        assert (await limiter.hit([("k", 0)], 1000)).allowed  # 0 = unlimited
    finally:
        if client is not None:
            await client.aclose()


# --- tracking rate limits ----------------------------------------------------------------


async def _clear_of_minute_boundary() -> None:
    """The sliding window weighs the previous minute less as the current one goes on;
    start a counting test early in a minute so it cannot straddle the boundary."""
    import asyncio
    import time

    into = time.time() % 60
    if into > 40:
        await asyncio.sleep(60.5 - into)


async def test_tracking_rate_limit_per_ip(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings, pool: Any
) -> None:
    site = await make_website(client, admin_headers)
    await _clear_of_minute_boundary()
    async with other_app(settings, "198.51.100.31", rate_limit_ip_per_minute=5) as (c, _):
        for _ in range(5):
            assert (await c.post("/api/v1/analytics/event", json=event(site))).status_code == 201
        r = await c.post("/api/v1/analytics/event", json=event(site))
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 120  # sliding window: up to 2 minutes
        assert "rate limit" in r.json()["error"]
        r = await c.post("/api/v1/analytics/event/batch",
                         json={"siteId": site, "events": [event(site)]})  # fmt: skip
        assert r.status_code == 429 and r.headers["Retry-After"]
        res = await gql(c, TRACK, {"i": {"websiteId": site, "events": [{"page": "/"}]}})
        assert res["data"]["trackEvents"]["userErrors"][0]["code"] == "RATE_LIMITED"
        # The funnel tracker's door is limited too (answered by the app's handler).
        res = await gql(client, CREATE_FUNNEL, {"i": {"websiteId": site, "name": "f", "steps": [
            {"name": "a", "type": "PAGE", "pattern": "/"},
            {"name": "b", "type": "PAGE", "pattern": "/b"}]}}, admin_headers)  # fmt: skip
        funnel = res["data"]["createFunnel"]["funnel"]["id"]
        r = await c.post("/api/v1/funnels/track", json={"funnel_id": funnel, "website_id": site,
                         "visitor_id": "v1", "session_id": "s1", "current_step": 1})  # fmt: skip
        assert r.status_code == 429 and r.headers["Retry-After"]
        # A trusted server-side sender (the Seentics gateway) is not limited per IP.
        r = await c.post(
            "/api/v1/analytics/event", json=event(site), headers={"X-API-Key": API_KEY}
        )
        assert r.status_code == 201
        r = await c.post("/api/v1/analytics/event", json=event(site), headers={"X-API-Key": "bad"})
        assert r.status_code == 429  # bad credentials: just public
    assert await event_count(pool, site) == 6
    # Loopback peers (a local proxy, a load test) are not limited per IP either.
    async with other_app(settings, "127.0.0.1", rate_limit_ip_per_minute=1) as (c, _):
        for _ in range(3):
            assert (await c.post("/api/v1/analytics/event", json=event(site))).status_code == 201
    # The main app (another client IP, default limits) is not affected.
    assert (await client.post("/api/v1/analytics/event", json=event(site))).status_code == 201


async def test_tracking_rate_limit_per_website_counts_events(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings, pool: Any
) -> None:
    site = await make_website(client, admin_headers)
    await _clear_of_minute_boundary()
    async with other_app(settings, "198.51.100.32", rate_limit_ip_per_minute=0,
                         rate_limit_website_per_minute=4) as (c, _):  # fmt: skip
        batch = {"siteId": site, "events": [event(site), event(site), event(site)]}
        assert (await c.post("/api/v1/analytics/event/batch", json=batch)).status_code == 201
        r = await c.post("/api/v1/analytics/event/batch", json=batch)  # 3 + 3 > 4
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert f"for website '{site}'" in r.json()["error"] and "IP" not in r.json()["error"]
        assert (await c.post("/api/v1/analytics/event", json=event(site))).status_code == 201
    assert await event_count(pool, site) == 4


async def test_the_per_ip_refusal_names_the_client_ip_behind_a_trusted_proxy(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    """Behind a trusted proxy the client is the X-Forwarded-For address, and a refusal by
    its limit says so (not the website's limit, which is far from full)."""
    site = await make_website(client, admin_headers)
    await _clear_of_minute_boundary()
    async with other_app(settings, "127.0.0.1", trusted_proxies=(ip_network("127.0.0.1/32"),),
                         rate_limit_ip_per_minute=3) as (c, _):  # fmt: skip
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(3):
            r = await c.post("/api/v1/analytics/event", json=event(site), headers=forwarded)
            assert r.status_code == 201, r.text
        r = await c.post("/api/v1/analytics/event", json=event(site), headers=forwarded)
        assert r.status_code == 429
        message = r.json()["error"]
        assert "rate limit exceeded for client IP '203.0.113.9'" in message, message
        assert "website" not in message, message
        res = await gql(c, TRACK, {"i": {"websiteId": site, "events": [{"page": "/"}]}},
                        headers=forwarded)  # fmt: skip
        error = res["data"]["trackEvents"]["userErrors"][0]
        assert error["code"] == "RATE_LIMITED" and "client IP '203.0.113.9'" in error["message"]


def test_rate_limit_settings_from_env() -> None:
    s = Settings.from_env({"RATE_LIMIT_IP_PER_MINUTE": "100",
                           "RATE_LIMIT_WEBSITE_PER_MINUTE": "0"})  # fmt: skip
    assert (s.rate_limit_ip_per_minute, s.rate_limit_website_per_minute) == (100, 0)
    d = Settings.from_env({})
    assert (d.rate_limit_ip_per_minute, d.rate_limit_website_per_minute) == (12_000, 600_000)
    for name, bad in (("RATE_LIMIT_IP_PER_MINUTE", "lots"), ("RATE_LIMIT_WEBSITE_PER_MINUTE",
                      "-1"), ("GRAPHQL_MAX_COST", "0"), ("GRAPHQL_COST_PER_MINUTE", "x")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})


# --- Origin ------------------------------------------------------------------------------

ORIGINS = {
    "https://shop.example": 201,
    "https://www.shop.example": 201,
    "https://blog.shop.example:8443": 201,
    "http://localhost:3000": 201,  # outside production
    "null": 201,  # sandboxed page: treated as no Origin
    "https://evil.example": 403,
    "https://shop.example.evil.com": 403,
    "https://evilshop.example": 403,
    "not a url": 403,
}


async def test_origin_must_match_the_website(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: Any
) -> None:
    site = await make_website(client, admin_headers, domain="shop.example")
    for origin, status in ORIGINS.items():
        r = await client.post("/api/v1/analytics/event", json=event(site),
                              headers={"Origin": origin})  # fmt: skip
        assert r.status_code == status, (origin, r.text)
        if status == 403:
            assert "does not match" in r.json()["error"]
    stored = await event_count(pool, site)
    referers = {"https://shop.example/pricing?x=1": 201, "https://evil.example/": 403}
    for referer, status in referers.items():
        for path, body in (("/api/v1/analytics/event", event(site)),
                           ("/api/v1/analytics/event/batch", {"siteId": site,
                                                              "events": [event(site)]})):  # fmt: skip
            r = await client.post(path, json=body, headers={"Referer": referer})
            assert r.status_code == status, (referer, path)
    assert (await client.post("/api/v1/analytics/event", json=event(site))).status_code == 201
    assert await event_count(pool, site) == stored + 3
    res = await gql(client, TRACK, {"i": {"websiteId": site, "events": [{"page": "/"}]}},
                    {"Origin": "https://evil.example"})  # fmt: skip
    assert res["data"]["trackEvents"]["userErrors"][0]["code"] == "FORBIDDEN"


async def test_loopback_origins_in_production(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    real = await make_website(client, admin_headers, domain="real.example")
    dev = await make_website(client, admin_headers, domain="localhost")
    async with other_app(settings, "198.51.100.33", environment="production") as (c, _):
        for site, status in ((real, 403), (dev, 201)):
            r = await c.post("/api/v1/analytics/event", json=event(site),
                             headers={"Origin": "http://localhost:8080"})  # fmt: skip
            assert r.status_code == status, site


# --- GraphQL cost ------------------------------------------------------------------------

BREAKDOWN = """query($id: ID!, $n: Int!) { website(id: $id) { stats(range: {preset: LAST_7_DAYS})
  { breakdown(dimension: PAGE, limit: $n) { rows { value } } } } }"""


async def test_cost_is_reported(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    site = await make_website(client, admin_headers)
    res = await gql(client, WEBSITES, headers=admin_headers)
    assert res["extensions"]["cost"] == 10  # a list of unknown size counts 10
    res = await gql(client, BREAKDOWN, {"id": site, "n": 50}, admin_headers)
    assert "errors" not in res and res["extensions"]["cost"] == 1 + 1 + 10 + 50
    res = await gql(client, "{ __schema { types { name } } }", headers=admin_headers)
    assert res["extensions"]["cost"] == 0


async def test_costly_query_and_spent_budget_are_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    site = await make_website(client, admin_headers)
    async with other_app(settings, "198.51.100.34", graphql_max_cost=500,
                         graphql_cost_per_minute=35) as (c, _):  # fmt: skip
        subject = f"budget-{uuid.uuid4().hex[:8]}"  # its own budget key
        headers = bearer(create_token(settings, subject=subject, websites="*", scope="admin",
                                      ttl_seconds=60))  # fmt: skip
        res = await gql(c, BREAKDOWN, {"id": site, "n": 1000}, headers)
        assert res["data"] is None
        err = res["errors"][0]
        assert err["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 1012, "maxCost": 500}
        assert "exceeds the maximum of 500" in err["message"]
        for _ in range(3):  # 3 × 10 ≤ 35
            res = await gql(c, WEBSITES, headers=headers)
            assert "errors" not in res, res
        res = await gql(c, WEBSITES, headers=headers)
        assert res["data"] is None and res["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert res["errors"][0]["extensions"]["retryAfter"] >= 1
        # Budgets are per caller: another subject, anonymous callers, the global key.
        other = bearer(create_token(settings, subject=f"other-{subject}", websites="*",
                                    scope="read", ttl_seconds=60))  # fmt: skip
        for h in (other, {}, {"X-API-Key": API_KEY}):
            res = await gql(c, WEBSITES, headers=h)
            assert "errors" not in res, (h, res)


# --- error masking and suggestions -------------------------------------------------------


@strawberry.type
class _Boom:
    @strawberry.field(description="Fails unexpectedly.")
    def boom(self) -> int:
        raise RuntimeError("postgres://secret@db/internal exploded")

    @strawberry.field(description="Fails with our own error.")
    def mine(self) -> int:
        raise UserError("limit: at most 1000", ["limit"])


_boom_schema = FootfallSchema(query=_Boom, extensions=[mask_errors])


async def test_unexpected_errors_are_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    ctx = SimpleNamespace(settings=Settings())
    with caplog.at_level(logging.ERROR, logger="footfall.graphql.unhandled"):
        res = await _boom_schema.execute("{ boom }", context_value=ctx)
    assert res.errors and res.errors[0].message == "Internal server error"
    assert "secret" not in str(res.errors[0].formatted)
    logged = [r for r in caplog.records if r.name == "footfall.graphql.unhandled"]
    assert logged and logged[0].exc_info and "exploded" in str(logged[0].exc_info[1])
    res = await _boom_schema.execute("{ mine }", context_value=ctx)
    assert res.errors and res.errors[0].message == "limit: at most 1000"
    assert res.errors[0].extensions == {"code": "INVALID", "field": ["limit"]}
    res = await _boom_schema.execute("{ nope }", context_value=ctx)
    assert res.errors and "Cannot query field 'nope'" in res.errors[0].message


async def test_field_suggestions_only_outside_production() -> None:
    dev = await schema.execute("{ websitez { id } }",
                               context_value=SimpleNamespace(settings=Settings()))  # fmt: skip
    assert dev.errors and "Did you mean" in dev.errors[0].message
    prod_ctx = SimpleNamespace(settings=Settings(environment="production"))
    for query in ("{ websitesx { id } }", "query($r: RangeInput!) { website(id: \"x\") "
                  "{ stats(range: $r) { summary { visitors } } } }"):  # fmt: skip
        variables = {"r": {"presett": "TODAY"}}
        prod = await schema.execute(query, variable_values=variables, context_value=prod_ctx)
        assert prod.errors, query
        for err in prod.errors:
            assert "Did you mean" not in err.message, err.message


async def test_validation_is_cached_and_limits_still_hold(client: httpx.AsyncClient) -> None:
    """A repeated document is validated once (the depth and alias rules are built once, so
    the validation cache key does not change per request), and both rules still refuse."""
    from strawberry.extensions.validation_cache import _get_validate_cache

    from graph.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, VALIDATION_CACHE_SIZE

    headers = {"X-API-Key": API_KEY}
    query = "query($id: ID!) { website(id: $id) { id } __typename }"
    info = _get_validate_cache(VALIDATION_CACHE_SIZE).cache_info
    await gql(client, query, {"id": "v-0"}, headers=headers)
    before = info()
    for i in range(1, 4):  # other variables: not answered by the whole-response cache
        assert "errors" not in await gql(client, query, {"id": f"v-{i}"}, headers=headers)
    after = info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)

    aliases = "{ " + " ".join(f"a{i}: websites {{ id }}" for i in range(MAX_ALIASES + 1)) + " }"
    deep = "{ websites { " + "stats(range: {preset: TODAY}) { " * 20 + "x" + " }" * 22
    for bad, word, extensions in (
        (aliases, "aliases", {"code": "QUERY_TOO_MANY_ALIASES", "maxAliases": MAX_ALIASES}),
        (deep, "depth", {"code": "QUERY_TOO_DEEP", "maxDepth": MAX_DEPTH}),
        ("{ " + "websites { id } " * MAX_TOKENS + "}", "tokens",
         {"code": "QUERY_TOO_LARGE", "maxTokens": MAX_TOKENS}),
    ):
        body = await gql(client, bad, headers=headers)
        assert word in body["errors"][0]["message"], body
        assert body["errors"][0]["extensions"] == extensions, body
