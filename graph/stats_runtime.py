"""Start-up/shutdown hooks of the read path: stats cache, realtime pub/sub, commit hook.

With ``settings.redis_url``: a ``RedisCache`` and a Redis-backed ``PubSub`` (each on
its own ``BlockingConnectionPool``; the cache's has short socket timeouts so that an
outage costs milliseconds, the listener's none). Without: in-process versions (with
``WORKER_COUNT`` > 1 no stats cache at all), and other processes' commits (``footfall
import`` beside a server) arrive as PostgreSQL notices (``db/notices.py``). Caches
serve only while other processes' commit notices can arrive (``PubSub.reliable``, the
PostgreSQL listener's ``reliable``) and are emptied when they can again. Every commit
of the writer bumps the cache generation of its websites (so imports into the past
invalidate cached answers) and notifies realtime subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from db.notices import Listener, notify
from graph.settings import Settings
from resolvers.cache import MemoryCache, RedisCache
from resolvers.realtime import PubSub, forget_realtime
from resolvers.runtime import Runtime

CACHE_CONNECTIONS = 64
PUBSUB_CONNECTIONS = 8


def _client(url: str, max_connections: int, socket_timeout: float | None) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=1.0, socket_connect_timeout=0.5,
        socket_timeout=socket_timeout,
    )  # fmt: skip
    return Redis(connection_pool=pool)


async def start_stats(app: Any, rt: Runtime) -> None:
    settings: Settings = app.state.settings
    clients: list[Redis] = []
    if settings.redis_url:
        cache_client = _client(settings.redis_url, CACHE_CONNECTIONS, 0.5)
        pubsub_client = _client(settings.redis_url, PUBSUB_CONNECTIONS, None)
        clients = [cache_client, pubsub_client]
        rt.cache = RedisCache(cache_client)
        rt.pubsub = PubSub(pubsub_client)
    else:
        # Several workers without Redis: a worker never hears another's commits, so an
        # in-process cache could hide an acknowledged event; answer uncached instead.
        rt.cache = None if settings.workers_without_redis else MemoryCache()
        rt.pubsub = PubSub(None)
    rt.extras["stats_redis_clients"] = clients
    responses = app.state.responses
    rt.pubsub.remote_hooks.append(lambda _sites: responses.bump())
    # Whole responses are only as fresh as the notices of other workers' commits: none
    # served while notices cannot arrive, and none kept from before they could again.
    responses.gate = lambda: rt.pubsub.reliable

    background: set[asyncio.Task[None]] = set()

    def notices_restored() -> None:
        """Other processes' notices may have been missed: drop what they would have."""
        responses.bump()
        forget_realtime(rt)
        if isinstance(rt.cache, MemoryCache):
            rt.cache.drop(None)
        elif isinstance(rt.cache, RedisCache):  # shared: send what this process missed
            task = asyncio.get_running_loop().create_task(rt.cache.redis_back())
            background.add(task)
            task.add_done_callback(background.discard)

    rt.pubsub.reconnect_hooks.append(notices_restored)

    def websites_changed(sites: list[str]) -> None:
        for site in sites:
            rt.websites.forget(site)
        responses.bump()

    rt.pubsub.change_hooks.append(websites_changed)
    await rt.pubsub.start()

    if not settings.redis_url:
        await _listen_in_postgres(app, rt, notices_restored)

    async def on_commit(websites: list[str], inserted: int) -> None:
        if not inserted or not websites:
            return
        forget_realtime(rt, websites)
        app.state.responses.bump()
        if rt.cache is not None:
            await rt.cache.invalidate_many(websites)
        await rt.pubsub.publish(websites)
        if not settings.redis_url:  # other processes on this database (footfall import)
            await notify(rt.pools.write, rt.pubsub.origin, websites)

    rt.writer.commit_hooks.append(on_commit)


async def _listen_in_postgres(app: Any, rt: Runtime, restored: Callable[[], None]) -> None:
    """Without Redis: hear other processes' commits through PostgreSQL (``db/notices.py``)
    and drop what they change from this process's caches (``restored`` after the
    listener was deaf)."""
    settings: Settings = app.state.settings
    dsn: str | None = getattr(app.state, "database_url", None) or settings.database_url
    assert dsn is not None  # the lifespan set it (embedded) or settings have it

    def changed(origin: str, sites: list[str] | None) -> None:
        if origin == rt.pubsub.origin:
            return
        if sites is None:
            restored()
            return
        app.state.responses.bump()
        forget_realtime(rt, sites)
        rt.pubsub.deliver(sites)
        if isinstance(rt.cache, MemoryCache):
            rt.cache.drop(sites)

    listener = Listener(dsn, changed, restored)
    await listener.start()
    rt.extras["commit_listener"] = listener
    # while it does not listen, another process's commits would go unheard: neither
    # whole responses nor stats are served from cache
    app.state.responses.gate = lambda: listener.reliable
    if isinstance(rt.cache, MemoryCache):
        rt.cache.gate = lambda: listener.reliable


async def stop_stats(app: Any, rt: Runtime) -> None:
    listener = rt.extras.pop("commit_listener", None)
    if listener is not None:
        await listener.close()
    if rt.pubsub is not None:
        await rt.pubsub.close()
    for client in rt.extras.pop("stats_redis_clients", []):
        with contextlib.suppress(Exception):
            await client.aclose()
        with contextlib.suppress(Exception):
            await client.connection_pool.disconnect()


def install(app: Any) -> None:
    """Register the hooks on an app built by ``create_app``."""
    app.state.startup_hooks.append(start_stats)
    app.state.shutdown_hooks.append(stop_stats)
