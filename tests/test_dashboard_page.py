"""The built-in dashboard page, loaded in headless Chromium against seeded data: the
numbers shown equal the seeded traffic; a screenshot is saved to artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from graph.auth import create_token
from graph.settings import Settings
from tests.browser import dump_dom, screenshot
from tests.faults.server import ServerProcess


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Iterator[tuple[ServerProcess, str]]:
    srv = ServerProcess({"DATABASE_URL": database_url, "ENVIRONMENT": "development",
                         "JWT_SECRET": ""})  # fmt: skip
    srv.start()
    token = create_token(Settings(), subject="t", websites="*", scope="admin", ttl_seconds=600)
    auth = {"Authorization": f"Bearer {token}"}
    site = f"dash-{uuid.uuid4().hex[:8]}"
    q = """mutation($w: CreateWebsiteInput!) { createWebsite(input: $w) { userErrors { message } } }"""
    r = httpx.post(srv.url + "/graphql", headers=auth, json={"query": q, "variables": {
        "w": {"id": site, "domain": "dash.example", "name": "Dash Site"}}})  # fmt: skip
    assert r.json()["data"]["createWebsite"]["userErrors"] == []
    now = datetime.now(UTC)
    events = []
    # 3 visitors; 4 visits; 6 page views over the last days; one visit bounces.
    plan = [("a", "s1", ["/", "/pricing"], 1), ("a", "s2", ["/blog"], 2),
            ("b", "s3", ["/", "/docs", "/pricing"], 3), ("c", "s4", ["/", "/x"], 4)]  # fmt: skip
    for visitor, session, pages, days in plan:
        for i, page in enumerate(pages):
            ts = now - timedelta(days=days) + timedelta(minutes=i)
            events.append({"visitorId": visitor, "sessionId": session, "page": page,
                           "timestamp": ts.isoformat(), "country": "DE", "device": "desktop"})  # fmt: skip
    imp = """mutation($i: ImportEventsInput!) { importEvents(input: $i) { accepted } }"""
    r = httpx.post(srv.url + "/graphql", headers=auth,
                   json={"query": imp, "variables": {"i": {"websiteId": site, "events": events}}})  # fmt: skip
    assert r.json()["data"]["importEvents"]["accepted"] == 8
    yield srv, site
    srv.kill()


def _card(dom: str, metric: str) -> str:
    m = re.search(rf'data-metric="{metric}">.*?<div class="value">([^<]*)</div>', dom, re.S)
    assert m, f"card {metric} not rendered"
    return m.group(1)


def test_dashboard_shows_the_seeded_numbers(seeded: tuple[ServerProcess, str]) -> None:
    srv, site = seeded
    dom = dump_dom(f"{srv.url}/dashboard/{site}", budget_ms=10000)
    assert f'data-loaded="{site}"' in dom, dom[-3000:]
    assert _card(dom, "visitors") == "3"
    assert _card(dom, "visits") == "4"
    assert _card(dom, "pageviews") == "8"
    assert _card(dom, "bounceRate") == "25.0%"
    assert 'data-list="pages"' in dom and "/pricing" in dom
    assert re.search(r'data-buckets="(\d+)"', dom)
    shot = screenshot(f"{srv.url}/dashboard/{site}", "dashboard.png", "1280,1000")
    assert shot.exists() and shot.stat().st_size > 10_000
