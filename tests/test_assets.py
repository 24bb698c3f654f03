"""The tracker script is served by the service, and browsers may post cross-origin."""

from __future__ import annotations

import httpx


async def test_tracker_script_is_served_at_both_paths(client: httpx.AsyncClient) -> None:
    for path in ("/tracker.js", "/trackers/tracker.js"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/javascript")
        assert "/api/v1/analytics/event/batch" in r.text and "data-site-id" in r.text


async def test_tracking_preflight_allows_any_origin(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/api/v1/analytics/event/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )  # fmt: skip
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://shop.example")
