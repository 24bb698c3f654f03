"""``deleteVisitorData``: erase one visitor of one website (write scope on it)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from graph.context import Context
from graph.types.common import DeletePayload, deleted
from resolvers import privacy as ops


@strawberry.input(description="The visitor whose data to erase.")
class DeleteVisitorDataInput:
    website_id: strawberry.ID = strawberry.field(description="The website (write scope).")
    visitor_id: str = strawberry.field(
        description="The visitor id as stored in events (1–255 characters)."
    )


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
