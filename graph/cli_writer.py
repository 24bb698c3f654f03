"""``footfall writer``: one queue-mode writer process (see ``db.ingest_consumer``).

Run any number of them next to API processes started with ``INGEST_QUEUE=redis``; they
share ``REDIS_URL`` and ``DATABASE_URL``. The process builds the same runtime as the API
(pools, migrations, the group-commit writer with its metrics and commit hooks, so that
caches are invalidated and realtime subscribers notified on every commit), then
consumes until SIGTERM/SIGINT, finishing and acknowledging the batch in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from db.ingest_consumer import StreamConsumer
from db.ingest_queue import connect
from db.writer import BatchWriter
from graph.logs import configure
from graph.settings import Settings

log = logging.getLogger("footfall.ingest")
BLOCK_SECONDS = 1.0  # longest XREADGROUP wait when idle (also the stop latency)


def default_name() -> str:
    """``host-pid-random``: unique, so a dead writer's entries are claimed, never reused."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def _consume(settings: Settings, runtime: Callable[[Settings], Any], name: str) -> int:
    assert settings.redis_url is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = connect(settings.redis_url, socket_timeout=BLOCK_SECONDS + 10, max_connections=4)
    try:
        async with runtime(settings) as rt:
            writer = rt.writer
            assert isinstance(writer, BatchWriter)
            consumer = StreamConsumer(
                client, writer, name=name, streams=settings.ingest_streams,
                batch_size=settings.batch_size, batch_timeout=settings.batch_timeout,
                claim_idle=settings.ingest_claim_idle, block=BLOCK_SECONDS,
            )  # fmt: skip
            log.info("writer %s consuming %d streams", name, settings.ingest_streams)
            print(f"footfall writer {name} consuming {settings.ingest_streams} streams",
                  file=sys.stderr, flush=True)  # fmt: skip
            await consumer.run(stop)
            log.info("writer %s stopped after %d rows", name, consumer.rows_done)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
            await client.connection_pool.disconnect()
    return 0


def run_writer(settings: Settings, runtime: Callable[[Settings], Any], name: str | None) -> int:
    """Entry point of ``footfall writer``; returns the exit code."""
    if not settings.redis_url or not settings.database_url:
        print("configuration error: footfall writer needs REDIS_URL and DATABASE_URL",
              file=sys.stderr)  # fmt: skip
        return 2
    configure(settings.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(_consume(settings, runtime, name or default_name()))
    return uvloop.run(_consume(settings, runtime, name or default_name()))
