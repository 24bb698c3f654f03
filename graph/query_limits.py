"""The document limits of ``/graphql`` as validation rules whose errors carry a code.

Strawberry's depth and alias rules report plain errors; ours add ``extensions`` in the
shape of the cost limit's (``QUERY_TOO_COSTLY`` with ``cost`` and ``maxCost``,
``graph/cost.py``), so that clients can tell a refused document from a bad one:

* more than ``max_depth`` levels of selections → ``{"code": "QUERY_TOO_DEEP",
  "maxDepth": 12}``;
* more than ``max_aliases`` aliases in the document → ``{"code":
  "QUERY_TOO_MANY_ALIASES", "maxAliases": 50}``;
* more than ``MAX_TOKENS`` tokens (the parser stops: Strawberry's ``MaxTokensLimiter``)
  → ``{"code": "QUERY_TOO_LARGE", "maxTokens": 4000}``, set by ``code_token_limit``.

Rules are built once (``LIMIT_RULES`` in ``graph/schema.py``): the validation cache is
keyed by the rule classes.
"""

from __future__ import annotations

from typing import Any, cast

from graphql import GraphQLError, ValidationContext
from graphql.validation import ASTValidationRule
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

#: Tokens the parser reads before it gives up on a document.
MAX_TOKENS = 4000
#: How graphql-core's parser words that (``Syntax Error: Document contains more than N
#: tokens. Parsing aborted.``): the error has no other mark.
_TOKEN_LIMIT = "Syntax Error: Document contains more than"


def code_token_limit(error: GraphQLError) -> None:
    """Give the parser's token-limit error its code (in place); others are left alone."""
    if error.message.startswith(_TOKEN_LIMIT):
        error.extensions = {**(error.extensions or {}), "code": "QUERY_TOO_LARGE",
                            "maxTokens": MAX_TOKENS}  # fmt: skip


class _Coding:
    """A ``ValidationContext`` stand-in for a rule's constructor (where Strawberry's
    rules report): every error it reports gets ``extensions`` first."""

    def __init__(self, context: ValidationContext, extensions: dict[str, Any]) -> None:
        self._context = context
        self._extensions = extensions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), **self._extensions}
        self._context.report_error(error)


def _coded(rule: type[ASTValidationRule], extensions: dict[str, Any]) -> type[ASTValidationRule]:
    class Coded(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(cast(ValidationContext, _Coding(context, extensions)))
            self.context = context

    Coded.__name__ = Coded.__qualname__ = f"Coded{rule.__name__}"
    return Coded


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """Refuse operations nested deeper than ``max_depth`` (code ``QUERY_TOO_DEEP``)."""
    return _coded(depth_rule(max_depth, None), {"code": "QUERY_TOO_DEEP", "maxDepth": max_depth})


def alias_limit(max_aliases: int) -> type[ASTValidationRule]:
    """Refuse documents with more than ``max_aliases`` aliases (``QUERY_TOO_MANY_ALIASES``)."""
    return _coded(
        aliases_rule(max_aliases), {"code": "QUERY_TOO_MANY_ALIASES", "maxAliases": max_aliases}
    )
