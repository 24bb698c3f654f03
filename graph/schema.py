"""The GraphQL schema: root types merged from the domain modules, plus extensions.

``schema.graphql`` at the repository root is ``str(schema)``; a test fails when the two
drift (re-export with ``footfall schema > schema.graphql``).
"""

from __future__ import annotations

import strawberry
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types.base import get_object_definition

from graph.cost import CostLimiter
from graph.masking import FootfallSchema, mask_errors
from graph.observe import OperationTimer
from graph.query_limits import MAX_TOKENS, alias_limit, depth_limit
from graph.response_cache import MarkOperation
from graph.types.funnel import FunnelMutations, FunnelQuery
from graph.types.privacy import PrivacyMutations
from graph.types.security import SecurityMutations, SecurityQuery
from graph.types.stats import StatsQuery, StatsSubscription
from graph.types.tracking import TrackingMutations
from graph.types.website import Website, WebsiteMutations, resolve_website, resolve_websites
from graph.unavailable import UnavailableAnswers

MAX_DEPTH = 12
MAX_ALIASES = 50
VALIDATION_CACHE_SIZE = 256
#: The depth and alias rules, built once: the validation cache is keyed by the document
#: AND the rule classes, so rules made afresh per request (QueryDepthLimiter and
#: MaxAliasesLimiter as factories) would make every request re-validate (~4 ms of the
#: 8 breakdown dashboard).
LIMIT_RULES: list[type[ASTValidationRule]] = [
    depth_limit(MAX_DEPTH),  # QUERY_TOO_DEEP (graph/query_limits.py)
    alias_limit(MAX_ALIASES),  # QUERY_TOO_MANY_ALIASES
]


@strawberry.type(description="Read access: websites and their stats, funnels, definitions.")
class CoreQuery:
    website: Website | None = strawberry.field(
        resolver=resolve_website,
        description="A website by id; null when absent or not visible to the caller.",
    )
    websites: list[Website] = strawberry.field(
        resolver=resolve_websites, description="The websites the caller may see, by id."
    )


Query = merge_types("Query", (CoreQuery, StatsQuery, FunnelQuery, SecurityQuery))
Mutation = merge_types(
    "Mutation",
    (TrackingMutations, WebsiteMutations, FunnelMutations, PrivacyMutations, SecurityMutations),
)
Subscription = merge_types("Subscription", (StatsSubscription,))
get_object_definition(Query, strict=True).description = (
    "Read access: websites and their stats, realtime, events and funnels; metric definitions."
)
get_object_definition(Mutation, strict=True).description = (
    "Changes: tracking and imports, websites, funnels, API keys, privacy deletions. Business "
    "failures come back as userErrors in each payload; nothing is changed when there are any."
)
get_object_definition(Subscription, strict=True).description = (
    "Pushed updates over graphql-transport-ws (realtime visitors of a website)."
)

schema = FootfallSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        lambda: AddValidationRules(LIMIT_RULES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
        CostLimiter,  # cost estimate, per-operation maximum, per-caller budget
        UnavailableAnswers,  # dependency down: UNAVAILABLE errors, HTTP 503 (after masking)
        mask_errors,  # only our own errors reach clients (graph/masking.py)
        OperationTimer,  # footfall_graphql_operation_seconds by operation name
        MarkOperation,  # tells the response cache a query from a mutation
    ],
)
