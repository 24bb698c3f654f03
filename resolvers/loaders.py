"""Per-request DataLoaders of the read path, named for what they load.

Create them inside the running event loop (``Context.loader`` does, lazily). Keys
enqueued in the same tick are answered together:

* ``stats_loader``: ``StatsKey`` → Summary | list[Bucket] | Breakdown
  (see resolvers/stats.py: one statement per shared filters + query shape);
* ``realtime_loader``: website id → RealtimeData (one statement for all websites);
* ``events_loader``: ``EventsKey`` → EventPage (one statement per range/filters/first).

``memo=False`` (websocket connections, whose context outlives one operation) makes a
loader batch without remembering answers.
"""

from __future__ import annotations

from typing import Any

from aiodataloader import DataLoader

from resolvers import stats
from resolvers.realtime import load_realtime
from resolvers.runtime import Runtime
from resolvers.stats_events import load_events


def stats_loader(rt: Runtime, memo: bool = True) -> DataLoader[Any, Any]:
    async def batch(keys: list[Any]) -> list[Any]:
        return await stats.load_stats(rt, keys)

    return DataLoader(batch, cache=memo)


def realtime_loader(rt: Runtime, memo: bool = True) -> DataLoader[Any, Any]:
    async def batch(keys: list[str]) -> list[Any]:
        return await load_realtime(rt, keys)

    return DataLoader(batch, cache=memo)


def events_loader(rt: Runtime, memo: bool = True) -> DataLoader[Any, Any]:
    async def batch(keys: list[Any]) -> list[Any]:
        return await load_events(rt, keys)

    return DataLoader(batch, cache=memo)
