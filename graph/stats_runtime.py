"""Start-up/shutdown hooks of the read path: stats cache, realtime pub/sub, commit hook.

With ``settings.redis_url``: a ``RedisCache`` and a Redis-backed ``PubSub`` (each on
its own ``BlockingConnectionPool``; the cache's has short socket timeouts so that an
outage costs milliseconds, the listener's none). Without: in-process versions (one
process only; with ``WORKER_COUNT`` > 1 no stats cache at all, since no worker would
learn of another's commits). The whole-response cache serves only while commit notices
can arrive (``PubSub.reliable``) and is emptied when they can again. Every commit of the writer bumps the cache generation of its websites
(so imports into the past invalidate cached answers) and notifies realtime
subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

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
        responses.bump()
        forget_realtime(rt)
        if isinstance(rt.cache, RedisCache):
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

    async def on_commit(websites: list[str], inserted: int) -> None:
        if not inserted or not websites:
            return
        forget_realtime(rt, websites)
        app.state.responses.bump()
        await rt.cache.invalidate_many(websites)
        await rt.pubsub.publish(websites)

    rt.writer.commit_hooks.append(on_commit)


async def stop_stats(app: Any, rt: Runtime) -> None:
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
