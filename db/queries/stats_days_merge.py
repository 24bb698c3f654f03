"""A plan's scan rows from the day rollup's rows (``db/queries/stats_days.read``): the
same ``ScanRow`` list the scan statement returns (``db/queries/stats.py``), so callers
cannot tell the two apart.

Per (scope, set code, key, bucket) the stored days' visitor sets and the pieces'
visitor numbers are united (roaring bitmaps), visitor ids without a number (seen only
after the last sealing, so in no stored day) are counted apart; every other number is
a sum (durations in microseconds: exact). Breakdown rows are ranked by visitors
descending, then key in code-point order (``COLLATE "C"``), rows without visitors left out, as the scan ranks them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyroaring import BitMap

from db.queries.dimensions import EVENT_DIMENSIONS
from db.queries.stats import ScanPlan, ScanRow
from db.queries.stats_days import SUMS

Group = tuple[int, int, str | None, datetime | None]  # scope, code, key, bucket


@dataclass
class _Acc:
    sets: list[BitMap] = field(default_factory=list)
    nums: list[int] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    sums: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0, 0])
    seen: bool = False  # any event of this group

    def visitors(self) -> int:
        united = BitMap.union(*self.sets) if self.sets else BitMap()
        if self.nums:
            united.update(self.nums)
        return len(united) + len(self.ids)


@dataclass
class Meta:
    """Per scope (index in the plan): the website's stored zone, usable days and hours."""

    zones: dict[int, str | None] = field(default_factory=dict)
    days: dict[int, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)


def _add(acc: _Acc, r: Any) -> None:
    for i, col in enumerate(SUMS):
        acc.sums[i] += r[col] or 0


def merge(plan: ScanPlan, records: list[Any]) -> tuple[list[ScanRow], Meta]:
    """``records`` of ``read_sql(plan)`` as the scan's rows, and the scopes' meta."""
    codes = {d.dimension: c for c, d in enumerate(plan.dimensions, plan.first_dimension_code)}
    n_intervals = len(plan.intervals)
    accs: dict[Group, _Acc] = defaultdict(_Acc)
    meta = Meta()
    for r in records:
        scope = int(r["scope"]) - 1
        if r["src"] == "z":
            meta.zones[scope], meta.days[scope] = r["dim"], int(r["code"])
            meta.hours[scope] = int(r["key"])
            continue
        if r["src"] == "l":
            acc = accs[(scope, int(r["code"]), r["key"], r["bucket"])]
            if r["nums"]:
                acc.nums.extend(r["nums"])
            if r["ids"]:
                acc.ids.update(r["ids"])
            acc.seen = acc.seen or bool(r["nums"] or r["ids"])
            _add(acc, r)
            continue
        sets = [BitMap.deserialize(b) for b in r["bitmaps"]]
        bitmap = sets[0] if len(sets) == 1 else BitMap.union(*sets)
        if r["dim"] == "":
            targets: list[Group] = [(scope, 0, None, None)]
            targets += [(scope, i, None, r["buckets"][i - 1]) for i in range(1, n_intervals + 1)]
        else:
            targets = [(scope, codes[r["dim"]], r["key"], None)]
        for group in targets:
            acc = accs[group]
            acc.sets.append(bitmap)
            acc.seen = acc.seen or len(bitmap) > 0
            _add(acc, r)
    return _rows(plan, accs), meta


def _row(
    group: Group, acc: _Acc, visitors: int | None, total: int | None, rank: int, sessions: bool
) -> ScanRow:
    """``sessions``: the set has session numbers (None otherwise, as from the scan)."""
    scope, code, key, bucket = group
    pv, ce, visits, bounces, duration, spv = acc.sums
    return ScanRow(
        scope=scope, code=code, key=key, bucket=bucket, visitors=visitors, pageviews=pv,
        events=ce, visits=visits if sessions else None, bounces=bounces if sessions else None,
        duration=duration / 1_000_000 if sessions else None,
        session_pageviews=spv if sessions else None, total=total, rank=rank,
    )  # fmt: skip


def _rows(plan: ScanPlan, accs: dict[Group, _Acc]) -> list[ScanRow]:
    first_dim = plan.first_dimension_code
    out: list[ScanRow] = []
    ranked: dict[tuple[int, int], list[tuple[int, str, Group, _Acc]]] = defaultdict(list)
    for group, acc in accs.items():
        scope, code, key, _ = group
        if code < first_dim:
            out.append(_row(group, acc, acc.visitors() if acc.seen else None, None, 1, True))
        elif key is not None and acc.seen:
            ranked[(scope, code)].append((acc.visitors(), key, group, acc))
    windows = {c: (d.lo, d.hi) for c, d in enumerate(plan.dimensions, first_dim)}
    event_codes = {c for c, d in enumerate(plan.dimensions, first_dim) if d.dimension in EVENT_DIMENSIONS}
    for (_, code), items in ranked.items():
        items.sort(key=lambda item: (-item[0], item[1]))
        lo, hi = windows[code]
        total = len(items)
        for rank, (visitors, _, group, acc) in enumerate(items, start=1):
            if rank == 1 or lo < rank <= hi:
                out.append(_row(group, acc, visitors, total, rank, code not in event_codes))
    return out
