"""Fixtures of the real-process tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.queue_support import AofRedis
from tests.faults.server import free_port


@pytest.fixture
def aof_redis() -> Iterator[AofRedis]:
    """A Redis of our own (free port, temp dir, AOF with ``appendfsync always``)."""
    with tempfile.TemporaryDirectory(prefix="footfall-queue-redis-") as tmp:
        server = AofRedis(free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()
