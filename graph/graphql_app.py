"""Strawberry's ASGI app with our context, orjson encoding, auth errors and a body cap.

Over HTTP the caller is resolved once per request (``graph.auth.request_principal``):
bad credentials → 401 ``UNAUTHENTICATED``; the database down while looking up an API
key → 503. Request bodies above ``MAX_GRAPHQL_BODY`` (16 MiB, room for a 10,000-event
``importEvents``) → 413 without reading the rest.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from db.errors import DatabaseUnavailable
from graph.auth import AuthError, local_admin_token, principal_from_headers, request_principal
from graph.context import Context
from graph.cost import charge_cached
from graph.graphiql import graphiql_page
from graph.http import BodyTooLarge, read_body
from graph.response_cache import ResponseCache, executed_query
from graph.settings import Settings
from resolvers.access import Principal

MAX_GRAPHQL_BODY = 16 * 1_048_576  # bytes


def _error(status: int, message: str, code: str) -> Response:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    return Response(body, status, media_type="application/json")


def _credential_headers(params: dict[str, Any]) -> dict[str, str]:
    """Request-style credential headers from a ``connection_init`` payload (keys in any
    case); empty when it carries none."""
    lower = {str(k).lower(): v for k, v in params.items() if isinstance(v, str) and v}
    if "authorization" in lower:
        return {"authorization": lower["authorization"]}
    for key in ("token", "authtoken"):
        if key in lower:
            return {"authorization": f"Bearer {lower[key]}"}
    if "x-api-key" in lower:
        return {"x-api-key": lower["x-api-key"]}
    return {}


class FootfallGraphQL(GraphQL[Context, None]):
    """``/graphql`` over HTTP and graphql-transport-ws."""

    def __init__(self, schema: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.settings = settings

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page(local_admin_token(self.settings, request))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        rt = request.app.state.runtime
        if isinstance(request, Request):
            principal = await request_principal(request)  # resolved in __call__
        else:
            headers = {k.lower(): v for k, v in request.headers.items()}
            params = request.query_params
            if params.get("token") and "authorization" not in headers:
                headers["authorization"] = f"Bearer {params['token']}"
            try:
                principal = await principal_from_headers(self.settings, headers, rt)
            except (AuthError, DatabaseUnavailable):
                principal = Principal.anonymous()
        return Context(request, rt, self.settings, principal, response=response)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Credentials in the ``connection_init`` payload — what browser clients send,
        since they cannot set WebSocket headers (``graphql-ws``'s ``connectionParams``):
        ``Authorization`` ("Bearer …"), ``token``/``authToken`` (a JWT or API key) or
        ``X-API-Key``. They decide the caller; invalid ones close the socket (4403)."""
        headers = _credential_headers(context.connection_params or {})
        if headers:
            try:
                context.principal = await principal_from_headers(
                    self.settings, headers, context.runtime
                )
            except (AuthError, DatabaseUnavailable) as exc:
                raise ConnectionRejectionError from exc
        return UnsetType()  # the singleton UNSET: a plain connection_ack

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                await request_principal(request)
            except AuthError as exc:
                await _error(401, str(exc), "UNAUTHENTICATED")(scope, receive, send)
                return
            except DatabaseUnavailable:
                resp = _error(503, "database unavailable, retry later", "UNAVAILABLE")
                resp.headers["Retry-After"] = "1"
                await resp(scope, receive, send)
                return
            if scope.get("method") == "POST":
                try:
                    body = await read_body(request, MAX_GRAPHQL_BODY)
                except BodyTooLarge:
                    msg = f"request body larger than {MAX_GRAPHQL_BODY} bytes"
                    await _error(413, msg, "TOO_LARGE")(scope, receive, send)
                    return
                await self._post(request, body, scope, _replay(body, receive), send)
                return
        await super().__call__(scope, receive, send)

    async def _post(self, request: Request, body: bytes, scope: Any, receive: Any, send: Any) -> None:
        """A POST through the response cache (``graph/response_cache.py``)."""
        cache: ResponseCache = request.app.state.responses
        principal = await request_principal(request)
        key = cache.key(principal, body)
        entry = cache.get(key) if key else None
        if entry is not None and await charge_cached(
            request.app.state.runtime, self.settings, principal, entry.cost
        ):
            await Response(entry.body, 200, media_type="application/json")(scope, receive, send)
            return
        status, chunks = 0, []

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if not executed_query(request):
                    cache.bump()  # a mutation (or a failure): its changes are done now
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await super().__call__(scope, receive, capture)
        if key is not None and executed_query(request):
            cache.put(key, status, b"".join(chunks))


def _replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that yields the already-read body once, then the original."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
