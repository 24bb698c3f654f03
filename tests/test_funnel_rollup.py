"""The funnel attempt rollup (``db/queries/funnel_rollup.py``) against the model.

Given the funnel traffic of ``tests/reference/funnel_traffic.py`` and the same funnel in
every ordering × counting unit, when the background pass has sealed their attempts, then
reports read the stored attempts (a tampered row shows through) and still equal the
independent model; late events, a privacy deletion and a definition change each take
the affected attempts out of the sealed interval, so that reports stay exact before the
next pass seals them again; a sealer whose chunk was written into stores nothing; and
with sealer and importer interleaved, what ends up stored equals a fresh computation.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from db.migrate import discover, migrate
from db.queries import funnel_rollup as rollup_sql
from db.queries.funnel_sql import AttemptsSql
from db.queries.funnels import get_many
from db.queries.retention import delete_older_than
from resolvers.funnel_report import spec_of
from resolvers.funnel_rollup import SETTLE, seal_all
from tests.conftest import ADMIN_DSN, gql, make_website
from tests.reference import funnel_model, funnel_traffic
from tests.security_support import DELETE_VISITOR

NOW = datetime.now(UTC)
START = (NOW - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0)
END = START + timedelta(days=6, hours=7)
WINDOW = timedelta(seconds=funnel_traffic.WINDOW)
MODES = [(o, c) for o in ("ORDERED", "STRICT", "ANY") for c in ("VISITOR", "SESSION")]
RETENTION_DAYS = 730
TARGET = NOW - SETTLE  # where a pass at NOW ends the stored interval, and its watermark
_unique = itertools.count()

CREATE = """mutation($i: CreateFunnelInput!) { createFunnel(input: $i) {
  funnel { id } userErrors { field message code } } }"""
UPDATE = """mutation($i: UpdateFunnelInput!) { updateFunnel(input: $i) {
  funnel { id } userErrors { field message code } } }"""
DELETE = """mutation($i: DeleteFunnelInput!) { deleteFunnel(input: $i) {
  deletedId userErrors { field message code } } }"""
IMPORT = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
  accepted userErrors { field message } } }"""
FIELDS = """entered converted steps { reached }
  timeToConvert { mean median histogram { upTo count } }"""
REPORT = f"""query($id: ID!, $r: RangeInput!) {{ funnel(id: $id) {{ report(range: $r) {{
  {FIELDS} daily {{ date entered converted }}
  breakdown(dimension: DEVICE, limit: 10) {{ rows {{ value entered converted }} }} }} }} }}"""


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


async def _import(
    client: httpx.AsyncClient, headers: dict[str, str], site: str, events: list[dict[str, Any]]
) -> None:
    for i in range(0, len(events), 10_000):
        res = await gql(client, IMPORT, {"i": {"websiteId": site, "events": [
            {"id": e["id"], "visitorId": e["visitor_id"], "sessionId": e["session_id"],
             "eventType": e["event_type"], "page": e["page"], "timestamp": e["timestamp"],
             "properties": e.get("properties"), "device": e.get("device")}
            for e in events[i : i + 10_000]]}}, headers)  # fmt: skip
        assert res["data"]["importEvents"]["userErrors"] == [], res


#: (event type, page, properties) of the four steps, in order
CONVERTING = [("pageview", "/", None), ("pageview", "/product/9", None),
              ("add_to_cart", "/shop", {"plan": "pro"}), ("pageview", "/checkout", None)]  # fmt: skip


def _event(site: str, visitor: str, session: str, ts: datetime, step: tuple[str, str, Any],
           device: str = "desktop") -> dict[str, Any]:  # fmt: skip
    """One event in the model's (raw import) form; ``step``: (event type, page, properties)."""
    etype, page, props = step
    return {"id": str(uuid.uuid4()), "website_id": site, "visitor_id": visitor,
            "session_id": session, "event_type": etype, "page": page, "properties": props,
            "timestamp": funnel_traffic.iso(ts), "device": device}  # fmt: skip


async def _add(client: httpx.AsyncClient, headers: dict[str, str], world: dict[str, Any],
               events: list[dict[str, Any]]) -> None:  # fmt: skip
    """Import ``events`` into the world's website and the model's list."""
    await _import(client, headers, world["site"], events)
    world["events"].extend(events)


