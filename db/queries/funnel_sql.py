"""The attempts statement of a funnel report (``db/queries/funnel_report.py``).

How (one statement, no per-subject round trip, no self-joins): ``ev`` reads the events
that match a step (plus every page view for STRICT) with one scan per step — page views
index-only from ``events_funnel_page`` by the pattern's literal prefix — keeping, for
steps 2..n, only subjects with a step-1 event in range (``s1``); ``g`` orders them by
(subject, time descending) once (STRICT: one row per instant, counting page views).
For ORDERED and STRICT, one window pass per step k = n..2 computes ``r_k``: the times
of steps k..n reached greedily after each row — the earliest later step-k match as an
array, extended by that match's own ``r_(k+1)`` (STRICT: the next page view must be it,
alone at its instant; a custom step must come before the next page view). The frame
holds only strictly later instants. Greedy chaining (earliest match first) is exact for
these rules: from a fixed step-1 event every reachable step-k instant shares the same
next page view, so the earliest dominates. ANY takes each step's earliest later match.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

StepKind = Literal["PAGE", "CUSTOM", "EVENT"]
Ordering = Literal["ORDERED", "STRICT", "ANY"]
CountBy = Literal["VISITOR", "SESSION"]

FUNNEL_EVENT_TYPE = "funnel_step"
@dataclass(frozen=True)
class StepMatch:
    """What one step matches. ``value``: LIKE pattern (PAGE), event name (CUSTOM)."""

    kind: StepKind
    value: str
    properties: dict[str, Any] | None = None


@dataclass(frozen=True)
class FunnelSpec:
    """Everything a report statement depends on (besides the range)."""

    funnel_id: str
    website_id: str
    steps: tuple[StepMatch, ...]
    window: timedelta
    count_by: CountBy
    ordering: Ordering

    @property
    def subject_column(self) -> str:
        """The events column that names a subject: a visitor, or a session."""
        return "visitor_id" if self.count_by == "VISITOR" else "session_id"


#: Part of every rollup digest: bump it when the attempt rules or their SQL change, and
#: every stored rollup is rebuilt. 2: stored attempts carry p1..pn (migration 010).
ATTEMPT_RULES_VERSION = 2


def spec_hash(spec: FunnelSpec) -> str:
    """Digest of everything an attempt depends on (steps, window, unit, ordering)."""
    key = (ATTEMPT_RULES_VERSION, spec.steps, spec.window.total_seconds(), spec.count_by,
           spec.ordering)  # fmt: skip
    return hashlib.sha256(repr(key).encode()).hexdigest()[:32]


def like_pattern(pattern: str) -> str:
    """A step path pattern as an anchored LIKE pattern: ``*`` → ``%``, rest literal."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


