"""Types shared by every domain: user errors and delete payloads."""

from __future__ import annotations

from collections.abc import Awaitable
from enum import Enum
from typing import TypeVar

import strawberry

from resolvers.errors import UserError as UserErrorExc

T = TypeVar("T")


@strawberry.enum(description="Why an input was refused.")
class UserErrorCode(Enum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    TOO_LARGE = "TOO_LARGE"
    TOO_DEEP = "TOO_DEEP"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    TAKEN = "TAKEN"
    UNAVAILABLE = "UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"


@strawberry.type(description="A problem with the input of a mutation; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the offending input value, e.g. ["events", "3", "timestamp"].'
    )
    message: str = strawberry.field(description="Human-readable explanation naming the field.")
    code: UserErrorCode = strawberry.field(description="Machine-readable reason.")

    @classmethod
    def of(
        cls, exc: UserErrorExc, prefix: list[str] | None = None, rename: dict[str, str] | None = None
    ) -> UserError:
        """The GraphQL form of ``exc``: its field path in the input's own (camelCase)
        names — the operations name fields as the REST payloads do (``event_type``,
        ``siteId``); ``rename`` maps a path segment to this mutation's input field."""
        try:
            code = UserErrorCode(exc.code)
        except ValueError:
            code = UserErrorCode.INVALID
        path = [(rename or {}).get(p, _camel(p)) for p in exc.field]
        return cls(field=[*(prefix or []), *path] or None, message=exc.message, code=code)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@strawberry.type(description="Result of a delete mutation.")
class DeletePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="Id of what was deleted; null when nothing was (see userErrors)."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was deleted.")


async def attempt(
    op: Awaitable[T], rename: dict[str, str] | None = None
) -> tuple[T | None, list[UserError]]:
    """Await a mutation's operation; a ``UserError`` becomes the payload's userErrors
    (business failures are data, not top-level errors — nothing was changed)."""
    try:
        return await op, []
    except UserErrorExc as exc:
        return None, [UserError.of(exc, rename=rename)]


async def deleted(
    deleted_id: strawberry.ID, op: Awaitable[object], rename: dict[str, str] | None = None
) -> DeletePayload:
    """The ``DeletePayload`` of a delete operation."""
    _, errors = await attempt(op, rename)
    return DeletePayload(deleted_id=None if errors else deleted_id, user_errors=errors)
