"""GraphQL answers while a dependency is down: 503, as REST answers.

An operation that meets the database (or the ingest queue's Redis) unreachable is
answered with HTTP 503 and ``Retry-After: 1`` — the body is still the GraphQL JSON, with
whatever data could be resolved — so that clients, load balancers and monitors see the
outage as they do on the REST routes. Each such error says what is down
(``resolvers.errors.ServiceUnavailable.message``, "database unavailable, retry later"
for a bare ``db.errors.DatabaseUnavailable``) and carries ``extensions.code``
``UNAVAILABLE``. Mutations that report the outage as a ``UNAVAILABLE`` user error (the
tracking doors) call ``answer_unavailable`` themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from db.errors import DatabaseUnavailable
from resolvers.errors import DATABASE_DOWN, ServiceUnavailable

CODE = "UNAVAILABLE"
RETRY_AFTER = 1  # seconds


def answer_unavailable(context: Any) -> None:
    """Make the HTTP answer of this operation 503 with ``Retry-After`` (no-op over
    WebSockets, which have no status)."""
    response = getattr(context, "response", None)
    if isinstance(response, Response):
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER)


def _original(error: GraphQLError) -> BaseException | None:
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def mark_unavailable(error: GraphQLError) -> bool:
    """Give ``error`` its client message and code when a dependency being down caused
    it; True when it did (or already carries the code)."""
    original = _original(error)
    if isinstance(original, ServiceUnavailable):
        error.message = original.message
    elif isinstance(original, DatabaseUnavailable):
        error.message = DATABASE_DOWN
    elif (error.extensions or {}).get("code") != CODE:
        return False
    error.extensions = {**(error.extensions or {}), "code": CODE}
    return True


class UnavailableAnswers(SchemaExtension):
    """After the operation: mark its unavailable errors; any → 503 + ``Retry-After``."""

    def on_operation(self) -> Iterator[None]:
        yield
        errors = getattr(self.execution_context.result, "errors", None) or []
        marked = [mark_unavailable(error) for error in errors]  # every one, not the first
        if any(marked):
            answer_unavailable(self.execution_context.context)
