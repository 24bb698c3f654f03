"""Validation of filters and breakdown dimensions (errors name the argument)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from db.queries.dimensions import EVENT_DIMENSIONS, SESSION_DIMENSIONS, FilterSpec
from resolvers.definitions import MAX_FILTER_VALUES, MAX_FILTERS
from resolvers.errors import UserError

DIMENSIONS = frozenset(EVENT_DIMENSIONS | SESSION_DIMENSIONS)
OPERATORS = frozenset({"IS", "IS_NOT", "CONTAINS", "NOT_CONTAINS", "MATCHES", "IN", "NOT_IN"})
MAX_VALUE_LENGTH = 2048


@dataclass(frozen=True)
class RawFilter:
    """A filter as the API received it (enum names as strings)."""

    dimension: str
    operator: str
    values: Sequence[str]
    property: str | None = None


def check_property(dimension: str, prop: str | None, field: str) -> str | None:
    """The property key for PROPERTY (required, 1–255 chars); None otherwise."""
    if dimension != "PROPERTY":
        return None
    if prop is None or not prop.strip():
        raise UserError(f"{field}: the PROPERTY dimension needs a property key", [field],
                        "REQUIRED")  # fmt: skip
    if len(prop) > 255:
        raise UserError(f"{field}: at most 255 characters", [field], "TOO_LONG")
    return prop


def validate_filters(raw: Sequence[RawFilter] | None) -> tuple[FilterSpec, ...]:
    """Check every filter; ``UserError`` with field ``filters[i]...``. The result is
    canonical (sorted, values de-duplicated) so that equal filter lists share a key."""
    if not raw:
        return ()
    if len(raw) > MAX_FILTERS:
        raise UserError(f"filters: at most {MAX_FILTERS}", ["filters"], "TOO_LARGE")
    specs: list[FilterSpec] = []
    for i, f in enumerate(raw):
        where = f"filters[{i}]"
        if f.dimension not in DIMENSIONS:
            raise UserError(f"{where}.dimension: unknown {f.dimension!r}", ["filters", str(i)])
        if f.operator not in OPERATORS:
            raise UserError(f"{where}.operator: unknown {f.operator!r}", ["filters", str(i)])
        prop = check_property(f.dimension, f.property, f"{where}.property")
        values = tuple(f.values)
        if not 1 <= len(values) <= MAX_FILTER_VALUES:
            raise UserError(f"{where}.values: 1–{MAX_FILTER_VALUES} values",
                            ["filters", str(i), "values"], "OUT_OF_RANGE")  # fmt: skip
        for value in values:
            if len(value) > MAX_VALUE_LENGTH or "\x00" in value:
                raise UserError(f"{where}.values: at most {MAX_VALUE_LENGTH} characters, no NUL",
                                ["filters", str(i), "values"])  # fmt: skip
            if f.operator == "MATCHES":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise UserError(
                        f"{where}.values: invalid regular expression {value!r} ({exc})",
                        ["filters", str(i), "values"],
                    ) from None
        specs.append(FilterSpec(f.dimension, f.operator, tuple(sorted(set(values))), prop))
    return tuple(sorted(set(specs), key=lambda s: (s.dimension, s.operator, s.property or "",
                                                     s.values)))  # fmt: skip


def check_dimension(dimension: str, prop: str | None) -> str | None:
    """A breakdown dimension; returns the property key for PROPERTY."""
    if dimension not in DIMENSIONS:
        raise UserError(f"dimension: unknown {dimension!r}", ["dimension"])
    return check_property(dimension, prop, "property")
