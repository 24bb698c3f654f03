"""Enums and inputs of funnel definitions (rules in resolvers/funnels.py)."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from resolvers import funnels as ops

ORDERING_RULES = (
    "ORDERED: steps 1..k matched by events in strictly increasing time, other events "
    "allowed in between. STRICT: as ORDERED, and no other page view of the subject with "
    "t(i) < ts <= t(i+1) between consecutive matched steps (custom events allowed). ANY: "
    "step 1 starts the attempt; steps 2..k each have a matching event strictly after it "
    "and within the window, in any order (one event may satisfy several steps)."
)


@strawberry.enum(description="What a funnel step matches.")
class FunnelStepType(Enum):
    PAGE = strawberry.enum_value(
        "PAGE", description="A page view whose path equals the pattern; `*` matches any "
        "characters, anchored at both ends (`/product/*` ≠ `/old/product/1`).",
    )  # fmt: skip
    CUSTOM = strawberry.enum_value(
        "CUSTOM", description="A custom event named `pattern`, with the `properties` "
        "equalities (JSON values compared with their type).",
    )  # fmt: skip
    EVENT = strawberry.enum_value(
        "EVENT", description="A report of the browser funnel tracker for this funnel and "
        "step position (POST /api/v1/funnels/track); `pattern` is the CSS selector it watches.",
    )  # fmt: skip


@strawberry.enum(description="What a funnel counts.")
class FunnelCount(Enum):
    VISITOR = strawberry.enum_value("VISITOR", description="Visitors (visitor id).")
    SESSION = strawberry.enum_value("SESSION", description="Sessions; a path stays in one.")


@strawberry.enum(description="How steps must follow each other. " + ORDERING_RULES)
class FunnelOrdering(Enum):
    ORDERED = strawberry.enum_value(
        "ORDERED", description="Steps in strictly increasing time; anything in between."
    )
    STRICT = strawberry.enum_value(
        "STRICT", description="As ORDERED, with no other page view between consecutive steps."
    )
    ANY = strawberry.enum_value(
        "ANY", description="Steps 2..n in any order after step 1, within the window."
    )


@strawberry.input(description="One step of a new or changed funnel.")
class FunnelStepInput:
    name: str = strawberry.field(description="Display name (1–100 characters).")
    type: FunnelStepType = strawberry.field(description="What the step matches.")
    pattern: str = strawberry.field(
        description="PAGE: path starting with / or * (≤ 2048; `*` = any characters, "
        "anchored); CUSTOM: event name (≤ 100); EVENT: CSS selector for the tracker (≤ 500)."
    )
    properties: JSON | None = strawberry.field(
        default=None,
        description="CUSTOM only: object of ≤ 20 equalities (string, number or boolean values).",
    )


@strawberry.input(description="A new funnel (write scope on the website).")
class CreateFunnelInput:
    website_id: strawberry.ID = strawberry.field(description="The website.")
    name: str = strawberry.field(description="Display name (1–200 characters).")
    description: str | None = strawberry.field(default=None, description="≤ 2,000 chars.")
    steps: list[FunnelStepInput] = strawberry.field(description="2–20 steps, in order.")
    is_active: bool = strawberry.field(default=True, description="Loaded by the tracker.")
    window: int = strawberry.field(
        default=ops.DEFAULT_WINDOW, description="Conversion window, seconds (1 – 7776000)."
    )
    count_by: FunnelCount = strawberry.field(default=FunnelCount.VISITOR, description="Unit.")
    ordering: FunnelOrdering = strawberry.field(
        default=FunnelOrdering.ORDERED, description="Step order rule (see FunnelOrdering)."
    )


@strawberry.input(description="Changes to a funnel; omitted fields stay as they are.")
class UpdateFunnelInput:
    id: strawberry.ID = strawberry.field(description="The funnel to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description="New name.")
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="New description; null clears it."
    )
    steps: list[FunnelStepInput] | None = strawberry.field(
        default=strawberry.UNSET, description="New steps (replace all; 2–20)."
    )
    is_active: bool | None = strawberry.field(default=strawberry.UNSET, description="Active.")
    window: int | None = strawberry.field(
        default=strawberry.UNSET, description="Window, seconds (1 – 7776000)."
    )
    count_by: FunnelCount | None = strawberry.field(default=strawberry.UNSET, description="Unit.")
    ordering: FunnelOrdering | None = strawberry.field(
        default=strawberry.UNSET, description="Step order rule."
    )


@strawberry.input(description="The funnel to delete.")
class DeleteFunnelInput:
    id: strawberry.ID = strawberry.field(description="The funnel to delete.")
