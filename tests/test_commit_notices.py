"""Commit notices through PostgreSQL (db/notices.py): a listener hears other processes'
notices, and after its connection is cut it listens again and says notices may have been
missed (its owner then drops its cached answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

import asyncpg
import pytest

from db import notices
from resolvers.cache import MemoryCache
from tests.db_relay import Relay


async def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_a_listener_hears_notices_and_comes_back_after_a_cut(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = urlsplit(database_url)
    relay = Relay((target.hostname or "127.0.0.1", target.port or 5432))
    await relay.open()
    heard: list[tuple[str, list[str] | None]] = []
    restored: list[bool] = []
    listener = notices.Listener(relay.dsn(database_url),
                                lambda o, w: heard.append((o, w)), lambda: restored.append(True))  # fmt: skip
    monkeypatch.setattr(notices, "RETRY_SECONDS", 0.1)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await listener.start()
        await notices.notify(pool, "other", ["site-a", "site-b"])
        await _until(lambda: ("other", ["site-a", "site-b"]) in heard)
        await relay.close()  # the listener's connection is cut
        await relay.open()
        await _until(lambda: restored == [True])
        await notices.notify(pool, "other", ["x" * 100] * 100)  # too long: every website
        await _until(lambda: ("other", None) in heard)
    finally:
        await listener.close()
        await relay.close()
        await pool.close()


async def test_a_partition_makes_the_listener_unreliable_until_it_listens_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packets dropped, connection left open: the listener's probe times out, it is no
    longer ``reliable`` (caches gated on it stop serving), and it listens again — and
    says notices may have been missed — once the network is back."""
    monkeypatch.setattr(notices, "RETRY_SECONDS", 0.1)
    monkeypatch.setattr(notices, "PROBE_SECONDS", 0.3)
    target = urlsplit(database_url)
    relay = Relay((target.hostname or "127.0.0.1", target.port or 5432))
    await relay.open()
    restored: list[bool] = []
    listener = notices.Listener(relay.dsn(database_url), lambda o, w: None,
                                lambda: restored.append(True))  # fmt: skip
    cache = MemoryCache()
    cache.gate = lambda: listener.reliable
    try:
        await listener.start()
        assert listener.reliable
        [(stored, _)] = await cache.lookup([("s", "k")])
        assert stored is not None
        await cache.store([(stored, b"v", 60)])
        assert await cache.lookup([("s", "k")]) == [(stored, b"v")]  # served while listening
        relay.blackhole = True
        await _until(lambda: not listener.reliable, 5.0)
        assert await cache.lookup([("s", "k")]) == [(None, None)]  # gated while deaf
        relay.blackhole = False
        await _until(lambda: listener.reliable and restored == [True], 10.0)
    finally:
        await listener.close()
        await relay.close()
