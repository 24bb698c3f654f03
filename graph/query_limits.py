"""The document limits of ``/graphql`` as validation rules whose errors carry a code.

Strawberry's depth and alias rules report plain errors; ours add ``extensions`` in the
shape of the cost limit's (``QUERY_TOO_COSTLY`` with ``cost`` and ``maxCost``,
``graph/cost.py``), so that clients can tell a refused document from a bad one:

* more than ``max_depth`` levels of selections → ``{"code": "QUERY_TOO_DEEP",
  "maxDepth": 12}``;
* more than ``max_aliases`` aliases in the document → ``{"code":
  "QUERY_TOO_MANY_ALIASES", "maxAliases": 50}``.

Rules are built once (``LIMIT_RULES`` in ``graph/schema.py``): the validation cache is
keyed by the rule classes.
"""

from __future__ import annotations

from typing import Any, cast

from graphql import GraphQLError, ValidationContext
from graphql.validation import ASTValidationRule
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule


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