class AttemptsSql:
    """Builds one statement; parameters $1 site, $2 start, $3 end, $4 window."""

    def __init__(self, spec: FunnelSpec) -> None:
        self.spec = spec
        self.args: list[Any] = []
        #: lower bound of the step-1 events read from events (the rollup raises it)
        self.start = "$2::timestamptz"
        #: the parameter holding that bound when the rollup is read (else None)
        self.lb: str | None = None
        #: parameter (``rollup_parts``): the funnel id (uuid text)
        self.fid: str | None = None
        #: parameters (``touching``): subjects (text[]) whose attempts from
        #: ``touched_from`` to ``start`` are computed too — the stored ones are stale
        self.touched: str | None = None
        self.touched_from: str | None = None

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args) + 4}"

    def condition(self, index: int, step: StepMatch) -> str:
        """What a step matches (a page-view step: ``page LIKE …`` of page views only)."""
        if step.kind == "PAGE":
            return f"page LIKE {self.param(step.value)}"
        if step.kind == "CUSTOM":
            cond = f"event_type = {self.param(step.value)}"
            if step.properties:
                cond += f" AND coalesce(properties @> {self.param(step.properties)}::jsonb, false)"
            return f"({cond})"
        return (
            f"(event_type = '{FUNNEL_EVENT_TYPE}'"
            f" AND properties->>'funnel_id' = {self.param(self.spec.funnel_id)}"
            f" AND properties->>'step' = '{index + 1}'"
            " AND coalesce(properties->>'event_type', '') <> 'dropoff')"
        )

    def page_range(self, step: StepMatch) -> str:
        """Bounds on ``page`` (C collation, as in index ``events_funnel_page``) implied by
        the literal prefix of a PAGE step's pattern, so the scan reads only that range."""
        prefix, i = "", 0
        while i < len(step.value) and step.value[i] not in "%_":
            i += 1 if step.value[i] != "\\" else 2  # like_pattern escapes \, % and _
            prefix += step.value[i - 1]
        if i >= len(step.value):
            return f' AND page COLLATE "C" = {self.param(prefix)}'
        if not prefix or ord(prefix[-1]) >= 0x10FFFF:
            return ""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        lo, hi = self.param(prefix), self.param(upper)
        return f' AND page COLLATE "C" >= {lo} AND page COLLATE "C" < {hi}'

    def scans(self, subj: str, until: str) -> list[str]:
        """One SELECT per step (and, for STRICT, one of every other page view) of the
        site's events with ``$2 <= ts < until``: (subj, sid, ts, pv, m1..mn). An event an
        earlier scan of the same kind matched is skipped, so each event comes once.
        Page-view scans mention only columns of ``events_funnel_page`` (index-only)."""
        steps, n = self.spec.steps, len(self.spec.steps)
        conds = [self.condition(i, s) for i, s in enumerate(steps)]
        pages = [c if s.kind == "PAGE" else "false" for s, c in zip(steps, conds, strict=True)]
        others = [c if s.kind != "PAGE" else "false" for s, c in zip(steps, conds, strict=True)]
        head = f'SELECT {subj} COLLATE "C" AS subj, session_id AS sid, ts'
        where = f"FROM events WHERE website_id = $1 AND ts >= {self.start} AND ts < {until}"
        flags = {
            "pv": ", ".join(f"{c} AS m{i + 1}" for i, c in enumerate(pages)),
            "other": ", ".join(f"{c} AS m{i + 1}" for i, c in enumerate(others)),
        }
        out: list[str] = []
        for i, s in enumerate(steps):
            kind, mine = ("pv", pages) if s.kind == "PAGE" else ("other", others)
            if conds[i] in mine[:i]:
                continue
            before = [c for c in mine[:i] if c != "false"]
            skip = f" AND NOT ({' OR '.join(before)})" if before else ""
            if kind == "pv":
                cond = f"event_type = 'pageview' AND {conds[i]}{self.page_range(s)}{skip}"
            else:
                cond = f"{conds[i]}{skip}"
            out.append(self._both(f"{head}, {kind == 'pv'} AS pv, {flags[kind]}", subj,
                                  where, cond))  # fmt: skip
        if self.spec.ordering == "STRICT":
            used = [c for c in pages if c != "false"]
            skip = f" AND NOT ({' OR '.join(used)})" if used else ""
            none = ", ".join(f"false AS m{i}" for i in range(1, n + 1))
            out.append(self._both(f"{head}, true AS pv, {none}", subj, where,
                                  f"event_type = 'pageview'{skip}"))  # fmt: skip
        return out

    def touching(self, since: Any, subjects: Any) -> None:
        """Also compute the attempts of ``subjects`` from ``since`` (before ``start``)."""
        self.touched_from, self.touched = self.param(since), self.param(subjects)

    def _both(self, select: str, subj: str, where: str, cond: str) -> str:
        """``select … where AND cond``, plus the touched subjects' earlier events."""
        main = f"{select} {where} AND {cond}"
        if self.touched is None:
            return main
        earlier = (
            f"FROM events WHERE website_id = $1 AND ts >= {self.touched_from}::timestamptz"
            f" AND ts < {self.start} AND {subj} = ANY({self.touched}::text[])"
        )
        return f"SELECT * FROM (\n  {main}\n  UNION ALL {select} {earlier} AND {cond}) b"

    def attempts(self, name: str = "att") -> str:
        """CTEs ending in ``{name}(subj, sid, t1, depth, dur)``: one row per attempt with
        ``start <= t1 < $3`` (``start``: ``$2`` unless the rollup raised it)."""
        spec, n = self.spec, len(self.spec.steps)
        subj = spec.subject_column
        strict = spec.ordering == "STRICT"
        branches = self.scans(subj, "$3::timestamptz + $4::interval")
        step1 = branches[0].replace(" + $4::interval", "", 1)
        g_ms = ", ".join(f"bool_or(m{i}) AS m{i}" for i in range(1, n + 1))
        # strictly later rows: STRICT has one row per instant, the others one per event
        frame = (
            "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
            if strict
            else "RANGE BETWEEN UNBOUNDED PRECEDING AND '1 microsecond' PRECEDING"
        )
        w = f"WINDOW w AS (PARTITION BY subj ORDER BY ts DESC {frame})"
        ctes = [
            # subjects with a step-1 event in range: nobody else can enter, so the
            # scans of later steps keep only their events (extra rows would be harmless).
            # The step-1 scan is repeated rather than shared through a materialized CTE:
            # that has no statistics, and its row estimate turned the semi-join below
            # into a nested loop re-scanning the later steps once per subject.
            f"s1 AS (SELECT DISTINCT subj FROM ({step1}) s)",
        ]
        later = "\n  UNION ALL ".join(branches[1:])
        narrowed = (
            f"\n  UNION ALL SELECT * FROM (\n  {later}) o WHERE subj IN (SELECT subj FROM s1)"
        )
        ctes.append(f"ev AS (\n  {branches[0]}{narrowed if later else ''})")
        if strict:  # one row per (subject, instant), with its number of page views
            ctes.append(f"""g AS (
  SELECT subj, ts, min(sid) FILTER (WHERE m1) AS sid1, {g_ms}, count(*) FILTER (WHERE pv) AS pvc
  FROM ev GROUP BY subj, ts ORDER BY subj, ts DESC)""")
        else:
            ctes.append("g AS (SELECT *, sid AS sid1 FROM ev ORDER BY subj, ts DESC)")
        # touched subjects' rows reach back to touched_from; nobody else's before start
        lowest = f"{self.touched_from}::timestamptz" if self.touched_from else self.start
        t1_in_range = f"m1 AND ts >= {lowest} AND ts < $3"
        if spec.ordering == "ANY":
            nexts = ", ".join(
                f"min(ts) FILTER (WHERE m{k}) OVER w AS n{k}" for k in range(2, n + 1)
            )
            cols = []
            for k in range(2, n + 1):
                ok = " AND ".join(f"n{j} <= ts + $4::interval" for j in range(2, k + 1))
                latest = ", ".join(f"n{j}" for j in range(2, k + 1))
                cols.append(f"CASE WHEN {ok} THEN greatest({latest}) END AS t{k}")
            ctes.append(f"nx AS (SELECT subj, ts, sid1, m1, {nexts} FROM g {w})")
            ctes.append(
                f"ch AS (SELECT subj, sid1 AS sid, ts AS t1, {', '.join(cols)}"
                f" FROM nx WHERE {t1_in_range})"
            )
        else:
            # r_k: the times of steps k..n reached greedily (earliest match each time)
            # after a row = the array of the earliest later step-k match extended by that
            # match's own s_(k+1); one window pass per step in g's order (no joins)
            prev = "g"
            for k in range(n, 1, -1):
                rest = f" || {self._s(k + 1)}" if k < n else ""
                np = ", min(ts) FILTER (WHERE pvc > 0) OVER w AS np" if strict and k == n else ""
                if strict and spec.steps[k - 1].kind == "PAGE":
                    agg = (
                        f"min(ARRAY[ts] || CASE WHEN pvc = 1 AND m{k} THEN ARRAY[ts]{rest} END)"
                        " FILTER (WHERE pvc > 0)"
                    )
                else:
                    agg = f"min(ARRAY[ts]{rest}) FILTER (WHERE m{k})"
                ctes.append(f"l{k} AS (SELECT l.*, {agg} OVER w AS r{k}{np} FROM {prev} l {w})")
                prev = f"l{k}"
            within = ", ".join(
                f"CASE WHEN c[{k}] <= t1 + $4::interval THEN c[{k}] END AS t{k}"
                for k in range(2, n + 1)
            )
            ctes.append(f"""ch AS (SELECT subj, sid, t1, {within} FROM (
  SELECT subj, sid1 AS sid, ts AS t1, ARRAY[ts] || {self._s(2)} AS c
  FROM {prev} WHERE {t1_in_range}) c)""")
        depth = " ".join(f"WHEN t{k} IS NOT NULL THEN {k}" for k in range(n, 1, -1))
        ctes.append(
            f"""{name} AS (
  SELECT subj, sid, t1, CASE {depth} ELSE 1 END AS depth,
         extract(epoch FROM t{n} - t1)::float8 AS dur
  FROM ch)"""
        )
        return "WITH " + ",\n".join(ctes)

    def rollup_parts(self) -> str:
        """CTEs ``att_live`` (attempts computed from events), ``st`` (stored attempts,
        not materialized) and ``ls`` (the subjects of ``att_live``, whose stored attempts
        reports group with them): attempts with ``$2 <= t1 < lb`` come from ``funnel_attempts``
        and only ``lb <= t1 < $3`` are computed from events — except for the *touched*
        subjects (with events at or after the rollup's watermark), whose attempts from
        ``touched_from`` on are computed, not read. ``lb``, ``touched_from`` and
        ``touched`` are parameters that the caller sets with ``fill`` from
        ``db.queries.funnel_rollup.bounds``, read in the same snapshot (known values, so
        the scans are planned for them)."""
        self.fid = fid = self.param(self.spec.funnel_id)
        self.lb = self.param(None)
        self.start = f"{self.lb}::timestamptz"
        self.touching(None, None)
        live = self.attempts("att_live")
        return f"""{live},
st AS NOT MATERIALIZED (
  SELECT * FROM funnel_attempts
  WHERE funnel_id = {fid}::uuid AND t1 >= $2::timestamptz AND t1 < {self.start}
    AND NOT (t1 >= {self.touched_from}::timestamptz AND subj = ANY({self.touched}::text[]))),
ls AS (SELECT DISTINCT subj FROM att_live)"""

    def fill(self, args: list[Any], lb: Any, touched_from: Any, touched: list[str]) -> None:
        """Set the rollup's parameters in ``args`` (the statement's whole argument list)."""
        assert self.lb and self.touched_from and self.touched
        for slot, value in ((self.lb, lb), (self.touched_from, touched_from),
                            (self.touched, touched)):  # fmt: skip
            args[int(slot[1:]) - 1] = value

    def _s(self, k: int) -> str:
        """Expression of s_k (times of steps k..n after the current row) from ``r{k}``."""
        if self.spec.ordering != "STRICT":
            return f"r{k}"
        if self.spec.steps[k - 1].kind == "PAGE":  # [next page view, its chain…] or just [it]
            return f"(CASE WHEN cardinality(r{k}) > 1 THEN r{k}[2:] END)"
        return f"(CASE WHEN r{k}[1] < coalesce(np, 'infinity') THEN r{k} END)"
