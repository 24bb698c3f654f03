"""``deleteVisitorData`` and ``anonymizeVisitorData``: erase or anonymise one visitor of
one website (write scope on it)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from graph.context import Context
from graph.types.common import DeletePayload, UserError, attempt, deleted
from resolvers import privacy as ops


@strawberry.input(description="The visitor whose data to erase.")
class DeleteVisitorDataInput:
    website_id: strawberry.ID = strawberry.field(description="The website (write scope).")
    visitor_id: str = strawberry.field(
        description="The visitor id as stored in events (1–255 characters)."
    )


@strawberry.input(description="The visitor whose data to anonymise.")
class AnonymizeVisitorDataInput:
    website_id: strawberry.ID = strawberry.field(description="The website (write scope).")
    visitor_id: str = strawberry.field(
        description="The visitor id as stored in events (1–255 characters)."
    )


@strawberry.type(description="What anonymizeVisitorData changed.")
class AnonymizeVisitorDataPayload:
    events: int | None = strawberry.field(description="Events changed; null on userErrors.")
    sessions: int | None = strawberry.field(description="Sessions changed; null on userErrors.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed.")


@strawberry.type
class PrivacyMutations:
    @strawberry.mutation(
        description="Erase every event and session of one visitor of one website, in one "
        "transaction, recorded in the audit log (write scope on the website). deletedId is "
        "the visitor id (also when the visitor had no data)."
    )
    async def delete_visitor_data(
        self,
        info: Info[Context, None],
        input: Annotated[
            DeleteVisitorDataInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> DeletePayload:
        ctx = info.context
        op = ops.delete_visitor(ctx.runtime, ctx.principal, str(input.website_id), input.visitor_id)
        return await deleted(strawberry.ID(input.visitor_id.strip()), op)

    @strawberry.mutation(
        description="Irreversibly anonymise one visitor of one website, in one transaction "
        "recorded in the audit log (write scope): the visitor's and its sessions' ids become "
        "`anon_` + 16 hex digits of a keyed SHA-256 whose key is discarded, city is cleared "
        "and referrer query strings cut. Counts stay as they were (the same person and "
        "visits under new ids); the old id finds nothing afterwards."
    )
    async def anonymize_visitor_data(
        self,
        info: Info[Context, None],
        input: Annotated[
            AnonymizeVisitorDataInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> AnonymizeVisitorDataPayload:
        ctx = info.context
        counts, errors = await attempt(ops.anonymize_visitor(
            ctx.runtime, ctx.principal, str(input.website_id), input.visitor_id))  # fmt: skip
        return AnonymizeVisitorDataPayload(
            events=counts["events"] if counts else None,
            sessions=counts["sessions"] if counts else None,
            user_errors=errors,
        )
