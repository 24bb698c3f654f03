"""Query cost: an estimate computed from the document before execution, bounded per
operation (``GRAPHQL_MAX_COST``) and per caller per minute (``GRAPHQL_COST_PER_MINUTE``).

Model (units are abstract "cost points"):

* a field returning an object costs 1 (``BASE_COST``), a scalar or enum field 0;
  introspection (``__schema``, ``__type``, ``__typename``) is free;
* some fields cost more (``FIELD_COSTS``): ``breakdown`` 10, funnel ``report`` and
  ``compareFunnels`` 25 (per funnel id), ``timeseries`` 5, ``summary`` 3, ``events`` 5;
* a field returning a list multiplies its own and its selection's cost by the list
  size: its ``first``/``limit`` argument (else that argument's default), else a
  ``limit``/``first`` given to an enclosing field (``breakdown(limit: 50) { rows }``),
  else ``LIST_SIZES`` (``timeseries`` 31 buckets), else ``DEFAULT_LIST_SIZE`` (10);
  multipliers are clamped to [1, 10,000].

So a dashboard (summary + a timeseries + six breakdowns of 10 rows + realtime) costs
about 200, and ``websites { stats { breakdown(limit: 1000) { rows { value } } } }``
about 10 × 1,011. The total is reported in the response as ``extensions.cost``; an
operation above the maximum is refused before execution (``QUERY_TOO_COSTLY``); a
caller whose operations in the last minute would exceed the budget gets
``RATE_LIMITED`` with ``extensions.retryAfter`` seconds. The budget is per principal
subject (token ``sub``, ``api-key:<id>``; anonymous callers per client IP); the
``GLOBAL_API_KEY`` caller (the Seentics gateway, which proxies every user) is exempt.
Subscriptions are not costed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType as StrawberryOperationType

from graph.settings import Settings
from resolvers.access import Principal
from resolvers.enrich import client_ip
from resolvers.limits import Decision
from resolvers.protection import protection_of
from resolvers.runtime import Runtime

BASE_COST = 1
DEFAULT_LIST_SIZE = 10
MAX_MULTIPLIER = 10_000
FIELD_COSTS: dict[str, int] = {
    "breakdown": 10, "report": 25, "compareFunnels": 25, "timeseries": 5, "summary": 3,
    "events": 5, "realtime": 2, "topPages": 2,
}  # fmt: skip
LIST_SIZES: dict[str, int] = {"timeseries": 31}
_SIZE_ARGS = ("first", "limit")


class _Estimator:
    """Walks one operation; ``cost()`` is the model described in the module docstring."""

    def __init__(
        self, schema: GraphQLSchema, doc: DocumentNode, variables: Mapping[str, Any] | None
    ) -> None:
        self.schema = schema
        self.variables = dict(variables or {})
        self.fragments = {
            d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def _arg(self, node: FieldNode, name: str, field: GraphQLField) -> Any:
        for arg in node.arguments or ():
            if arg.name.value == name:
                return value_from_ast_untyped(arg.value, self.variables)
        definition = field.args.get(name)
        default = definition.default_value if definition is not None else None
        return default if isinstance(default, int | list) else None

    def _size(self, node: FieldNode, field: GraphQLField) -> int | None:
        for name in _SIZE_ARGS:
            value = self._arg(node, name, field)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(1, min(value, MAX_MULTIPLIER))
        return None

    def selection(
        self, parent: GraphQLNamedType, sel: SelectionSetNode | None, inherited: int | None,
        depth: int = 0,
    ) -> int:  # fmt: skip
        if sel is None or depth > 64:
            return 0
        total = 0
        for node in sel.selections:
            if isinstance(node, FieldNode):
                total += self.field(parent, node, inherited, depth)
            elif isinstance(node, InlineFragmentNode):
                cond = node.type_condition
                typ = self.schema.get_type(cond.name.value) if cond else parent
                total += self.selection(typ or parent, node.selection_set, inherited, depth + 1)
            elif isinstance(node, FragmentSpreadNode):
                frag = self.fragments.get(node.name.value)
                if frag is not None:
                    typ = self.schema.get_type(frag.type_condition.name.value) or parent
                    total += self.selection(typ, frag.selection_set, inherited, depth + 1)
        return total

    def field(self, parent: GraphQLNamedType, node: FieldNode, inherited: int | None,
              depth: int) -> int:  # fmt: skip
        name = node.name.value
        fields = getattr(parent, "fields", None)
        if name.startswith("__") or not fields or name not in fields:
            return 0
        field: GraphQLField = fields[name]
        out = field.type
        named = get_named_type(out)
        if not is_composite_type(named):
            return 0
        own_size = self._size(node, field)
        is_list = isinstance(get_nullable_type(out), GraphQLList)
        if name == "compareFunnels":
            ids = self._arg(node, "ids", field)
            own_size = max(1, min(len(ids), MAX_MULTIPLIER)) if isinstance(ids, list) else 1
        multiplier = 1
        if is_list:
            multiplier = own_size or inherited or LIST_SIZES.get(name, DEFAULT_LIST_SIZE)
        # A size given to a non-list field (breakdown's limit) bounds its lists below.
        below = None if is_list else (own_size or inherited)
        inner = self.selection(named, node.selection_set, below, depth + 1)
        return multiplier * (FIELD_COSTS.get(name, BASE_COST) + inner)

    def operation(self, op: OperationDefinitionNode) -> int:
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[op.operation]
        return 0 if root is None else self.selection(root, op.selection_set, None)


def estimate(
    schema: GraphQLSchema,
    doc: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost of the operation ``operation_name`` of ``doc`` (0 if there is none)."""
    op = get_operation_ast(doc, operation_name)
    return 0 if op is None else _Estimator(schema, doc, variables).operation(op)


