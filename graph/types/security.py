"""API keys: ``apiKeys`` (query), ``createApiKey`` and ``revokeApiKey`` (admin scope).

See ``resolvers.api_keys`` for the rules (keys are stored hashed, shown once; a caller
grants only websites and a scope it holds; revocation is effective within 5 s).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from db.queries.api_keys import ApiKeyRow
from graph.context import Context
from graph.types.common import DeletePayload, UserError, deleted
from resolvers import api_keys as ops
from resolvers.errors import UserError as UserErrorExc


@strawberry.enum(description="What a credential may do: READ < WRITE < ADMIN.")
class ApiKeyScope(Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@strawberry.type(description="A long-lived API key (its secret is never shown again).")
class ApiKey:
    id: strawberry.ID = strawberry.field(description="Key id (UUID), for revokeApiKey.")
    name: str = strawberry.field(description="Label chosen at creation (≤ 100 characters).")
    websites: list[strawberry.ID] | None = strawberry.field(
        description="Websites the key may access; null = all websites."
    )
    scope: ApiKeyScope = strawberry.field(description="What the key may do.")
    created_at: datetime = strawberry.field(description="Creation time (UTC).")
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked (UTC); null while it works."
    )

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKey:
        sites = None if row.websites is None else [strawberry.ID(w) for w in row.websites]
        return cls(id=strawberry.ID(row.id), name=row.name, websites=sites,
                   scope=ApiKeyScope(row.scope), created_at=row.created_at,
                   revoked_at=row.revoked_at)  # fmt: skip


@strawberry.input(description="A new API key. Needs admin scope.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="Label (1–100 characters).")
    websites: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Websites it may access (1–1,000, each one the caller covers); null = "
        "all websites (only a credential for all websites may grant that).",
    )
    scope: ApiKeyScope = strawberry.field(
        default=ApiKeyScope.READ, description="At most the caller's own scope."
    )


@strawberry.input(description="The API key to revoke.")
class RevokeApiKeyInput:
    id: strawberry.ID = strawberry.field(description="Key id (UUID).")


@strawberry.type(description="Result of createApiKey.")
class CreateApiKeyPayload:
    api_key: ApiKey | None = strawberry.field(description="The key's metadata; null on error.")
    key: str | None = strawberry.field(
        description="The secret (`ffk_…`), shown only in this response: send it as "
        "`X-API-Key` or `Authorization: Bearer`. Null on error."
    )
    user_errors: list[UserError] = strawberry.field(description="Why no key was created.")


@strawberry.type
class SecurityQuery:
    @strawberry.field(
        description="API keys the caller may manage (admin scope; keys whose websites it "
        "covers), newest first, revoked ones included; [] for other callers. At most 1,000."
    )
    async def api_keys(self, info: Info[Context, None]) -> list[ApiKey]:
        ctx = info.context
        rows = await ops.list_visible(ctx.runtime, ctx.principal)
        return [ApiKey.of(r) for r in rows[:1000]]


@strawberry.type
class SecurityMutations:
    @strawberry.mutation(description="Create an API key (admin scope); the secret is shown once.")
    async def create_api_key(
        self,
        info: Info[Context, None],
        input: Annotated[
            CreateApiKeyInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> CreateApiKeyPayload:
        ctx = info.context
        sites = None if input.websites is None else [str(w) for w in input.websites]
        try:
            row, key = await ops.create(
                ctx.runtime, ctx.principal, input.name, sites, input.scope.value
            )
        except UserErrorExc as exc:
            return CreateApiKeyPayload(api_key=None, key=None, user_errors=[UserError.of(exc)])
        return CreateApiKeyPayload(api_key=ApiKey.of(row), key=key, user_errors=[])

    @strawberry.mutation(
        description="Revoke an API key (admin scope over its websites); it stops working "
        "at once in this process and within 5 s everywhere. Revoking twice is not an error."
    )
    async def revoke_api_key(
        self,
        info: Info[Context, None],
        input: Annotated[
            RevokeApiKeyInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> DeletePayload:
        ctx = info.context
        return await deleted(input.id, ops.revoke(ctx.runtime, ctx.principal, str(input.id)))