async def _world(client: httpx.AsyncClient, headers: dict[str, str], site: str,
                 events: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Import ``events`` and define the test funnel in every mode on ``site``."""
    await _import(client, headers, site, events)
    funnels: dict[tuple[str, str], str] = {}
    for ordering, count_by in MODES:
        res = await gql(client, CREATE, {"i": {
            "websiteId": site, "name": f"{ordering} {count_by}",
            "steps": [{k: v for k, v in s.items() if v is not None} for s in funnel_traffic.STEPS],
            "window": funnel_traffic.WINDOW, "countBy": count_by, "ordering": ordering,
        }}, headers)  # fmt: skip
        assert res["data"]["createFunnel"]["userErrors"] == [], res
        funnels[(ordering, count_by)] = res["data"]["createFunnel"]["funnel"]["id"]
    windows = {mode: funnel_traffic.WINDOW for mode in MODES}
    return {"site": site, "events": events, "funnels": funnels, "windows": windows}


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    site = await make_website(client, admin_headers, domain="funnel-rollup.example")
    return await _world(client, admin_headers, site, funnel_traffic.generate(site, START, END))


def _model(world: dict[str, Any], mode: tuple[str, str], start: datetime,
           end: datetime) -> dict[str, Any]:  # fmt: skip
    funnel = {"id": world["funnels"][mode], "steps": funnel_traffic.STEPS,
              "window": world["windows"][mode], "countBy": mode[1], "ordering": mode[0]}  # fmt: skip
    return funnel_model.funnel_report(world["events"], funnel, start, end, session_field="device")


async def _report(client: httpx.AsyncClient, headers: dict[str, str], fid: str,
                  start: datetime, end: datetime) -> dict[str, Any]:  # fmt: skip
    # a new body each time: the 1-second response cache must not answer
    query = f"{REPORT} # {next(_unique)}"
    res = await gql(client, query, {"id": fid, "r": {"from": _iso(start), "to": _iso(end)}},
                    headers)  # fmt: skip
    assert "errors" not in res, res
    report: dict[str, Any] = res["data"]["funnel"]["report"]
    return report


def _assert_model(got: dict[str, Any], want: dict[str, Any], label: str) -> None:
    assert [s["reached"] for s in got["steps"]] == [s["reached"] for s in want["steps"]], label
    assert got["converted"] == want["converted"], label
    if want["timeToConvert"] is None:
        assert got["timeToConvert"] is None, label
    else:
        for key in ("mean", "median"):
            assert got["timeToConvert"][key] == pytest.approx(
                want["timeToConvert"][key], abs=1e-6), label  # fmt: skip
    days = {d["date"]: (d["entered"], d["converted"]) for d in got["daily"]}
    assert {k: v for k, v in days.items() if v != (0, 0)} == want["daily"], label
    rows = {r["value"]: (r["entered"], r["converted"]) for r in got["breakdown"]["rows"]}
    assert rows == want["breakdown"], label


async def _seal(pool: asyncpg.Pool) -> None:
    while await seal_all(pool, RETENTION_DAYS, now=NOW, budget=600):
        pass
    await _assert_counts_match(pool)


def _quarter_of(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)


async def _assert_counts_match(pool: asyncpg.Pool | asyncpg.Connection) -> None:
    """``funnel_attempt_counts`` (migration 013, kept by triggers) equals the stored
    attempts counted here: per quarter hour and step k, attempts with t1 there and depth
    >= k (reached), and attempts whose p<k> is there (closed)."""
    want: Counter[tuple[str, datetime, int, str]] = Counter()
    for a in await pool.fetch("SELECT * FROM funnel_attempts"):
        for k in range(1, a["depth"] + 1):
            want[(str(a["funnel_id"]), _quarter_of(a["t1"]), k, "reached")] += 1
            if a[f"p{k}"] is not None:
                want[(str(a["funnel_id"]), _quarter_of(a[f"p{k}"]), k, "closed")] += 1
    got: Counter[tuple[str, datetime, int, str]] = Counter()
    for c in await pool.fetch("SELECT * FROM funnel_attempt_counts"):
        for what in ("reached", "closed"):
            got[(str(c["funnel_id"]), c["bucket"], c["k"], what)] += c[what]
    # zeros dropped (a bucket emptied by deletions stays), negative counts kept
    assert {k: v for k, v in got.items() if v} == dict(want)


async def _state(pool: asyncpg.Pool, fid: str) -> rollup_sql.RollupState:
    got = await rollup_sql.state(pool, fid)
    assert got is not None
    return got


async def _spec(pool: asyncpg.Pool, fid: str) -> Any:
    """The funnel's ``FunnelSpec``, as the service builds it."""
    [row] = await get_many(pool, [fid])
    assert row is not None
    return spec_of(row)


async def _delete_visitor(client: httpx.AsyncClient, headers: dict[str, str],
                          world: dict[str, Any], visitor: str) -> None:  # fmt: skip
    """Erase ``visitor`` through the API, and from the model's events."""
    res = await gql(client, DELETE_VISITOR, {"i": {"websiteId": world["site"],
                                                   "visitorId": visitor}}, headers)  # fmt: skip
    assert res["data"]["deleteVisitorData"]["userErrors"] == []
    world["events"][:] = [e for e in world["events"] if e["visitor_id"] != visitor]


async def _check_all(client: httpx.AsyncClient, headers: dict[str, str],
                     world: dict[str, Any]) -> None:  # fmt: skip
    for mode in world["funnels"]:
        for lo, hi in ((START, END), (START + timedelta(days=2, hours=5), NOW)):
            got = await _report(client, headers, world["funnels"][mode], lo, hi)
            _assert_model(got, _model(world, mode, lo, hi), f"{mode} {lo}..{hi}")


async def test_sealed_attempts_answer_reports_exactly(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    await _seal(pool)
    for mode, fid in world["funnels"].items():
        st = await _state(pool, fid)
        assert st.sealed_from == NOW - timedelta(days=RETENTION_DAYS), mode
        assert st.sealed_until == TARGET, mode
        stored = await pool.fetchval(
            "SELECT count(*) FROM funnel_attempts WHERE funnel_id = $1::uuid", fid)  # fmt: skip
        step1 = _model(world, mode, START, NOW)["steps"][0]["reached"]
        assert stored >= step1 > 0, mode  # one row per step-1 event
    # the sealer analyses the table it fills (autovacuum may be off or behind)
    assert await pool.fetchval("""SELECT c.reltuples >= 0 FROM pg_class c
                                  WHERE c.oid = 'funnel_attempts'::regclass""")  # fmt: skip
    metrics = (await client.get("/metrics")).text
    assert "footfall_funnel_rollup_lag_seconds 0.0" in metrics
    sealed = [ln for ln in metrics.splitlines()
              if ln.startswith('footfall_funnel_rollup_steps_total{result="sealed"}')]  # fmt: skip
    assert sealed and float(sealed[0].split()[-1]) >= len(MODES)
    await _check_all(client, admin_headers, world)
    # the stored attempts are what reports read: a changed duration shows through
    fid = world["funnels"][("ORDERED", "VISITOR")]
    want = _model(world, ("ORDERED", "VISITOR"), START, END)
    # (doubling and halving a float8 is exact)
    await pool.execute(
        "UPDATE funnel_attempts SET dur = dur * 2 WHERE funnel_id = $1::uuid", fid)  # fmt: skip
    try:
        got = await _report(client, admin_headers, fid, START, END)
        assert got["timeToConvert"]["mean"] == pytest.approx(
            want["timeToConvert"]["mean"] * 2, abs=1e-6)  # fmt: skip
    finally:
        await pool.execute(
            "UPDATE funnel_attempts SET dur = dur / 2 WHERE funnel_id = $1::uuid", fid)  # fmt: skip


async def test_counted_columns_are_not_updated_in_place(
    pool: asyncpg.Pool, world: dict[str, Any],
) -> None:  # fmt: skip
    """The quarter-hour counts follow inserts and deletes; an update may change nx only."""
    await _seal(pool)
    fid = world["funnels"][("ORDERED", "VISITOR")]
    changed = await pool.execute(
        "UPDATE funnel_attempts SET nx = nx WHERE funnel_id = $1::uuid", fid)  # fmt: skip
    assert changed != "UPDATE 0"
    other = world["funnels"][("ORDERED", "SESSION")]
    for column in ("t1 = t1 + interval '1 second'", "depth = depth + 1", "p1 = t1", "p20 = t1",
                   f"funnel_id = '{other}'"):  # fmt: skip
        with pytest.raises(asyncpg.RaiseError, match="are counted"):
            await pool.execute(f"UPDATE funnel_attempts SET {column} WHERE funnel_id = $1::uuid",
                               fid)  # fmt: skip
    await _assert_counts_match(pool)


async def test_reports_from_a_quarter_hour_sum_the_counts(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    """A range starting on a quarter hour and ending where the stored attempts do is
    counted from ``funnel_attempt_counts`` (a tampered count shows through); one starting
    off a quarter hour, or with a stored attempt at or after its end, is not. ``mid`` is
    a half hour with step-1 events on it (e-repeat's next attempt has p1 = mid)."""
    await _seal(pool)
    mid = START + (END - START) / 2
    assert mid.minute % 15 == 0 and mid.second == 0
    for mode, fid in world["funnels"].items():
        last = await pool.fetchval(
            "SELECT max(t1) FROM funnel_attempts WHERE funnel_id = $1::uuid", fid)  # fmt: skip
        for lo, hi in ((mid, NOW), (mid, END), (mid + timedelta(minutes=7), NOW), (mid, last)):
            got = await _report(client, admin_headers, fid, lo, hi)
            _assert_model(got, _model(world, mode, lo, hi), f"{mode} {lo}..{hi}")
    mode = ("ORDERED", "VISITOR")
    fid = world["funnels"][mode]
    last = await pool.fetchval(
        "SELECT max(t1) FROM funnel_attempts WHERE funnel_id = $1::uuid", fid)  # fmt: skip
    bucket = mid + timedelta(minutes=30)
    tamper = """INSERT INTO funnel_attempt_counts AS c (funnel_id, bucket, k, reached, closed)
                VALUES ($1::uuid, $2, 1, $3, 0) ON CONFLICT (funnel_id, bucket, k)
                DO UPDATE SET reached = c.reached + $3"""
    await pool.execute(tamper, fid, bucket, 1000)
    try:
        for lo, hi, extra in ((mid, NOW, 1000), (mid + timedelta(minutes=7), NOW, 0),
                              (mid, END, 0), (mid, last, 0)):  # fmt: skip
            got = await _report(client, admin_headers, fid, lo, hi)
            want = _model(world, mode, lo, hi)["steps"][0]["reached"] + extra
            assert got["steps"][0]["reached"] == want, f"{lo}..{hi}"
    finally:
        await pool.execute(tamper, fid, bucket, -1000)
    await _assert_counts_match(pool)


async def test_late_events_unseal_then_reseal(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    await _seal(pool)
    fid = world["funnels"][("STRICT", "VISITOR")]
    before = await _state(pool, fid)
    at = START + timedelta(days=3, hours=2)
    # a new visitor converting in the middle of the sealed interval
    late = [_event(world["site"], "late-v", "late-s", at + timedelta(minutes=i), step, "mobile")
            for i, step in enumerate(CONVERTING)]  # fmt: skip
    await _add(client, admin_headers, world, late)
    after = await _state(pool, fid)
    assert after.epoch > before.epoch
    assert after.sealed_until == at - WINDOW  # attempts before it cannot see these events
    await _check_all(client, admin_headers, world)
    await _seal(pool)
    assert (await _state(pool, fid)).sealed_until == TARGET
    await _check_all(client, admin_headers, world)


async def test_privacy_deletion_and_definition_change_stay_exact(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    await _seal(pool)
    # the visitor with the most events goes
    counts: dict[str, int] = {}
    for e in world["events"]:
        counts[e["visitor_id"]] = counts.get(e["visitor_id"], 0) + 1
    await _delete_visitor(client, admin_headers, world, max(counts, key=lambda v: (counts[v], v)))
    fid = world["funnels"][("ORDERED", "SESSION")]
    assert (await _state(pool, fid)).sealed_until < TARGET
    await _check_all(client, admin_headers, world)
    await _seal(pool)
    await _check_all(client, admin_headers, world)

    # a longer window: the stored attempts no longer fit the definition and are not read
    res = await gql(client, UPDATE, {"i": {"id": fid, "window": 3 * funnel_traffic.WINDOW}},
                    admin_headers)  # fmt: skip
    assert res["data"]["updateFunnel"]["userErrors"] == [], res
    world["windows"][("ORDERED", "SESSION")] = 3 * funnel_traffic.WINDOW
    want = _model(world, ("ORDERED", "SESSION"), START, END)
    _assert_model(await _report(client, admin_headers, fid, START, END), want, "changed")
    await _seal(pool)
    assert (await _state(pool, fid)).spec_hash == rollup_sql.spec_hash(await _spec(pool, fid))
    _assert_model(await _report(client, admin_headers, fid, START, END), want, "resealed")


async def test_a_chunk_written_into_while_sealing_is_not_stored(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    fid = world["funnels"][("ANY", "VISITOR")]
    spec = await _spec(pool, fid)
    await _seal(pool)
    # take the sealed interval back to before the traffic, then announce a chunk
    await pool.execute(
        "UPDATE funnel_rollups SET sealed_until = $2, sealing_to = $2 WHERE funnel_id = $1::uuid",
        fid, START - timedelta(days=1),
    )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        announced = await rollup_sql._announce(
            conn, spec, rollup_sql.spec_hash(spec), NOW - timedelta(days=RETENTION_DAYS),
            TARGET,
        )  # fmt: skip
    assert isinstance(announced, rollup_sql._Chunk)
    assert announced.end > START + timedelta(days=1)
    # a writer commits an event inside the announced chunk before the sealer computes it
    late = _event(world["site"], "late-w", "late-w", START + timedelta(hours=30),
                  CONVERTING[0], "tablet")  # fmt: skip
    await _add(client, admin_headers, world, [late])
    with pytest.raises(rollup_sql._Moved):
        async with pool.acquire() as conn, conn.transaction():
            await rollup_sql._compute(conn, spec, announced)
    assert (await _state(pool, fid)).sealed_until == START - timedelta(days=1)
    await _seal(pool)
    await _check_all(client, admin_headers, world)


async def test_deleted_funnel_takes_its_attempts(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    await _seal(pool)
    fid = world["funnels"].pop(("ANY", "SESSION"))
    spec = await _spec(pool, fid)
    res = await gql(client, DELETE, {"i": {"id": fid}}, admin_headers)
    assert res["data"]["deleteFunnel"]["userErrors"] == []
    # a sealer that listed the funnel before it went finds nothing to do
    wanted, target = NOW - timedelta(days=RETENTION_DAYS), TARGET
    assert await rollup_sql.seal_step(pool, spec, wanted, target) == "done"
    for table in ("funnel_attempts", "funnel_rollups"):
        left = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE funnel_id = $1::uuid", fid)  # nosec B608
        assert left == 0, table


async def _stored_equals_fresh(pool: asyncpg.Pool, spec: Any) -> int:
    """Stored attempts of the sealed interval against the same attempts computed from
    events now: the number of rows that differ (either way). That includes p1..pn (the
    previous attempt reaching each step; one before the interval counts as none) and nx
    (the next deeper attempt)."""
    st = await _state(pool, spec.funnel_id)
    q = AttemptsSql(spec)
    fid = q.param(spec.funnel_id)
    ks = range(1, len(spec.steps) + 1)
    fresh_p = ", ".join(f"CASE WHEN depth >= {k} THEN max(t1) FILTER (WHERE depth >= {k}) OVER w"
                        " END" for k in ks)  # fmt: skip
    kept_p = ", ".join(f"CASE WHEN p{k} >= $2 THEN p{k} END" for k in ks)
    fresh_nx = " ".join(f"WHEN {k - 1} THEN min(t1) FILTER (WHERE depth >= {k}) OVER wf"
                        for k in ks[1:])  # fmt: skip
    sql = f"""{q.attempts()},
fresh AS (SELECT t1, subj, sid, depth::int, dur, ARRAY[{fresh_p}] AS p,
                 CASE depth {fresh_nx} END AS nx FROM att
          WINDOW w AS (PARTITION BY subj ORDER BY t1, sid
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                 wf AS (PARTITION BY subj ORDER BY t1, sid
                        ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)),
kept AS (SELECT t1, subj, sid, depth::int, dur, ARRAY[{kept_p}] AS p,
                CASE WHEN nx < $3 THEN nx END AS nx FROM funnel_attempts
         WHERE funnel_id = {fid}::uuid AND t1 >= $2 AND t1 < $3)
SELECT * FROM (SELECT * FROM fresh EXCEPT ALL SELECT * FROM kept) a
UNION ALL SELECT * FROM (SELECT * FROM kept EXCEPT ALL SELECT * FROM fresh) b"""
    args = [spec.website_id, st.sealed_from, st.sealed_until, spec.window, *q.args]
    return len(await pool.fetch(sql, *args))


async def test_sealing_while_late_events_arrive_stores_only_what_events_say(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    """Sealer and writers race: chunks are resealed again and again while imports keep
    landing inside them. Whatever ends up sealed equals a fresh computation."""
    specs = [await _spec(pool, world["funnels"][mode])
             for mode in (("ORDERED", "VISITOR"), ("STRICT", "SESSION"))]  # fmt: skip
    rng = random.Random(7)
    visitors = sorted({e["visitor_id"] for e in world["events"]})
    span = (END - START).total_seconds()
    conflicts = 0

    async def sealer() -> None:
        nonlocal conflicts
        for _ in range(25):
            for spec in specs:
                await pool.execute(
                    # as a late write does: only ever lower the sealed end
                    """UPDATE funnel_rollups SET sealed_until = least(sealed_until, $2),
                       sealing_to = least(sealed_until, $2), epoch = epoch + 1
                       WHERE funnel_id = $1::uuid""",
                    spec.funnel_id, START + timedelta(seconds=rng.uniform(0, span)),
                )  # fmt: skip
                for _ in range(20):
                    got = await rollup_sql.seal_step(
                        pool, spec, NOW - timedelta(days=RETENTION_DAYS), TARGET
                    )  # fmt: skip
                    conflicts += got == "conflict"
                    if got == "done":
                        break

    async def writer() -> None:
        for n in range(25):
            batch = []
            for i in range(8):
                step = rng.choice([*CONVERTING, ("pageview", "/about", None)])
                ts = START + timedelta(seconds=rng.uniform(0, span))
                if i >= 6:  # open attempts: before and after the watermark (NOW - 10 min)
                    ts = NOW - timedelta(minutes=rng.uniform(1, 120))
                batch.append(_event(world["site"], rng.choice(visitors), f"race-{n}-{i}", ts,
                                    step))  # fmt: skip
            await _add(client, admin_headers, world, batch)
            await asyncio.sleep(rng.uniform(0, 0.05))

    await asyncio.gather(sealer(), writer())
    assert conflicts > 0  # the race did happen: writers hit chunks being sealed
    await _check_all(client, admin_headers, world)  # touched subjects computed, not read
    later = TARGET + timedelta(minutes=1)  # a later pass also stores them again
    for spec in specs:
        while await rollup_sql.seal_step(
            pool, spec, NOW - timedelta(days=RETENTION_DAYS), later
        ) != "done":  # fmt: skip
            pass
        assert (await _state(pool, spec.funnel_id)).sealed_until == later
        assert await _stored_equals_fresh(pool, spec) == 0, spec.ordering
    await _check_all(client, admin_headers, world)


async def test_deleting_before_the_sealed_start_moves_the_start(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    world: dict[str, Any],
) -> None:  # fmt: skip
    """Retention's case: deleted events reaching back past ``sealed_from`` leave what is
    sealed after them valid, and the sealed interval starts after the last of them."""
    await _seal(pool)
    fid = world["funnels"][("ORDERED", "VISITOR")]
    cut = START + timedelta(days=1)
    await pool.execute(
        "UPDATE funnel_rollups SET sealed_from = $2 WHERE funnel_id = $1::uuid", fid, cut
    )  # fmt: skip
    # a visitor with events on both sides of the cut, all deleted in one statement
    times: dict[str, list[datetime]] = {}
    for e in world["events"]:
        ts = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        times.setdefault(e["visitor_id"], []).append(ts)
    gone = min(v for v, ts in times.items()
               if min(ts) < cut < max(ts) < NOW - timedelta(days=1))  # fmt: skip
    sealed_until = (await _state(pool, fid)).sealed_until
    await _delete_visitor(client, admin_headers, world, gone)
    st = await _state(pool, fid)
    assert st.sealed_from == max(times[gone]) + timedelta(microseconds=1)
    assert st.sealed_until == sealed_until  # what is after them stays sealed
    later = max(times[gone]) + timedelta(hours=1)
    for lo in (START, later):  # before the new start: from events; after it: stored
        got = await _report(client, admin_headers, fid, lo, NOW)
        _assert_model(got, _model(world, ("ORDERED", "VISITOR"), lo, NOW), f"from {lo}")
    await _seal(pool)  # starts again from the retention start
    assert (await _state(pool, fid)).sealed_from == NOW - timedelta(days=RETENTION_DAYS)
    await _check_all(client, admin_headers, world)


async def test_retention_moves_the_stored_start_and_unseals_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """Retention deletes each website's oldest events first. Its first batch begins long
    after the stored start (nothing happened there); with no event between, the start
    moves past each batch and what is stored after them stays stored (the trigger used
    to unseal it all, and the next pass rebuilt the funnel's whole history)."""
    site = await make_website(client, admin_headers, domain="funnel-retention.example")
    began = {"a": NOW - timedelta(days=40), "b": NOW - timedelta(days=35),
             "c": NOW - timedelta(days=3)}  # fmt: skip
    events = [_event(site, v, f"s-{v}", t + timedelta(minutes=i), step)
              for v, t in began.items() for i, step in enumerate(CONVERTING)]  # fmt: skip
    world = await _world(client, admin_headers, site, events)
    await _seal(pool)
    assert {(await _state(pool, f)).sealed_until for f in world["funnels"].values()} == {TARGET}
    assert await delete_older_than(pool, 30, batch=2) >= 8
    last_gone = max(datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
                    for e in world["events"] if e["visitor_id"] == "b")  # fmt: skip
    world["events"][:] = [e for e in world["events"] if e["visitor_id"] == "c"]
    for mode, fid in world["funnels"].items():
        st = await _state(pool, fid)
        assert (st.sealed_from, st.sealed_until) == (
            last_gone + timedelta(microseconds=1), TARGET), mode  # fmt: skip
        lo = NOW - timedelta(days=10)  # after the new start: read from the stored attempts
        got = await _report(client, admin_headers, fid, lo, NOW)
        _assert_model(got, _model(world, mode, lo, NOW), f"{mode} after retention")
        assert got["converted"] == 1, mode


async def test_open_attempts_stay_exact_as_fresh_events_arrive(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """Attempts whose window is still open are stored as of the pass. Events arriving
    after it at or after the watermark unseal nothing: their subjects are recomputed by
    reports, and stored again by the next pass."""
    site = await make_website(client, admin_headers, domain="funnel-open.example")
    # generated traffic (its tail reaches about 24 minutes ago), and visitors who entered
    # the funnel 90 minutes ago and are still inside their 2-hour window
    lo, hi = NOW - timedelta(hours=54), NOW - timedelta(hours=30)
    events = funnel_traffic.generate(site, lo, hi)

    def ev(v: int, minutes: int, step: tuple[str, str, Any]) -> dict[str, Any]:
        return _event(site, f"open-v{v}", f"open-s{v}", NOW - timedelta(minutes=minutes), step,
                      "mobile")  # fmt: skip

    events += [e for v in range(5) for e in (ev(v, 90 - v, CONVERTING[0]),
                                              ev(v, 85 - v, CONVERTING[1]))]
    fresh_world = await _world(client, admin_headers, site, events)
    funnels: dict[tuple[str, str], str] = fresh_world["funnels"]
    await _seal(pool)
    before = {mode: await _state(pool, fid) for mode, fid in funnels.items()}
    for m, st in before.items():
        assert st.sealed_until == TARGET
        stored = await pool.fetchval(
            "SELECT count(*) FROM funnel_attempts WHERE funnel_id = $1::uuid AND t1 >= $2",
            funnels[m], TARGET - WINDOW)  # fmt: skip
        assert stored >= 5, m  # open attempts are stored
    # minutes ago (after the watermark), they complete the funnel
    fresh = [e for v in range(5) for e in (ev(v, 9, CONVERTING[2]), ev(v, 7, CONVERTING[3]))]
    mode = ("ORDERED", "VISITOR")
    was = _model(fresh_world, mode, lo, NOW)["converted"]
    await _add(client, admin_headers, fresh_world, fresh)
    assert _model(fresh_world, mode, lo, NOW)["converted"] > was  # they do change answers
    for m, fid in funnels.items():  # nothing unsealed: the events are after the watermark
        st = await _state(pool, fid)
        assert (st.sealed_until, st.epoch) == (before[m].sealed_until, before[m].epoch), m
    # from a quarter hour, reports count the stored attempts per quarter hour (migration
    # 013) and take off the touched subjects' (their first in the range is one of them)
    quarter = (NOW - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    for m, fid in funnels.items():
        for a in (lo, NOW - timedelta(hours=2), quarter):
            got = await _report(client, admin_headers, fid, a, NOW)
            _assert_model(got, _model(fresh_world, m, a, NOW), f"{m} from {a}")
    # the next pass stores the touched subjects' attempts again
    while await seal_all(pool, RETENTION_DAYS, now=NOW + timedelta(minutes=5), budget=600):
        pass
    for m, fid in funnels.items():
        assert (await _state(pool, fid)).sealed_until == TARGET + timedelta(minutes=5)
        assert await _stored_equals_fresh(pool, await _spec(pool, fid)) == 0, m
        got = await _report(client, admin_headers, fid, lo, NOW)
        _assert_model(got, _model(fresh_world, m, lo, NOW), f"{m} after the pass")


async def test_counts_migration_counts_what_is_stored_already() -> None:
    """Migration 013 on a database with stored attempts (20 steps, before and after
    2000-01-01, on and off quarter hours) counts them, and its triggers follow."""
    name = f"footfall_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}")
        [mig] = [m for m in discover() if m.name.startswith("013_")]
        await migrate(conn, timescale=False)
        await conn.execute("""DROP TABLE funnel_attempt_counts;
            DROP FUNCTION funnel_attempt_counts_apply() CASCADE;
            DROP FUNCTION funnel_attempt_counts_refuse() CASCADE;
            DROP FUNCTION funnel_attempt_deltas""")  # as before 013
        await conn.execute("DELETE FROM schema_migrations WHERE name = $1", mig.name)
        await conn.execute("INSERT INTO websites (id, domain) VALUES ('w', 'w.example')")
        fid = str(uuid.uuid4())
        await conn.execute("INSERT INTO funnels (id, website_id, name, steps) VALUES ($1, 'w', 'f',"
                           " '[]')", fid)  # fmt: skip
        rng = random.Random(13)
        base = datetime(1999, 12, 31, 23, tzinfo=UTC)
        rows = []
        for i in range(60):
            t1 = base + timedelta(minutes=rng.choice([0, 7, 15, 44, 45, 90]) * i / 3)
            depth = rng.randint(1, 20)
            ps = [t1 - timedelta(minutes=rng.randint(0, 40)) if rng.random() < 0.7 else None
                  for _ in range(depth)] + [None] * (20 - depth)  # fmt: skip
            rows.append((fid, t1, f"s{i % 7}", "sid", depth, *ps))
        cols = ", ".join(f"p{k}" for k in range(1, 21))
        marks = ", ".join(f"${k}" for k in range(1, 26))
        await conn.executemany(f"INSERT INTO funnel_attempts (funnel_id, t1, subj, sid, depth, {cols})"
                               f" VALUES ({marks})", rows)  # fmt: skip  # nosec B608
        assert await migrate(conn, timescale=False) == [mig.name]
        await _assert_counts_match(conn)
        await conn.execute("DELETE FROM funnel_attempts WHERE subj = 's3'")
        await conn.executemany(f"INSERT INTO funnel_attempts (funnel_id, t1, subj, sid, depth, {cols})"
                               f" VALUES ({marks})", rows[3::7])  # fmt: skip  # nosec B608
        await _assert_counts_match(conn)
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
