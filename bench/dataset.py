"""The benchmark dataset, generated straight into PostgreSQL with COPY (no HTTP).

    python -m bench.dataset [--size 10m|1m|both] [--force]

* ``10m``: 10,000,000 events over the 90 days before generation time (UTC) on 100
  websites ``site-001`` … ``site-100`` whose sizes follow Zipf (s = 1.3): ``site-001``
  holds ~32 % of the events, ≥ 1M of them in its last 30 days (traffic grows ~60 % over
  the 90 days, weekends are quieter, days follow a diurnal curve).
* ``1m``: the same shape with 1,000,000 events (10× smaller).

Sessions have 1–10 page views (40 % bounce-like single views), some custom events
(``signup``, ``download``, ``outbound``, ``video_play``, ``add_to_cart``, ``purchase``,
with properties), 5 % carry a ``session_start`` event (ignored by every metric); the
first event carries the external referrer, UTM tags (12 % of sessions), country, city,
browser, os, device and screen; later page views refer to the previous page. 30 % of
sessions walk the shop journey ``/`` → ``/product/<n>`` → ``add_to_cart`` →
``/checkout`` → ``purchase`` with drop-offs. Visitors return (70 % as many visitors
as sessions, skewed).

Rows are produced in Python (``random.Random``, seeded: the dataset is reproducible up
to the generation time) and streamed as COPY text; events' indexes are dropped during
the load and rebuilt after it. The ``sessions`` rows are then built with one
``INSERT … SELECT … GROUP BY`` over ``events`` with the definitions of
``db/writer.py``'s ``MERGE_SQL``; then ``VACUUM ANALYZE``. Five funnels are created on
``site-001`` (see ``FUNNELS``).

Cache: a database whose ``bench_meta`` records this dataset version and the expected
event count (checked with ``count(*)``) generated less than ``MAX_AGE_DAYS`` ago is
reused (pending migrations are applied to it); ``--force`` regenerates.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import asyncpg

from bench.common import ADMIN_DSN
from db.migrate import migrate

#: v2: sessions are stored in start-time order, as the writer stores them (v1 stored them
#: in hash-aggregate order, so every time range of sessions touched every page).
VERSION = "footfall-bench-v2"
SIZES = {"10m": 10_000_000, "1m": 1_000_000}
N_SITES = 100
ZIPF_S = 1.3
DAYS = 90
MAX_AGE_DAYS = 3
LARGEST = "site-001"
LARGEST_TZ = "Europe/Berlin"
CHUNK_BYTES = 4 << 20

COPY_COLUMNS = [
    "website_id", "ts", "id", "event_type", "visitor_id", "session_id", "page", "referrer",
    "referrer_host", "utm_source", "utm_medium", "utm_campaign", "country", "city",
    "browser", "os", "device", "screen", "time_on_page", "properties", "received_at",
]  # fmt: skip

SHOP_STEPS = [
    {"name": "Home", "type": "PAGE", "pattern": "/", "properties": None},
    {"name": "Product", "type": "PAGE", "pattern": "/product/*", "properties": None},
    {"name": "Cart", "type": "CUSTOM", "pattern": "add_to_cart", "properties": None},
    {"name": "Checkout", "type": "PAGE", "pattern": "/checkout", "properties": None},
]
#: name → (steps, window seconds, count_by, ordering); the first is the 4-step ORDERED one.
FUNNELS: dict[str, tuple[list[dict[str, object]], int, str, str]] = {
    "shop (ordered)": (SHOP_STEPS, 86400, "VISITOR", "ORDERED"),
    "shop (strict)": (SHOP_STEPS, 86400, "VISITOR", "STRICT"),
    "shop (any, by session)": (SHOP_STEPS, 3600, "SESSION", "ANY"),
    "pro cart to purchase": (
        [
            {"name": "Product", "type": "PAGE", "pattern": "/product/*", "properties": None},
            {"name": "Pro in cart", "type": "CUSTOM", "pattern": "add_to_cart",
             "properties": {"plan": "pro"}},
            {"name": "Checkout", "type": "PAGE", "pattern": "/checkout", "properties": None},
            {"name": "Purchase", "type": "CUSTOM", "pattern": "purchase", "properties": None},
        ],
        604800, "VISITOR", "ORDERED",
    ),
    "content to signup": (
        [
            {"name": "Blog", "type": "PAGE", "pattern": "/blog/*", "properties": None},
            {"name": "Pricing", "type": "PAGE", "pattern": "/pricing", "properties": None},
            {"name": "Signup page", "type": "PAGE", "pattern": "/signup", "properties": None},
            {"name": "Signed up", "type": "CUSTOM", "pattern": "signup", "properties": None},
        ],
        604800, "VISITOR", "ORDERED",
    ),
}  # fmt: skip

PAGES = (
    ["/", "/pricing", "/about", "/signup", "/login", "/blog", "/docs", "/cart", "/checkout",
     "/checkout/done", "/contact", "/careers"]
    + [f"/blog/post-{i}" for i in range(1, 61)]
    + [f"/docs/{t}" for t in ("install", "config", "api", "faq", "sdk", "cli", "deploy")]
    + [f"/product/{i}" for i in range(1, 101)]
)  # fmt: skip
# Zipf-like popularity of pages; landing pages favour "/" and blog posts a little more.
_PAGE_W = [1 / (i + 1) ** 0.9 for i in range(len(PAGES))]
_LAND_W = [w * (3 if p == "/" or p.startswith("/blog/") else 1) for p, w in zip(PAGES, _PAGE_W, strict=True)]  # fmt: skip
PAGE_CUM = list(accumulate(_PAGE_W))
LAND_CUM = list(accumulate(_LAND_W))
PV_CUM = list(accumulate([40, 18, 12, 8, 6, 5, 4, 3, 2, 2]))  # 1..10 page views

# (referrer, referrer_host, weight); None = direct.
REFERRERS = [
    (None, None, 40), ("https://www.google.com/", "google.com", 25),
    ("https://www.bing.com/", "bing.com", 4), ("https://duckduckgo.com/", "duckduckgo.com", 3),
    ("https://t.co/x1y2z3", "t.co", 3), ("https://m.facebook.com/", "m.facebook.com", 4),
    ("https://news.ycombinator.com/item?id=1", "news.ycombinator.com", 3),
    ("https://www.reddit.com/r/webdev/", "reddit.com", 3), ("https://github.com/", "github.com", 3),
    ("https://www.linkedin.com/feed/", "linkedin.com", 2),
] + [(f"https://blog{i}.example.org/post", f"blog{i}.example.org", 0.2) for i in range(50)]  # fmt: skip
REF_CUM = list(accumulate(r[2] for r in REFERRERS))
UTMS = [("newsletter", "email", "weekly"), ("google", "cpc", "brand"),
        ("twitter", "social", "launch"), ("facebook", "paid", "spring-sale")]  # fmt: skip
COUNTRIES = [
    ("US", ["New York", "San Francisco", "Chicago"], 30), ("DE", ["Berlin", "Munich"], 12),
    ("GB", ["London", "Manchester"], 9), ("FR", ["Paris", "Lyon"], 7), ("IN", ["Bengaluru"], 7),
    ("CA", ["Toronto"], 4), ("BR", ["São Paulo"], 4), ("NL", ["Amsterdam"], 3),
    ("JP", ["Tokyo"], 3), ("ES", ["Madrid"], 3), ("IT", ["Milan"], 3), ("PL", ["Warsaw"], 2),
    ("SE", ["Stockholm"], 2), ("AU", ["Sydney"], 2), (None, [], 3),
] + [(c, [], 0.5) for c in ("MX", "AR", "CH", "AT", "BE", "DK", "NO", "FI", "IE", "PT")]  # fmt: skip
COUNTRY_CUM = list(accumulate(c[2] for c in COUNTRIES))
CLIENTS = [  # device, os, browser, screen, weight
    ("desktop", "Windows", "Chrome", "1920x1080", 30), ("desktop", "Windows", "Edge", "1920x1080", 8),
    ("desktop", "Windows", "Firefox", "1920x1080", 5), ("desktop", "Mac OS X", "Safari", "1440x900", 8),
    ("desktop", "Mac OS X", "Chrome", "1440x900", 7), ("desktop", "Linux", "Firefox", "2560x1440", 2),
    ("mobile", "iOS", "Mobile Safari", "390x844", 15), ("mobile", "Android", "Chrome Mobile", "412x915", 14),
    ("mobile", "Android", "Samsung Internet", "412x915", 3), ("tablet", "iOS", "Mobile Safari", "820x1180", 3),
    ("tablet", "Android", "Chrome", "800x1280", 1),
]  # fmt: skip
CLIENT_CUM = list(accumulate(c[4] for c in CLIENTS))
CUSTOM = [("signup", ['{"plan": "free"}', '{"plan": "pro"}']), ("download", ['{"file": "guide.pdf"}']),
          ("outbound", ['{"url": "https://github.com/footfall"}']), ("video_play", ["\\N"])]  # fmt: skip
HOUR_W = [2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5.5, 6.5, 7, 7, 7, 7, 7, 7, 6.5, 6, 5.5, 5, 4.5, 4, 3.5, 2.5]  # fmt: skip
N = "\\N"


@dataclass(frozen=True)
class Dataset:
    """A ready benchmark database. ``end``: generation time (UTC, events before it)."""

    size: str
    dsn: str
    events: int
    end: datetime
    largest: str
    funnels: dict[str, str]  # name → id


def db_name(size: str) -> str:
    return f"footfall_bench_{size}"


def dsn_of(name: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


def site_quotas(total: int) -> list[int]:
    """Events per website (Zipf, s = ZIPF_S); the remainder goes to the largest."""
    w = [1 / (i**ZIPF_S) for i in range(1, N_SITES + 1)]
    q = [int(total * x / sum(w)) for x in w]
    q[0] += total - sum(q)
    return q


class _Clock:
    """Session start sampling (hour slots weighted by growth, weekday and hour of day)
    and fast ``ts`` text for epoch milliseconds."""

    def __init__(self, end: datetime) -> None:
        self.base = (end - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.base_ms = int(self.base.timestamp() * 1000)
        start_ms = int((end - timedelta(days=DAYS)).timestamp() * 1000) - self.base_ms
        last_ms = int(end.timestamp() * 1000) - self.base_ms - 3_600_000
        self.days = [(self.base + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(DAYS + 2)]
        weights = []
        for slot in range((DAYS + 1) * 24):
            t = slot * 3_600_000
            if t < start_ms or t > last_ms:
                weights.append(0.0)
                continue
            day = self.base + timedelta(hours=slot)
            growth = 1 + 0.6 * slot / (DAYS * 24)
            weekday = 0.7 if day.weekday() >= 5 else 1.0
            weights.append(growth * weekday * HOUR_W[day.hour])
        self.cum = list(accumulate(weights))

    def start(self, rng: random.Random) -> int:
        slot = bisect.bisect_right(self.cum, rng.random() * self.cum[-1])
        return slot * 3_600_000 + rng.randrange(3_600_000)

    def text(self, ms: int) -> str:
        d, r = divmod(ms, 86_400_000)
        h, r = divmod(r, 3_600_000)
        m, r = divmod(r, 60_000)
        s, r = divmod(r, 1000)
        return f"{self.days[d]} {h:02d}:{m:02d}:{s:02d}.{r:03d}+00"


def _pick(rng: random.Random, cum: list[float]) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def _session_events(rng: random.Random) -> list[tuple[str, str, str]]:
    """(event_type, page, properties text) in time order for one session."""
    n_pv = _pick(rng, PV_CUM) + 1
    out: list[tuple[str, str, str]] = []
    if rng.random() < 0.3:  # the shop journey, with drop-offs and some noise in between
        out.append(("pageview", "/", N))
        if rng.random() < 0.55:
            if rng.random() < 0.3:
                out.append(("pageview", PAGES[_pick(rng, PAGE_CUM)], N))
            product = f"/product/{rng.randrange(1, 101)}"
            out.append(("pageview", product, N))
            if rng.random() < 0.45:
                plan = "pro" if rng.random() < 0.4 else "basic"
                out.append(("add_to_cart", product, f'{{"plan": "{plan}"}}'))
                if rng.random() < 0.6:
                    if rng.random() < 0.2:
                        out.append(("pageview", "/cart", N))
                    out.append(("pageview", "/checkout", N))
                    if rng.random() < 0.7:
                        out.append(("purchase", "/checkout", f'{{"plan": "{plan}"}}'))
                        out.append(("pageview", "/checkout/done", N))
        n_pv -= sum(1 for e in out if e[0] == "pageview")
    else:
        out.append(("pageview", PAGES[_pick(rng, LAND_CUM)], N))
        n_pv -= 1
    for _ in range(max(0, n_pv)):
        out.append(("pageview", PAGES[_pick(rng, PAGE_CUM)], N))
    if rng.random() < 0.12:
        name, props = CUSTOM[rng.randrange(len(CUSTOM))]
        at = rng.randrange(len(out))
        out.insert(at + 1, (name, out[at][1], props[rng.randrange(len(props))]))
    if rng.random() < 0.05:
        out.insert(0, ("session_start", out[0][1], N))
    return out


def site_chunks(index: int, quota: int, clock: _Clock, seed: int):  # type: ignore[no-untyped-def]
    """COPY text chunks (bytes) of exactly ``quota`` events of website ``index`` (1-based)."""
    rng = random.Random(seed * 1_000_003 + index)
    site = f"site-{index:03d}"
    domain = f"site{index:03d}.example"
    pool = max(1, int(quota / 3.6 * 0.7))
    left, k = quota, 0
    buf: list[str] = []
    size = 0
    while left > 0:
        k += 1
        events = _session_events(rng)[:left]
        left -= len(events)
        visitor = f"v{index}.{int(pool * rng.random() ** 2):x}"
        sid = f"s{index}.{k:x}"
        ref, host, _ = REFERRERS[_pick(rng, REF_CUM)]
        utm = f"{N}\t{N}\t{N}"
        if rng.random() < 0.12:
            src, med, camp = UTMS[rng.randrange(len(UTMS))]
            utm = f"{src}\t{med}\t{camp}-{rng.randrange(1, 9)}"
            if med == "cpc":
                ref, host = "https://www.google.com/", "google.com"
        country, cities, _ = COUNTRIES[_pick(rng, COUNTRY_CUM)]
        city = cities[rng.randrange(len(cities))] if cities and rng.random() < 0.7 else N
        dev, os_, browser, screen, _ = CLIENTS[_pick(rng, CLIENT_CUM)]
        tail = f"{country or N}\t{city}\t{browser}\t{os_}\t{dev}\t{screen}"
        head = f"{site}\t"
        who = f"\t{visitor}\t{sid}\t"
        first_ref = f"{ref or N}\t{host or N}\t{utm}"
        t = clock.start(rng)
        prev_page: str | None = None
        for i, (etype, page, props) in enumerate(events):
            if i:
                if etype == "pageview":
                    t += 1000 + int(rng.expovariate(1 / 45_000))
                else:
                    t += 300 + int(rng.expovariate(1 / 4000))
            ts = clock.text(t)
            if prev_page is None or etype == "session_start":
                refs = first_ref
            else:
                refs = f"https://{domain}{prev_page}\t{N}\t{N}\t{N}\t{N}"
            top = str(rng.randrange(5, 300)) if etype == "pageview" else N
            line = (f"{head}{ts}\t{rng.getrandbits(128):032x}\t{etype}{who}{page}\t{refs}\t"
                    f"{tail}\t{top}\t{props}\t{ts}\n")  # fmt: skip
            buf.append(line)
            size += len(line)
            if etype == "pageview":
                prev_page = page
        if size >= CHUNK_BYTES:
            yield "".join(buf).encode()
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode()


SESSIONS_SQL = """
INSERT INTO sessions (website_id, session_id, visitor_id, started_at, first_id, last_seen,
    entry_ts, entry_page, exit_ts, exit_page, pageviews, events, mixed_visitors, referrer,
    referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, city,
    browser, os, device)
