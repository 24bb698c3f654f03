"""What GraphQL errors clients see, and where errors are logged.

Only our own messages reach clients: GraphQL syntax/validation errors (no original
exception), ``resolvers.errors.UserError`` and its subclasses, and policy refusals
(``resolvers.errors.Refused``: rate limits, origin) and "database unavailable" (our
own wording, so clients can retry). Anything else — a bug, a database
error, a timeout — becomes "Internal server error" and is logged with its traceback on
``footfall.graphql.unhandled``; the errors we show are logged at DEBUG on
``footfall.graphql.handled``. In production (``ENVIRONMENT=production``) the
"Did you mean …?" suggestions of validation errors are removed, so the schema cannot be
mapped by guessing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from db.errors import DatabaseUnavailable
from graph.query_limits import code_token_limit
from resolvers.errors import Refused, ServiceUnavailable, UserError

handled_log = logging.getLogger("footfall.graphql.handled")
unhandled_log = logging.getLogger("footfall.graphql.unhandled")
MASKED_MESSAGE = "Internal server error"
_SUGGESTION = re.compile(r"\s*Did you mean\b.*$", re.DOTALL)
_SHOWN = (UserError, Refused, ServiceUnavailable, DatabaseUnavailable)


def is_ours(error: GraphQLError) -> bool:
    """A GraphQL-level error, or one of our client-facing exceptions."""
    original = error.original_error
    return original is None or isinstance(original, _SHOWN) or (
        isinstance(original, GraphQLError) and is_ours(original)
    )  # fmt: skip


def should_mask_error(error: GraphQLError) -> bool:
    """True for every error that is not ours (see the module docstring)."""
    return not is_ours(error)


def mask_errors() -> MaskErrors:
    """The MaskErrors extension, configured (pass this factory, not an instance)."""
    return MaskErrors(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE)


def strip_suggestions(error: GraphQLError) -> None:
    """Remove "Did you mean …?" hints from a validation error's message (in place)."""
    if "Did you mean" in error.message:
        error.message = _SUGGESTION.sub("", error.message)


class FootfallSchema(strawberry.Schema):
    """``strawberry.Schema`` with our error logging and production suggestion removal."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        ctx: Any = execution_context.context if execution_context is not None else None
        settings = getattr(ctx, "settings", None)
        production = bool(getattr(settings, "production", False))
        for error in errors:
            code_token_limit(error)
            if production and error.original_error is None:
                strip_suggestions(error)
            if isinstance(error.original_error, DatabaseUnavailable | ServiceUnavailable):
                unhandled_log.error("database unavailable during GraphQL: %s", error.message)
            elif is_ours(error):
                handled_log.debug("graphql error: %s (path %s)", error.message, error.path)
            else:
                original = error.original_error
                unhandled_log.error(
                    "unexpected error in GraphQL at %s: %r",
                    error.path,
                    original,
                    exc_info=(type(original), original, original.__traceback__)
                    if original is not None
                    else None,
                )
