"""A graphql-transport-ws client for the realtime subscription (real-process tests)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import websockets

from graph.auth import create_token
from graph.settings import Secret, Settings
from tests.conftest import JWT_SECRET

SUBSCRIBE = """subscription($id: ID!) { realtime(websiteId: $id) { visitors pageviews } }"""


def read_token(site: str) -> str:
    settings = Settings(jwt_secret=Secret(JWT_SECRET))
    return create_token(settings, subject="test", websites=[site], scope="read", ttl_seconds=600)


async def subscribe(
    base_url: str, site: str, jwt: str | None = None, *, in_payload: bool = False,
    origin: str | None = None,
) -> Any:  # fmt: skip
    """Open the subscription on the server at ``base_url`` (``http://host:port`` or
    ``host:port``) with ``jwt`` (default: a read token for ``site``) in the URL, or in
    the ``connection_init`` payload (``in_payload``, as browser clients send it);
    ``origin``: the page's origin a browser would send."""
    address = base_url.removeprefix("http://")
    jwt = jwt or read_token(site)
    url = f"ws://{address}/graphql" + ("" if in_payload else f"?token={jwt}")
    extra = {"origin": origin} if origin else {}
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"], **extra)
    payload = {"Authorization": f"Bearer {jwt}"} if in_payload else {}
    await ws.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    await ws.send(orjson.dumps({"id": "1", "type": "subscribe",
                                "payload": {"query": SUBSCRIBE, "variables": {"id": site}}}
                               ).decode())  # fmt: skip
    return ws


async def next_realtime(ws: Any, within: float) -> dict[str, Any]:
    """The next pushed ``realtime`` value (answering pings on the way)."""
    while True:
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), within))
        if msg["type"] == "ping":
            await ws.send(orjson.dumps({"type": "pong"}).decode())
            continue
        assert msg["type"] == "next", msg
        data: dict[str, Any] = msg["payload"]["data"]["realtime"]
        return data


async def wait_for_pageviews(ws: Any, at_least: int, within: float) -> dict[str, Any]:
    """Read pushes until one shows ≥ ``at_least`` page views (fails after ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no push with {at_least} page views within {within} s"
        data = await next_realtime(ws, left)
        if data["pageviews"] >= at_least:
            return data
