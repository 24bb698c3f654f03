"""Running a background pass (a rollup's sealer) forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def pass_loop(
    run_pass: Callable[[], Awaitable[bool]], *, startup_delay: float, interval: float,
    log: logging.Logger, what: str,
) -> None:  # fmt: skip
    """Run ``run_pass`` forever: the first ``startup_delay`` seconds after start (a
    starting process serves first), then again after 1 s while it reports work left,
    else after ``interval`` seconds; failures are logged and the loop goes on."""
    await asyncio.sleep(startup_delay)
    while True:
        more = False
        try:
            more = await run_pass()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s pass failed", what)
        await asyncio.sleep(1.0 if more else interval)
