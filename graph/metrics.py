"""``GET /metrics`` (Prometheus text format) for one process or several workers.

One process: the default registry, its gauges set at scrape time. Several workers
(``footfall serve`` with ``WORKER_COUNT`` > 1): prometheus-client's multiprocess mode.
The parent sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh temporary directory before the
workers start (``multiproc_dir``) and removes it at exit; every worker writes its series
to files there and a scrape, whichever worker answers it, merges them all
(``MultiProcessCollector``): counters and histograms are summed over every worker that
ran, gauges per their ``multiprocess_mode`` (``resolvers/counters.py``: ``livesum`` or
``livemax`` over live workers). Each worker refreshes its own gauges every
``GAUGE_SECONDS`` (a scrape shows other workers' values up to that old) and removes its
live gauge files when it stops (``mark_process_dead``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from starlette.requests import Request
from starlette.responses import Response

from resolvers import counters
from resolvers.runtime import Runtime

GAUGE_SECONDS = 1.0
ENV = "PROMETHEUS_MULTIPROC_DIR"


def sample_gauges(rt: Runtime) -> None:
    """Set this process's gauges from its writer and pool."""
    counters.INGEST_QUEUE_DEPTH.set(rt.writer.queue_depth)
    stats = rt.pools.stats()
    counters.DB_POOL_SIZE.labels("total").set(stats["size"])
    counters.DB_POOL_SIZE.labels("idle").set(stats["idle"])


async def gauge_loop(rt: Runtime) -> None:
    """Multiprocess mode: keep this worker's gauges current for other workers' scrapes."""
    while True:
        sample_gauges(rt)
        await asyncio.sleep(GAUGE_SECONDS)


def worker_stopped(directory: Path) -> None:
    """Drop this worker's live gauges (``livesum``/``livemax`` count live workers only)."""
    prom_multiprocess.mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]


async def metrics(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    sample_gauges(rt)
    directory: Path | None = request.app.state.settings.prometheus_multiproc_dir
    if directory is None:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    prom_multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    body = await asyncio.to_thread(generate_latest, registry)  # reads every worker's files
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@contextlib.contextmanager
def multiproc_dir(workers: int) -> Iterator[Path | None]:
    """For ``footfall serve``: with several workers, a fresh ``PROMETHEUS_MULTIPROC_DIR``
    in the environment the workers inherit (set before they start, so prometheus-client
    picks its multiprocess values at import), removed afterwards."""
    if workers <= 1:
        yield None
        return
    directory = Path(tempfile.mkdtemp(prefix="footfall-metrics-"))
    os.environ[ENV] = str(directory)  # written for the workers; read by Settings.from_env
    try:
        yield directory
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
