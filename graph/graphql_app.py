"""Strawberry's ASGI app with our context, orjson encoding and auth errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from graph.auth import AuthError, principal_from_headers
from graph.context import Context
from graph.settings import Settings
from resolvers.access import Principal


class FootfallGraphQL(GraphQL[Context, None]):
    """``/graphql`` over HTTP and graphql-transport-ws."""

    def __init__(self, schema: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.settings = settings

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if isinstance(request, WebSocket):
            params = request.query_params
            if params.get("token") and "authorization" not in headers:
                headers["authorization"] = f"Bearer {params['token']}"
        try:
            principal = principal_from_headers(self.settings, headers)
        except AuthError:
            principal = Principal.anonymous()
            if isinstance(request, Request):
                raise
        return Context(request, request.app.state.runtime, self.settings, principal,
                       response=response)  # fmt: skip

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                principal_from_headers(self.settings, headers)
            except AuthError as exc:
                body = orjson.dumps(
                    {"errors": [{"message": str(exc), "extensions": {"code": "UNAUTHENTICATED"}}]}
                )
                await Response(body, 401, media_type="application/json")(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
