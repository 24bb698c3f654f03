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


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert len(r.headers["x-request-id"]) >= 16
    r = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_logs_are_json_with_the_request_id() -> None:
    import logging

    import orjson

    from graph.logs import JsonFormatter, request_id

    token = request_id.set("rid-1")
    try:
        record = logging.LogRecord(
            "footfall", logging.WARNING, __file__, 1, "hello %s", ("x",), None
        )
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello x" and line["request_id"] == "rid-1"
    assert line["level"] == "warning" and line["time"].endswith("Z")


async def test_metrics_expose_the_named_series(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    from tests.conftest import gql, make_website

    site = await make_website(client, admin_headers)
    await client.post("/api/v1/analytics/event/batch",
                      json={"siteId": site, "events": [{"visitor_id": "v", "page": "/"}]})  # fmt: skip
    await gql(client, "query Probe { websites { id } }", {}, admin_headers)
    await gql(client, "query Probe { websites { id } }", {}, admin_headers)  # a cached answer
    text = (await client.get("/metrics")).text
    for series in (
        "footfall_events_ingested_total", "footfall_ingest_batch_rows_bucket",
        "footfall_ingest_commit_seconds_bucket", "footfall_ingest_queue_rows",
        "footfall_events_rejected_total", 'footfall_graphql_operation_seconds_count{operation="Probe"}',
        "footfall_cache_requests_total", "footfall_db_pool_connections",
        "footfall_graphql_response_cache_hits_total",
    ):  # fmt: skip
        assert series in text, series
