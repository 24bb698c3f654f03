"""Helpers of the security and privacy tests: tenants, API keys, a second app with its
own settings, and queries as named constants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from graph.app import create_app
from graph.settings import Settings
from tests.conftest import gql, make_website, token

IMPORT = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
  accepted userErrors { field message code } } }"""
TRACK = """mutation($i: TrackEventsInput!) { trackEvents(input: $i) {
  accepted eventIds userErrors { field message code } } }"""
CREATE_KEY = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) {
  key apiKey { id name websites scope revokedAt } userErrors { field message code } } }"""
REVOKE_KEY = """mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) {
  deletedId userErrors { field message code } } }"""
CREATE_FUNNEL = """mutation($i: CreateFunnelInput!) { createFunnel(input: $i) {
  funnel { id } userErrors { field message code } } }"""
DELETE_VISITOR = """mutation($i: DeleteVisitorDataInput!) { deleteVisitorData(input: $i) {
  deletedId userErrors { field message code } } }"""
ANONYMIZE_VISITOR = """mutation($i: AnonymizeVisitorDataInput!) { anonymizeVisitorData(input: $i) {
  events sessions userErrors { field message code } } }"""


def bearer(jwt: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt}"}


@dataclass
class Tenant:
    """A website with an owner account, a visitor with events, a funnel, an API key."""

    site: str
    owner: str
    visitor: str
    funnel: str
    key_id: str
    key: str
    headers: dict[str, str]  # admin JWT limited to this tenant's website


def recent(minutes: int = 5) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


async def import_events(
    client: httpx.AsyncClient, headers: dict[str, str], site: str, events: list[dict[str, Any]]
) -> None:
    res = await gql(client, IMPORT, {"i": {"websiteId": site, "events": events}}, headers)
    payload = res["data"]["importEvents"]
    assert payload["userErrors"] == [] and payload["accepted"] == len(events), res


async def set_owner(
    client: httpx.AsyncClient, headers: dict[str, str], site: str, owner: str
) -> None:
    """Make ``owner`` (an account id) own ``site`` through ``updateWebsite``."""
    res = await gql(client, """mutation($i: UpdateWebsiteInput!) { updateWebsite(input: $i) {
        website { ownerId } userErrors { message } } }""", {"i": {"id": site, "ownerId": owner}},
        headers)  # fmt: skip
    assert res["data"]["updateWebsite"] == {"website": {"ownerId": owner}, "userErrors": []}, res


async def make_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, pool: Any,
    *, domain: str = "tenant.example",
) -> Tenant:  # fmt: skip
    site = await make_website(client, admin, domain=domain)
    owner = f"user-{uuid.uuid4().hex[:8]}"
    await set_owner(client, admin, site, owner)
    visitor = f"v-{uuid.uuid4().hex[:8]}"
    await import_events(client, admin, site, [
        {"visitorId": visitor, "sessionId": f"s-{visitor}", "page": "/", "timestamp": recent(9),
         "referrer": "https://news.example/a?utm=x&id=42", "city": "Berlin", "country": "DE"},
        {"visitorId": visitor, "sessionId": f"s-{visitor}", "page": "/pricing",
         "timestamp": recent(8), "eventType": "signup", "properties": {"plan": "pro"}},
    ])  # fmt: skip
    res = await gql(client, CREATE_FUNNEL, {"i": {"websiteId": site, "name": "F", "steps": [
        {"name": "home", "type": "PAGE", "pattern": "/"},
        {"name": "pricing", "type": "PAGE", "pattern": "/pricing"}]}}, admin)  # fmt: skip
    assert res["data"]["createFunnel"]["userErrors"] == [], res
    funnel = res["data"]["createFunnel"]["funnel"]["id"]
    res = await gql(client, CREATE_KEY, {"i": {"name": f"key {site}", "websites": [site],
                                               "scope": "ADMIN"}}, admin)  # fmt: skip
    created = res["data"]["createApiKey"]
    assert created["userErrors"] == [], res
    headers = bearer(token(settings, [site], "admin"))
    return Tenant(site, owner, visitor, funnel, created["apiKey"]["id"], created["key"], headers)


async def event_count(pool: Any, site: str, visitor: str | None = None) -> int:
    if visitor is None:
        return int(await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site))
    return int(await pool.fetchval(
        "SELECT count(*) FROM events WHERE website_id = $1 AND visitor_id = $2", site, visitor))  # fmt: skip


@asynccontextmanager
async def other_app(
    settings: Settings, client_ip: str, **changes: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A second app on the same database with changed settings, its client at
    ``client_ip`` (so that its per-IP counters start empty)."""
    application = create_app(settings.with_(**changes))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=(client_ip, 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as c:
            yield c, application