async def _spend(rt: Runtime, settings: Settings, who: str, cost: int) -> Decision:
    limiter = protection_of(rt).limiter
    return await limiter.hit([(f"cost:{who}", settings.graphql_cost_per_minute)], cost)


async def charge_cached(rt: Runtime, settings: Settings, principal: Principal, cost: int) -> bool:
    """Charge an authenticated caller ``cost`` for an answer served from the response
    cache, as ``CostLimiter`` would for a fresh one; False when the budget refuses."""
    if not settings.graphql_cost_per_minute or principal.subject == "global-api-key":
        return True
    return (await _spend(rt, settings, principal.subject, cost)).allowed


def _refuse(message: str, extensions: dict[str, Any]) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


class CostLimiter(SchemaExtension):
    """Reports ``extensions.cost``; refuses costly operations and spent budgets."""

    cost: int | None = None

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx = ec.context
        settings = getattr(ctx, "settings", None)
        doc = ec.graphql_document
        if (
            settings is None
            or doc is None
            or ec.operation_type == StrawberryOperationType.SUBSCRIPTION
        ):
            yield
            return
        self.cost = cost = estimate(ec.schema._schema, doc, ec.operation_name, ec.variables)
        if cost > settings.graphql_max_cost:
            ec.result = _refuse(
                f"query cost {cost} exceeds the maximum of {settings.graphql_max_cost}; "
                "ask for fewer rows (limit/first) or split the query",
                {"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": settings.graphql_max_cost},
            )
        elif settings.graphql_cost_per_minute and ctx.principal.subject != "global-api-key":
            who = ctx.principal.subject
            if ctx.principal.scope is None:
                req = ctx.request
                peer = req.client.host if req.client else None
                xff = req.headers.get("x-forwarded-for")
                who = f"anon:{client_ip(peer, xff, ctx.runtime.trusted_proxies)}"
            decision = await _spend(ctx.runtime, settings, who, cost)
            if not decision.allowed:
                ec.result = _refuse(
                    f"query cost budget of {settings.graphql_cost_per_minute} per minute "
                    f"used up; retry in {decision.retry_after} s",
                    {"code": "RATE_LIMITED", "retryAfter": decision.retry_after, "cost": cost},
                )
        yield

    def get_results(self) -> dict[str, Any]:
        return {} if self.cost is None else {"cost": self.cost}
