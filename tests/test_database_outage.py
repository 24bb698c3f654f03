"""The database down, in process: an app whose PostgreSQL sits behind a TCP relay
(``tests/db_relay.py``) that is then stopped answers GraphQL as it answers REST — 503 with
``Retry-After: 1`` at once — with the GraphQL JSON body, every such error carrying
``extensions.code`` ``UNAVAILABLE``; and answers normally again once the relay is back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from graph.app import create_app
from graph.settings import Settings
from tests.conftest import API_KEY, make_website
from tests.db_relay import Relay
from tests.security_support import TRACK

WEBSITES = "{ websites { id } }"
STATS = """query($id: ID!) { website(id: $id) { id stats(range: {preset: LAST_24_HOURS})
  { summary { pageviews } } } }"""
KEY = {"X-API-Key": API_KEY}


@pytest.fixture
async def outage(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Relay, str]]:
    """(client, relay, website id): an app on the test database through a running relay,
    with one website."""
    assert settings.database_url is not None
    target = urlsplit(settings.database_url)
    relay = Relay((target.hostname or "127.0.0.1", target.port or 5432))
    await relay.open()
    app = create_app(settings.with_(database_url=relay.dsn(settings.database_url)))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("198.51.100.88", 4321))
            async with httpx.AsyncClient(transport=transport, base_url="http://ff.test") as c:
                site = await make_website(c, KEY, domain="outage.example")
                yield c, relay, site
                await relay.open()  # back for the shutdown's own queries
    finally:
        await relay.close()


async def _post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, "variables": variables},
                             headers=KEY)  # fmt: skip


async def test_graphql_answers_503_with_unavailable_errors_while_the_database_is_down(
    outage: tuple[httpx.AsyncClient, Relay, str],
) -> None:
    client, relay, site = outage
    # The website is now in the process's website cache: the stats query below gets past
    # the website and fails in the stats scan (the other path to the database).
    r = await client.post("/api/v1/analytics/event", json={"website_id": site, "page": "/"})
    assert r.status_code == 201, r.text
    await relay.close()

    started = time.monotonic()
    for query, variables in ((WEBSITES, {}), (STATS, {"id": site})):
        r = await _post(client, query, variables)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        body = r.json()
        assert body["errors"], body
        for error in body["errors"]:
            assert error["extensions"]["code"] == "UNAVAILABLE", body
            assert error["message"] == "database unavailable, retry later", body

    # A mutation reporting the outage as a user error answers 503 as well.
    r = await _post(client, TRACK, {"i": {"websiteId": site, "events": [{"page": "/"}]}})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    payload = r.json()["data"]["trackEvents"]
    assert payload["accepted"] == 0 and payload["userErrors"][0]["code"] == "UNAVAILABLE"

    # REST, for comparison (the behaviour GraphQL now matches).
    r = await client.get(f"/api/v1/analytics/dashboard/{site}", headers=KEY)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 5, "503 at once, not after a hang"

    await relay.open()
    r = await _post(client, STATS, {"id": site})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
