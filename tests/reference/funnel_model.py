"""Independent, plain-Python computation of funnel reports (metrics.md, Funnels).

Nothing here imports the service; the rules are applied by brute force, path by path:

* subjects: visitors (``visitor_id``) or sessions (``session_id``) by ``count_by``;
  ``session_start``/``session_end`` events are dropped first, duplicate ids ignored;
* steps: PAGE = a page view whose path fully matches the pattern with ``*`` = any
  characters; CUSTOM = a custom event of that name whose properties contain every
  given key with an equal JSON value (type included: ``1`` ≠ ``"1"`` ≠ ``true``);
  EVENT = a ``funnel_step`` event with ``properties.funnel_id`` = the funnel and
  ``properties.step`` = the step position, not a ``dropoff`` report;
* an attempt starts at every step-1 event with ``start <= ts < end``; a later step's
  event must satisfy ``ts - t1 <= window``;
* ORDERED: the set of events that can be step k is propagated from the set for step
  k − 1 (``prev.ts < ev.ts``); STRICT additionally forbids any other page view ``p``
  with ``prev.ts < p.ts <= ev.ts``; ANY: each step 2..k has a match with
  ``t1 < ts <= t1 + window``;
* depth of a subject = max over attempts; time to convert = min over converting
  attempts of (earliest possible last-step time − t1) (ANY: the latest of the earliest
  matches of steps 2..n); mean and median over converted subjects;
* best attempt (daily, breakdown) = deepest, then earliest ``t1``; its session is the
  smallest session id among the subject's step-1 events at ``t1``.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

IGNORED = frozenset({"session_start", "session_end"})


@dataclass(frozen=True)
class Ev:
    id: str
    ts: datetime
    event_type: str
    visitor_id: str
    session_id: str
    page: str
    properties: Mapping[str, Any]

    @property
    def is_pageview(self) -> bool:
        return self.event_type == "pageview"


def _path(page: Any) -> str:
    if not page:
        return "/"
    if page.startswith(("http://", "https://")):
        return urlsplit(page).path or "/"
    return page.split("?")[0].split("#")[0] or "/"


def _ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_events(raw: Iterable[Mapping[str, Any]]) -> list[Ev]:
    seen: set[str] = set()
    out: list[Ev] = []
    for r in raw:
        if r.get("event_type", "pageview") in IGNORED or r["id"] in seen:
            continue
        seen.add(r["id"])
        out.append(
            Ev(r["id"], _ts(r["timestamp"]), r.get("event_type") or "pageview", r["visitor_id"],
               r["session_id"], _path(r.get("page")), r.get("properties") or {})
        )  # fmt: skip
    return out


def _json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b) or (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def step_matches(step: Mapping[str, Any], position: int, ev: Ev, funnel_id: str) -> bool:
    """Does ``ev`` match ``step`` (1-based ``position``)?"""
    kind = step["type"]
    if kind == "PAGE":
        regex = ".*".join(re.escape(part) for part in step["pattern"].split("*"))
        return ev.is_pageview and re.fullmatch(regex, ev.page, flags=re.S) is not None
    if kind == "CUSTOM":
        if ev.is_pageview or ev.event_type != step["pattern"]:
            return False
        wanted = step.get("properties") or {}
        return all(k in ev.properties and _json_equal(ev.properties[k], v)
                   for k, v in wanted.items())  # fmt: skip
    return (
        ev.event_type == "funnel_step"
        and ev.properties.get("funnel_id") == funnel_id
        and ev.properties.get("step") == position
        and ev.properties.get("event_type") != "dropoff"
    )


@dataclass(frozen=True)
class Attempt:
    t1: datetime
    depth: int
    duration: float | None  # seconds, converting attempts only


def _attempt(
    first: Ev, events: Sequence[Ev], matches: list[list[bool]], ordering: str, window: timedelta
) -> Attempt:
    n = len(matches[0])
    t1 = first.ts
    limit = t1 + window
    if ordering == "ANY":
        finish = t1
        for k in range(1, n):
            times = [e.ts for i, e in enumerate(events) if matches[i][k] and t1 < e.ts <= limit]
            if not times:
                return Attempt(t1, k, None)
            finish = max(finish, min(times))
        return Attempt(t1, n, (finish - t1).total_seconds())
    current = [first]
    for k in range(1, n):
        nxt = []
        for i, e in enumerate(events):
            if not matches[i][k] or e.ts > limit:
                continue
            for prev in current:
                if prev.ts >= e.ts:
                    continue
                if ordering == "STRICT" and any(
                    p.is_pageview and p is not e and prev.ts < p.ts <= e.ts for p in events
                ):
                    continue
                nxt.append(e)
                break
        if not nxt:
            return Attempt(t1, k, None)
        current = nxt
    return Attempt(t1, n, (min(e.ts for e in current) - t1).total_seconds())


def funnel_report(
    raw_events: Iterable[Mapping[str, Any]],
    funnel: Mapping[str, Any],
    start: datetime,
    end: datetime,
    tz: str = "UTC",
    session_field: str | None = None,
) -> dict[str, Any]:
    """The report of ``funnel`` ({id, steps, window, countBy, ordering}) over
    ``[start, end)``: reached/conversions/dropped per step, time to convert, daily
    (local days of ``tz``) and, if ``session_field`` is given, a breakdown by that
    field of the session's earliest event (missing → ``(none)``)."""
    raw_list = list(raw_events)
    events = to_events(raw_list)
    steps = funnel["steps"]
    n = len(steps)
    window = timedelta(seconds=funnel["window"])
    key = "visitor_id" if funnel["countBy"] == "VISITOR" else "session_id"
    by_subject: dict[str, list[Ev]] = defaultdict(list)
    for e in events:
        by_subject[getattr(e, key)].append(e)
    best: dict[str, tuple[Attempt, str]] = {}
    durations: list[float] = []
    for subject, evs in by_subject.items():
        evs.sort(key=lambda e: (e.ts, e.id))
        matches = [[step_matches(s, k + 1, e, funnel["id"]) for k, s in enumerate(steps)]
                   for e in evs]  # fmt: skip
        attempts: list[tuple[Attempt, str]] = []
        for i, e in enumerate(evs):
            if matches[i][0] and start <= e.ts < end:
                attempts.append(
                    (_attempt(e, evs, matches, funnel["ordering"], window), e.session_id)
                )
        if not attempts:
            continue
        top = max(a.depth for a, _ in attempts)
        t1 = min(a.t1 for a, _ in attempts if a.depth == top)
        sid = min(s for a, s in attempts if a.t1 == t1)
        best[subject] = (next(a for a, _ in attempts if a.t1 == t1), sid)
        done = [a.duration for a, _ in attempts if a.duration is not None]
        if done:
            durations.append(min(done))
    reached = [sum(1 for a, _ in best.values() if a.depth >= k) for k in range(1, n + 1)]

    def pct(a: int, b: int) -> float:
        return 100.0 * a / b if b else 0.0

    out: dict[str, Any] = {
        "entered": reached[0],
        "converted": reached[-1],
        "conversionRate": pct(reached[-1], reached[0]),
        "steps": [
            {
                "name": s["name"],
                "reached": reached[k],
                "conversionFromStart": pct(reached[k], reached[0]),
                "conversionFromPrevious": 100.0 if k == 0 else pct(reached[k], reached[k - 1]),
                "dropped": 0 if k == 0 else reached[k - 1] - reached[k],
            }
            for k, s in enumerate(steps)
        ],
        "timeToConvert": None
        if not durations
        else {"mean": statistics.fmean(durations), "median": statistics.median(durations)},
    }
    zone = ZoneInfo(tz)
    days: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for attempt, _ in best.values():
        d = days[attempt.t1.astimezone(zone).date()]
        d[0] += 1
        d[1] += attempt.depth == n
    out["daily"] = {k.isoformat(): tuple(v) for k, v in days.items()}
    if session_field:
        first: dict[str, Mapping[str, Any]] = {}
        for r in sorted(raw_list, key=lambda r: (_ts(r["timestamp"]), r["id"])):
            if r.get("event_type", "pageview") not in IGNORED:
                first.setdefault(r["session_id"], r)
        rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for attempt, sid in best.values():
            value = first[sid].get(session_field) or "(none)"
            rows[value][0] += 1
            rows[value][1] += attempt.depth == n
        out["breakdown"] = {k: tuple(v) for k, v in rows.items()}
    return out
