"""Inputs and enums shared by stats, events and funnels: ranges, filters, dimensions.

Also the translation of operation errors into GraphQL errors for query fields: a
``UserError`` becomes a top-level error whose message names the argument, with
``extensions = {"code": "BAD_USER_INPUT", "field": "<argument path>"}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from graphql import GraphQLError

from db.queries.dimensions import FilterSpec
from resolvers import definitions as d
from resolvers.errors import Forbidden, NotFound, ServiceUnavailable, UserError
from resolvers.filters import RawFilter, validate_filters
from resolvers.ranges import Range, resolve_range


@strawberry.enum(description=d.RANGE_PRESET)
class RangePreset(Enum):
    TODAY = "TODAY"
    YESTERDAY = "YESTERDAY"
    LAST_24_HOURS = "LAST_24_HOURS"
    LAST_7_DAYS = "LAST_7_DAYS"
    LAST_30_DAYS = "LAST_30_DAYS"
    LAST_90_DAYS = "LAST_90_DAYS"
    THIS_MONTH = "THIS_MONTH"
    LAST_MONTH = "LAST_MONTH"
    THIS_YEAR = "THIS_YEAR"


@strawberry.enum(description=d.TIMESERIES)
class Interval(Enum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@strawberry.enum(description=d.DIMENSION + " CHANNEL: " + d.CHANNEL)
class Dimension(Enum):
    PAGE = "PAGE"
    ENTRY_PAGE = "ENTRY_PAGE"
    EXIT_PAGE = "EXIT_PAGE"
    REFERRER = "REFERRER"
    SOURCE = "SOURCE"
    CHANNEL = "CHANNEL"
    UTM_SOURCE = "UTM_SOURCE"
    UTM_MEDIUM = "UTM_MEDIUM"
    UTM_CAMPAIGN = "UTM_CAMPAIGN"
    UTM_TERM = "UTM_TERM"
    UTM_CONTENT = "UTM_CONTENT"
    COUNTRY = "COUNTRY"
    CITY = "CITY"
    BROWSER = "BROWSER"
    OS = "OS"
    DEVICE = "DEVICE"
    EVENT = "EVENT"
    PROPERTY = "PROPERTY"


@strawberry.enum(description="How a filter compares a dimension's value with its values.")
class FilterOperator(Enum):
    IS = "IS"
    IS_NOT = "IS_NOT"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    MATCHES = "MATCHES"
    IN = "IN"
    NOT_IN = "NOT_IN"


@strawberry.input(description=d.RANGE)
class RangeInput:
    from_: datetime | None = strawberry.field(default=None, name="from", description=d.RANGE_FROM)
    to: datetime | None = strawberry.field(default=None, description=d.RANGE_TO)
    preset: RangePreset | None = strawberry.field(default=None, description=d.RANGE_PRESET)


@strawberry.input(description="One condition on a dimension. " + d.FILTERS)
class FilterInput:
    dimension: Dimension = strawberry.field(description="The dimension compared.")
    property: str | None = strawberry.field(
        default=None, description="The property key; required for PROPERTY (≤ 255 chars)."
    )
    operator: FilterOperator = strawberry.field(description="The comparison.")
    values: list[str] = strawberry.field(description=d.FILTER_VALUES)


# The arguments every ranged field takes, declared once (name them ``range``,
# ``timezone`` and ``filters``; the last two default to None).
RangeArg = Annotated[RangeInput, strawberry.argument(description=d.RANGE)]
TimeZoneArg = Annotated[str | None, strawberry.argument(description=d.TIME_ZONE)]
FiltersArg = Annotated[list[FilterInput] | None, strawberry.argument(description=d.FILTERS)]


def to_range(
    value: RangeInput, timezone: str | None, default_zone: str, retention_days: int
) -> Range:
    """Resolve a RangeInput (``UserError`` naming ``timezone`` or ``range``)."""
    return resolve_range(
        start=value.from_, end=value.to, preset=value.preset.value if value.preset else None,
        timezone=timezone, default_zone=default_zone, retention_days=retention_days,
    )  # fmt: skip


def to_filters(values: list[FilterInput] | None) -> tuple[FilterSpec, ...]:
    """Validate FilterInputs (``UserError`` naming ``filters[i]…``)."""
    raw = [RawFilter(f.dimension.value, f.operator.value, list(f.values), f.property)
           for f in values or []]  # fmt: skip
    return validate_filters(raw)


def bad_user_input(exc: UserError) -> GraphQLError:
    return GraphQLError(
        exc.message, extensions={"code": "BAD_USER_INPUT", "field": exc.field_path or None}
    )


@contextlib.contextmanager
def graphql_errors() -> Iterator[None]:
    """Re-raise operation errors as GraphQL errors clients can act on."""
    try:
        yield
    except NotFound as exc:
        raise GraphQLError(exc.message, extensions={"code": "NOT_FOUND"}) from None
    except Forbidden as exc:
        raise GraphQLError(
            exc.message, extensions={"code": "FORBIDDEN", "field": exc.field_path or None}
        ) from None
    except UserError as exc:
        raise bad_user_input(exc) from None
    except ServiceUnavailable as exc:  # graph/unavailable.py answers 503
        raise GraphQLError(exc.message, extensions={"code": "UNAVAILABLE"}) from None