SELECT website_id, session_id,
    (array_agg(visitor_id ORDER BY ts, id))[1],
    min(ts),
    (array_agg(id ORDER BY ts, id))[1],
    max(ts),
    min(ts) FILTER (WHERE event_type = 'pageview'),
    (array_agg(page ORDER BY ts, id) FILTER (WHERE event_type = 'pageview'))[1],
    max(ts) FILTER (WHERE event_type = 'pageview'),
    (array_agg(page ORDER BY ts DESC, id DESC) FILTER (WHERE event_type = 'pageview'))[1],
    count(*) FILTER (WHERE event_type = 'pageview'),
    count(*) FILTER (WHERE event_type <> 'pageview'),
    min(visitor_id) <> max(visitor_id),
    {first}
FROM events
WHERE event_type NOT IN ('session_start', 'session_end') AND website_id = ANY($1::text[])
GROUP BY website_id, session_id
ORDER BY min(ts)
"""
_FIRST = ("referrer", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term",
          "utm_content", "country", "city", "browser", "os", "device")  # fmt: skip
SESSIONS_SQL = SESSIONS_SQL.format(
    first=",\n    ".join(f"(array_agg({c} ORDER BY ts, id))[1]" for c in _FIRST)
)


def _two_groups(quotas: list[int]) -> list[list[str]]:
    """Websites split into two groups of similar event counts (one per core)."""
    groups: list[list[str]] = [[], []]
    load = [0, 0]
    for i, q in enumerate(quotas, start=1):
        g = 0 if load[0] <= load[1] else 1
        groups[g].append(f"site-{i:03d}")
        load[g] += q
    return groups


async def _parallel(dsn: str, statements: list[list[tuple[str, tuple[object, ...]]]]) -> None:
    """Run each list of statements on its own connection, the lists concurrently."""

    async def run(items: list[tuple[str, tuple[object, ...]]]) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET maintenance_work_mem = '1GB'; SET work_mem = '256MB';"
                               " SET max_parallel_maintenance_workers = 0; SET jit = off")  # fmt: skip
            for sql, args in items:
                await conn.execute(sql, *args)
        finally:
            await conn.close()

    await asyncio.gather(*(run(items) for items in statements if items))


async def generate(size: str, seed: int = 1) -> Dataset:
    """Drop and rebuild the ``size`` database; return it."""
    total = SIZES[size]
    name = db_name(size)
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = dsn_of(name)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    conn = await asyncpg.connect(dsn)
    await migrate(conn, timescale=False)
    timings: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    index_defs = [r["indexdef"] for r in await conn.fetch(
        "SELECT indexdef, indexname FROM pg_indexes i WHERE tablename = 'events'"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid ="
        " (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)")]  # fmt: skip
    for d in index_defs:
        await conn.execute(f"DROP INDEX {d.split(' ON ')[0].split()[-1]}")
    quotas = site_quotas(total)
    await conn.executemany(
        "INSERT INTO websites (id, domain, name, timezone) VALUES ($1, $2, $3, $4)",
        [(f"site-{i:03d}", f"site{i:03d}.example", f"Site {i}",
          LARGEST_TZ if i == 1 else "UTC") for i in range(1, N_SITES + 1)],
    )  # fmt: skip
    clock = _Clock(end)

    async def source():  # type: ignore[no-untyped-def]
        for i, q in enumerate(quotas, start=1):
            for chunk in site_chunks(i, q, clock, seed):
                yield chunk
                await asyncio.sleep(0)

    await conn.copy_to_table("events", source=source(), columns=COPY_COLUMNS, format="text")
    timings.append(("COPY events", time.perf_counter() - t0))
    t1 = time.perf_counter()
    half = [index_defs[0::2], index_defs[1::2]]
    await _parallel(dsn, [[(d, ()) for d in h] for h in half])
    timings.append(("events indexes", time.perf_counter() - t1))
    t1 = time.perf_counter()
    await _parallel(dsn, [[(SESSIONS_SQL, (g,))] for g in _two_groups(quotas)])
    timings.append(("sessions INSERT…SELECT…GROUP BY", time.perf_counter() - t1))
    t1 = time.perf_counter()
    await _parallel(dsn, [[("VACUUM ANALYZE events", ())], [("VACUUM ANALYZE sessions", ())]])
    timings.append(("VACUUM ANALYZE", time.perf_counter() - t1))
    funnels = await _create_funnels(conn)
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb)")
    meta = {"version": VERSION, "events": total, "end": end.isoformat(), "funnels": funnels,
            "seed": seed, "timings": timings}  # fmt: skip
    await conn.execute("INSERT INTO bench_meta VALUES ('dataset', $1::jsonb)", json.dumps(meta))
    await conn.close()
    for what, secs in timings:
        print(f"  {size}: {what}: {secs:.1f} s")
    return Dataset(size, dsn, total, end, LARGEST, funnels)


async def _create_funnels(conn: asyncpg.Connection) -> dict[str, str]:
    out = {}
    for name, (steps, window, count_by, ordering) in FUNNELS.items():
        fid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"footfall-bench/{name}"))
        await conn.execute(
            "INSERT INTO funnels (id, website_id, name, steps, window_seconds, count_by, ordering)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
            uuid.UUID(fid), LARGEST, name, json.dumps(steps), window, count_by, ordering,
        )  # fmt: skip
        out[name] = fid
    return out


async def cached(size: str) -> Dataset | None:
    """The existing dataset when it is complete and recent enough, else None."""
    dsn = dsn_of(db_name(size))
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        if not await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL"):
            return None
        raw = await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'dataset'")
        meta = json.loads(raw) if raw else {}
        end = datetime.fromisoformat(meta["end"]) if meta else None
        if (
            meta.get("version") != VERSION
            or meta.get("events") != SIZES[size]
            or end is None
            or datetime.now(UTC) - end > timedelta(days=MAX_AGE_DAYS)
            or await conn.fetchval("SELECT count(*) FROM events") != SIZES[size]
        ):
            return None
        await migrate(conn, timescale=False)  # new migrations (indexes…) apply here, not at serve
        return Dataset(size, dsn, SIZES[size], end, LARGEST, dict(meta["funnels"]))
    finally:
        await conn.close()


async def ensure(size: str, force: bool = False) -> Dataset:
    """The ``size`` dataset, generated only when missing, stale or ``force``."""
    if not force and (found := await cached(size)) is not None:
        return found
    t0 = time.perf_counter()
    print(f"generating the {size} dataset …", flush=True)
    ds = await generate(size)
    print(f"  {size}: total {time.perf_counter() - t0:.0f} s", flush=True)
    return ds


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=[*SIZES, "both"], default="both")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    for size in ["1m", "10m"] if args.size == "both" else [args.size]:
        ds = await ensure(size, args.force)
        conn = await asyncpg.connect(ds.dsn)
        row = await conn.fetchrow(
            "SELECT count(*) AS events, count(*) FILTER (WHERE ts >= $2) AS last30,"
            " (SELECT count(*) FROM sessions WHERE website_id = $1) AS sessions"
            " FROM events WHERE website_id = $1", LARGEST, ds.end - timedelta(days=30),
        )  # fmt: skip
        n_sessions = await conn.fetchval("SELECT count(*) FROM sessions")
        await conn.close()
        print(f"{size}: {ds.events:,} events, {n_sessions:,} sessions; {LARGEST}: "
              f"{row['events']:,} events ({row['last30']:,} in the last 30 days), "
              f"{row['sessions']:,} sessions; end {ds.end:%Y-%m-%d %H:%M} UTC")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
