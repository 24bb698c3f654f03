"""Background tasks of a process (the commit-notice listeners): started with a short
wait for their first sign of life, stopped by cancelling them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def start(
    coro: Coroutine[Any, Any, None], name: str, ready: asyncio.Event, wait: float
) -> asyncio.Task[None]:
    """Run ``coro`` as a task and wait at most ``wait`` seconds until ``ready`` is set
    (the task goes on either way)."""
    task = asyncio.create_task(coro, name=name)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), wait)
    return task


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
