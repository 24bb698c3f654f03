"""Shared fixtures: a fresh PostgreSQL database per test run on the machine's server
(``TEST_DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/test`` is used
only to create and drop it), real Redis (``TEST_REDIS_URL``), and the real ASGI app.

A missing PostgreSQL or Redis fails the run: nothing is skipped silently.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from graph.app import create_app
from graph.auth import create_token
from graph.settings import Secret, Settings

ADMIN_DSN = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
JWT_SECRET = "test-secret-0123456789abcdef-0123456789"
API_KEY = "test-global-api-key"


def _dsn_for(db: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"footfall_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        try:
            conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        except Exception as exc:  # a missing service fails the run
            pytest.fail(f"PostgreSQL at {ADMIN_DSN} does not answer: {exc}", pytrace=False)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(create())
    yield _dsn_for(name)
    asyncio.run(drop())


@pytest.fixture(scope="session")
def redis_url() -> str:
    async def ping() -> None:
        client = aioredis.from_url(REDIS_URL)
        try:
            await client.ping()
        except Exception as exc:
            pytest.fail(f"Redis at {REDIS_URL} does not answer: {exc}", pytrace=False)
        finally:
            await client.aclose()

    asyncio.run(ping())
    return REDIS_URL


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=Secret(JWT_SECRET),
        global_api_key=Secret(API_KEY),
        batch_timeout=0.002,
        max_db_connections=10,
        background_jobs=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as c:
        yield c


@pytest.fixture(scope="session")
def pool(app: Any) -> asyncpg.Pool:
    return app.state.runtime.pools.write


def token(settings: Settings, websites: list[str] | str = "*", scope: str = "admin") -> str:
    return create_token(settings, subject="test", websites=websites, scope=scope, ttl_seconds=3600)


@pytest.fixture(scope="session")
def admin_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings)}"}


async def make_website(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    domain: str = "example.com",
    timezone: str = "UTC",
    is_public: bool = False,
    website_id: str | None = None,
) -> str:
    """Create a website through the GraphQL API; return its id."""
    website_id = website_id or f"site-{uuid.uuid4().hex[:12]}"
    res = await gql(
        client,
        """mutation($i: CreateWebsiteInput!) { createWebsite(input: $i) {
             website { id } userErrors { field message } } }""",
        {"i": {"id": website_id, "domain": domain, "timezone": timezone, "isPublic": is_public}},
        headers,
    )
    assert res["data"]["createWebsite"]["userErrors"] == [], res
    return website_id


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    assert r.status_code in (200, 400, 401), r.text
    body: dict[str, Any] = r.json()
    return body
