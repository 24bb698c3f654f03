"""Fixtures of the real-process tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.queue_support import AofRedis, own_aof_redis


@pytest.fixture
def aof_redis() -> Iterator[AofRedis]:
    """A Redis of our own (free port, temp dir, AOF with ``appendfsync always``)."""
    with own_aof_redis("footfall-queue-redis-") as server:
        yield server
