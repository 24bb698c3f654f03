"""Funnel definitions: validation, access checks and the create/update/delete operations.

A definition (metrics.md, Funnels) has a name (1–200 characters), an optional
description (≤ 2,000), 2–20 steps, an active flag, a conversion window in seconds
(1 s – 90 days, default 7 days), ``count_by`` VISITOR|SESSION and ``ordering``
ORDERED|STRICT|ANY. A step is ``{name, type, pattern, properties}``:

- PAGE: ``pattern`` is a path; ``*`` matches any characters, everything else is
  literal, anchored at both ends (``/product/*`` matches ``/product/42``, not
  ``/old/product/42``). Starts with ``/`` or ``*``; ≤ 2,048 characters.
- CUSTOM: ``pattern`` is the custom event name (≤ 100, not ``pageview``,
  ``session_start``, ``session_end`` or ``funnel_step``); ``properties`` an optional
  object of at most 20 equalities whose values are strings, numbers or booleans.
- EVENT: a step reported by the browser funnel tracker for this funnel and step
  position; ``pattern`` is the CSS selector the tracker watches (≤ 500 characters).

Writes need write scope on the funnel's website; reads need read access. A funnel of
a website the caller cannot see is "not found".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from db.queries import funnels as funnel_sql
from db.queries.funnels import FunnelRow
from resolvers.access import Principal
from resolvers.errors import NotFound, UserError
from resolvers.runtime import Runtime

MIN_STEPS, MAX_STEPS = 2, 20
DEFAULT_WINDOW = 7 * 86400  # seconds
MAX_WINDOW = 90 * 86400  # seconds
MAX_NAME, MAX_DESCRIPTION = 200, 2000
MAX_STEP_NAME, MAX_PATH, MAX_EVENT_NAME, MAX_SELECTOR = 100, 2048, 100, 500
MAX_STEP_PROPERTIES = 20
STEP_TYPES = ("PAGE", "CUSTOM", "EVENT")
COUNT_BY = ("VISITOR", "SESSION")
ORDERINGS = ("ORDERED", "STRICT", "ANY")
RESERVED_EVENTS = frozenset({"pageview", "session_start", "session_end", "funnel_step"})


def _text(value: Any, field: list[str], limit: int, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise UserError(f"{'.'.join(field)}: must not be empty", field, "REQUIRED")
        return None
    if not isinstance(value, str):
        raise UserError(f"{'.'.join(field)}: must be a string", field)
    if "\x00" in value:
        raise UserError(f"{'.'.join(field)}: must not contain NUL characters", field)
    text = str(value).strip()
    if len(text) > limit:
        raise UserError(f"{'.'.join(field)}: longer than {limit} characters", field, "TOO_LONG")
    return text


def _properties(value: Any, field: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{'.'.join(field)}: must be a JSON object", field)
    if len(value) > MAX_STEP_PROPERTIES:
        raise UserError(
            f"{'.'.join(field)}: at most {MAX_STEP_PROPERTIES} keys", field, "TOO_LARGE"
        )
    for key, item in value.items():
        if not key or "\x00" in key or not isinstance(item, str | int | float | bool):
            raise UserError(
                f"{'.'.join(field)}: {key!r} must map to a string, number or boolean", field
            )
    return dict(value) or None


def validate_step(raw: Mapping[str, Any], index: int) -> dict[str, Any]:
    """One step as stored: ``{name, type, pattern, properties}``; else ``UserError``."""
    at = ["steps", str(index)]
    name = _text(raw.get("name"), [*at, "name"], MAX_STEP_NAME)
    kind = str(raw.get("type") or "").upper()
    if kind not in STEP_TYPES:
        raise UserError(f"steps.{index}.type: one of PAGE, CUSTOM, EVENT", [*at, "type"])
    pattern_field = [*at, "pattern"]
    props = raw.get("properties")
    if kind == "PAGE":
        pattern = _text(raw.get("pattern"), pattern_field, MAX_PATH)
        assert pattern is not None
        if not pattern.startswith(("/", "*")):
            raise UserError(f"steps.{index}.pattern: a path starting with / (or *)", pattern_field)
    elif kind == "CUSTOM":
        pattern = _text(raw.get("pattern"), pattern_field, MAX_EVENT_NAME)
        if pattern in RESERVED_EVENTS:
            raise UserError(
                f"steps.{index}.pattern: {pattern!r} is not a custom event name", pattern_field
            )
    else:
        pattern = _text(raw.get("pattern"), pattern_field, MAX_SELECTOR)
    if kind != "CUSTOM" and props is not None:
        raise UserError(
            f"steps.{index}.properties: only CUSTOM steps match properties", [*at, "properties"]
        )
    return {
        "name": name,
        "type": kind,
        "pattern": pattern,
        "properties": _properties(props, [*at, "properties"]),
    }


def validate_steps(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list | tuple) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise UserError(f"steps: {MIN_STEPS}–{MAX_STEPS} steps are required", ["steps"])
    return [validate_step(s, i) for i, s in enumerate(steps)]


def validate_window(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW:
        raise UserError(
            f"window: seconds between 1 and {MAX_WINDOW} (90 days)", ["window"], "OUT_OF_RANGE"
        )
    return value


def _choice(value: Any, allowed: Sequence[str], field: str) -> str:
    text = str(value or "").upper()
    if text not in allowed:
        raise UserError(f"{field}: one of {', '.join(allowed)}", [field])
    return text


async def get_visible(rt: Runtime, who: Principal, funnel_id: str) -> FunnelRow | None:
    """The funnel if the caller may read its website, else None."""
    row = (await funnel_sql.get_many(rt.pools.write, [funnel_id]))[0]
    if row is None:
        return None
    site = await rt.websites.get(row.website_id)
    return row if site is not None and who.can_read(site) else None


async def get_many_visible(
    rt: Runtime, who: Principal, funnel_ids: list[str]
) -> list[FunnelRow | None]:
    """Funnels by id in order; None for a miss or a funnel the caller may not read."""
    rows = await funnel_sql.get_many(rt.pools.write, funnel_ids)
    out: list[FunnelRow | None] = []
    for row in rows:
        site = await rt.websites.get(row.website_id) if row else None
        out.append(row if row and site and who.can_read(site) else None)
    return out


async def list_for_websites(
    rt: Runtime, website_ids: list[str], active_only: bool
) -> dict[str, list[FunnelRow]]:
    """Funnels of already-visible websites, newest first, keyed by website id."""
    out: dict[str, list[FunnelRow]] = {w: [] for w in website_ids}
    for row in await funnel_sql.list_for_websites(rt.pools.write, website_ids, active_only):
        out[row.website_id].append(row)
    return out


async def create(rt: Runtime, who: Principal, values: Mapping[str, Any]) -> FunnelRow:
    site_id = str(values.get("website_id") or "")
    who.require("write", await rt.websites.get(site_id), site_id)
    row = {
        "website_id": site_id,
        "name": _text(values.get("name"), ["name"], MAX_NAME),
        "description": _text(
            values.get("description"), ["description"], MAX_DESCRIPTION, required=False
        ),
        "steps": validate_steps(values.get("steps")),
        "is_active": bool(values.get("is_active", True)),
        "window_seconds": validate_window(values.get("window", DEFAULT_WINDOW)),
        "count_by": _choice(values.get("count_by", "VISITOR"), COUNT_BY, "countBy"),
        "ordering": _choice(values.get("ordering", "ORDERED"), ORDERINGS, "ordering"),
        "user_id": who.subject,
    }
    return await funnel_sql.insert(rt.pools.write, row)


async def _writable(rt: Runtime, who: Principal, funnel_id: str) -> FunnelRow:
    row = await get_visible(rt, who, funnel_id)
    if row is None:
        raise NotFound(f"funnel {funnel_id!r} not found", ["id"])
    try:
        who.require("write", await rt.websites.get(row.website_id), row.website_id)
    except NotFound:  # pragma: no cover - visible above
        raise NotFound(f"funnel {funnel_id!r} not found", ["id"]) from None
    return row


async def update(
    rt: Runtime, who: Principal, funnel_id: str, changes: Mapping[str, Any]
) -> FunnelRow:
    """Apply the given changes (absent keys stay; ``description`` None clears it)."""
    await _writable(rt, who, funnel_id)
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = _text(changes["name"], ["name"], MAX_NAME)
    if "description" in changes:
        clean["description"] = _text(
            changes["description"], ["description"], MAX_DESCRIPTION, required=False
        )
    if "steps" in changes:
        clean["steps"] = validate_steps(changes["steps"])
    if "is_active" in changes:
        clean["is_active"] = bool(changes["is_active"])
    if "window" in changes:
        clean["window_seconds"] = validate_window(changes["window"])
    if "count_by" in changes:
        clean["count_by"] = _choice(changes["count_by"], COUNT_BY, "countBy")
    if "ordering" in changes:
        clean["ordering"] = _choice(changes["ordering"], ORDERINGS, "ordering")
    row = await funnel_sql.update(rt.pools.write, funnel_id, clean)
    if row is None:
        raise NotFound(f"funnel {funnel_id!r} not found", ["id"])
    return row


async def delete(rt: Runtime, who: Principal, funnel_id: str) -> None:
    """Delete the definition. Tracker reports already stored stay events of the
    website (they count as custom events ``funnel_step``) and match no funnel again."""
    await _writable(rt, who, funnel_id)
    if not await funnel_sql.delete(rt.pools.write, funnel_id):
        raise NotFound(f"funnel {funnel_id!r} not found", ["id"])
