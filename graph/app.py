"""The app factory: routes, middleware and a lifespan that owns every connection.

``create_app(settings)`` is used by ``footfall serve`` and by the tests, each with its
own settings. Start-up order: embedded PostgreSQL (only without ``DATABASE_URL``) →
pools → migrations → TimescaleDB policies → writer (the group commit, or with
``INGEST_QUEUE=redis`` the Redis Streams producer) → Redis (optional) → background jobs
(the maintenance scheduler, ``graph.jobs``). Shutdown runs the reverse and drains the
writer first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from db import timescale
from db.embedded import EmbeddedPostgres
from db.ingest_queue import QueueWriter, connect
from db.migrate import migrate
from db.pool import Pools, create_pool
from db.writer import BatchWriter, RowWriter
from graph import stats_runtime
from graph.assets import asset_routes
from graph.dashboard import dashboard_routes
from graph.graphiql import graphiql_routes
from graph.graphql_app import FootfallGraphQL
from graph.health import health, ready
from graph.jobs import maintenance_loop
from graph.logs import RequestIdMiddleware
from graph.metrics import gauge_loop, metrics, worker_stopped
from graph.response_cache import TTL, BumpOnWrite, ResponseCache
from graph.rest.funnels_track import track_funnel
from graph.rest.privacy import privacy_routes
from graph.rest.routes import rest_routes
from graph.rest.tracking import track_batch, track_event
from graph.schema import schema
from graph.security import refused_response, start_security, stop_security
from graph.settings import Settings
from resolvers import counters
from resolvers.enrich import GeoLocator, parse_user_agent
from resolvers.errors import Refused
from resolvers.funnel_rollup import funnel_rollup_loop
from resolvers.runtime import Runtime
from resolvers.stats_days import day_rollup_loop

log = logging.getLogger("footfall")


def _both(path: str, endpoint: Any, methods: list[str]) -> list[BaseRoute]:
    """The route with and without a trailing slash (no redirects)."""
    base = path.rstrip("/")
    return [Route(base, endpoint, methods=methods), Route(base + "/", endpoint, methods=methods)]


def _observe_commit(rows: int, seconds: float) -> None:
    counters.INGEST_BATCH_ROWS.observe(rows)
    counters.INGEST_COMMIT_SECONDS.observe(seconds)


def _writer(settings: Settings, write_pool: Any) -> RowWriter:
    if settings.ingest_queue == "redis":
        assert settings.redis_url is not None  # Settings.from_env checks it
        return QueueWriter(
            connect(settings.redis_url),
            streams=settings.ingest_streams,
            max_pending=settings.ingest_max_pending,
        )
    writer = BatchWriter(
        write_pool, batch_size=settings.batch_size, batch_timeout=settings.batch_timeout
    )
    writer.start()
    return writer


#: Connections each pool opens (and warms up, db/pool.py) at start, so that the first
#: requests of a new process neither connect nor load catalog caches: a dashboard needs
#: up to 3 at once, a funnel comparison one per funnel (5 side by side is common).
WARM_CONNECTIONS = 6


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        dsn = await asyncio.to_thread(embedded.start)
        app.state.database_url = dsn
    tasks: list[asyncio.Task[None]] = []
    write_pool = await create_pool(
        dsn, max_size=settings.max_db_connections, statement_timeout=settings.statement_timeout,
        min_size=WARM_CONNECTIONS,
    )  # fmt: skip
    read_pool = write_pool
    if settings.database_read_url:
        read_pool = await create_pool(
            settings.database_read_url,
            max_size=settings.max_db_connections,
            statement_timeout=settings.statement_timeout,
            min_size=WARM_CONNECTIONS,
        )
    pools = Pools(write_pool, read_pool)
    async with write_pool.acquire() as conn:
        use_ts = await timescale.use_timescale(conn, settings.timescale)
        if settings.run_migrations:
            await migrate(conn, timescale=use_ts)
        if use_ts:
            await timescale.apply_retention_policy(conn, settings.retention_days)
    writer = _writer(settings, write_pool)
    writer.observers.append(_observe_commit)
    geo = GeoLocator(settings.geoip_db)
    await asyncio.to_thread(parse_user_agent, "Mozilla/5.0 (warm-up)")  # load the UA rules now
    rt = Runtime(pools, writer, geo, settings.trusted_proxies, settings.retention_days, use_ts,
                 settings.stats_session_rollup,
                 funnel_rollup=settings.funnel_rollup and not use_ts,
                 day_rollup=settings.stats_day_rollup and not use_ts)  # fmt: skip
    app.state.runtime = rt
    app.state.draining = False
    for hook in app.state.startup_hooks:
        await hook(app, rt)
    if settings.prometheus_multiproc_dir is not None:  # one of several workers
        tasks.append(asyncio.create_task(gauge_loop(rt)))
    if settings.background_jobs:
        tasks.append(asyncio.create_task(maintenance_loop(
            rt, settings.aggregation_time, settings.aggregation_interval)))  # fmt: skip
        if rt.funnel_rollup:
            tasks.append(asyncio.create_task(funnel_rollup_loop(rt)))
        if rt.day_rollup:
            tasks.append(asyncio.create_task(day_rollup_loop(rt)))
    try:
        yield
    finally:
        app.state.draining = True
        for task in tasks:
            task.cancel()
        await writer.close()
        for hook in app.state.shutdown_hooks:
            with contextlib.suppress(Exception):
                await hook(app, rt)
        geo.close()
        await pools.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        if settings.prometheus_multiproc_dir is not None:
            worker_stopped(settings.prometheus_multiproc_dir)


def create_app(settings: Settings) -> Starlette:
    # Any origin may open the subscription, as CORS lets any origin call /graphql: the
    # credentials are bearer tokens (header, ?token= or connection_init), never cookies,
    # so a page on another site has nothing ambient to abuse. Dashboards are usually
    # served from another origin than the API.
    gql = FootfallGraphQL(schema, settings, graphql_ide="graphiql", allowed_origins=["*"])
    routes: list[BaseRoute] = [
        *_both("/health", health, ["GET"]),
        *_both("/ready", ready, ["GET"]),
        *_both("/metrics", metrics, ["GET"]),
        *_both("/api/v1/analytics/event", track_event, ["POST"]),
        *_both("/api/v1/analytics/event/batch", track_batch, ["POST"]),
        *_both("/api/v1/funnels/track", track_funnel, ["POST"]),
        *privacy_routes(),
        *rest_routes(),  # Seentics read/funnel/admin routes and /openapi.json
        *asset_routes(),
        *graphiql_routes(),
        *dashboard_routes(),
        Route("/graphql", gql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", gql),
    ]
    app = Starlette(
        routes=routes,
        lifespan=_lifespan,
        exception_handlers={Refused: refused_response},
        # Browser trackers post cross-origin; credentials are bearer tokens, never cookies.
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(BumpOnWrite),
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["X-Request-ID"],
                max_age=86400,
            ),
        ],
    )
    app.state.settings = settings
    # Several workers without Redis hear nothing of each other's commits: no response cache.
    app.state.responses = ResponseCache(ttl=0 if settings.workers_without_redis else TTL)
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    app.state.startup_hooks.append(start_security)  # rate limits (Redis), tracking limits
    app.state.shutdown_hooks.append(stop_security)
    stats_runtime.install(app)  # stats cache, realtime pub/sub, commit hook
    return app
