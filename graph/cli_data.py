"""Data commands of the CLI: ``import`` (NDJSON, our CSV export, or a Seentics ``events``
table dump as CSV), ``export`` (NDJSON or CSV, streamed) and ``demo``. All go through
the real ingest pipeline (``resolvers.tracking.track`` in import mode) and are
idempotent: event ids are kept, so importing the same file twice stores it once."""

from __future__ import annotations

import argparse
import csv
import random
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from db.queries import export as export_sql
from resolvers.errors import UserError
from resolvers.event_input import parse_time
from resolvers.tracking import TrackRequest, track

Runtime = Any
RuntimeFactory = Callable[[], AbstractAsyncContextManager[Any]]
CHUNK = 5000


def _csv_event(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row (ours, or the Seentics dump's columns) as an event dict."""
    ev: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items() if k}
    if ev.get("properties"):
        ev["properties"] = orjson.loads(ev["properties"])
    if ev.get("time_on_page") is not None:
        ev["time_on_page"] = int(float(ev["time_on_page"]))
    country = ev.get("country")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        ev["country"] = None  # the old service stored "Local"/"Unknown"
    ev.pop("ip_address", None)  # never stored
    ev.pop("created_at", None)
    return ev


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                yield _csv_event(row)
    else:
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield orjson.loads(line)


async def run_import(runtime: RuntimeFactory, args: argparse.Namespace) -> int:
    path = Path(args.file)
    total = sum(1 for _ in path.open("rb")) - (1 if path.suffix.lower() == ".csv" else 0)
    chunks: dict[str, list[dict[str, Any]]] = {}
    stored = 0
    async with runtime() as rt:

        async def flush(site: str) -> None:
            nonlocal stored
            result = await track(rt, TrackRequest(site, chunks.pop(site), "import", door="import"))
            stored += result.stored

        with tqdm(total=total, unit="ev", file=sys.stderr, disable=args.quiet) as bar:
            try:
                for n, event in enumerate(read_events(path), 1):
                    if args.website:  # --website re-targets every event
                        event["website_id"] = args.website
                    site = str(event.get("website_id") or "")
                    if not site:
                        print(f"error: event {n}: website_id missing", file=sys.stderr)
                        return 2
                    chunks.setdefault(site, []).append(event)
                    if len(chunks[site]) >= CHUNK:
                        await flush(site)
                    bar.update(1)
                for site in list(chunks):
                    await flush(site)
            except UserError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 2
    print(f"imported {stored} events")
    return 0


def _day(text: str | None, default: datetime) -> datetime:
    if not text:
        return default
    parsed = parse_time(text)
    if parsed is None:
        raise SystemExit(f"error: not a date/time: {text!r}")
    return parsed


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["id"] = str(out["id"])
    out["timestamp"] = out["timestamp"].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return out


async def run_export(runtime: RuntimeFactory, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    start = _day(args.from_, datetime(1970, 1, 1, tzinfo=UTC))
    end = _day(args.to, now + timedelta(days=1))
    out: TextIO = sys.stdout if args.output in (None, "-") else open(args.output, "w", newline="")
    async with runtime() as rt:
        total = await export_sql.count(rt.pools.read, args.website, start, end)
        rows: AsyncIterator[dict[str, Any]] = export_sql.stream(
            rt.pools.read, args.website, start, end
        )
        writer = None
        if args.format == "csv":
            writer = csv.DictWriter(out, fieldnames=list(export_sql.EXPORT_COLUMNS))
            writer.writeheader()
        with tqdm(total=total, unit="ev", file=sys.stderr, disable=args.quiet) as bar:
            async for record in rows:
                ev = _jsonable(record)
                if writer is not None:
                    if ev["properties"] is not None:
                        ev["properties"] = orjson.dumps(ev["properties"]).decode()
                    writer.writerow(ev)
                else:
                    out.write(orjson.dumps(ev).decode() + "\n")
                bar.update(1)
    if out is not sys.stdout:
        out.close()
    return 0


_PAGES = ["/", "/pricing", "/features", "/blog", "/blog/launch", "/blog/guide", "/docs",
          "/docs/install", "/signup", "/about", "/contact"]  # fmt: skip
_REFS = [None, None, None, "https://www.google.com/search?q=footfall", "https://duckduckgo.com/",
         "https://t.co/x", "https://news.ycombinator.com/", "https://www.reddit.com/r/selfhosted"]  # fmt: skip
_CLIENT = [("desktop", "Chrome", "Windows"), ("desktop", "Firefox", "Linux"),
           ("desktop", "Safari", "macOS"), ("mobile", "Mobile Safari", "iOS"),
           ("mobile", "Chrome Mobile", "Android"), ("tablet", "Mobile Safari", "iOS")]  # fmt: skip
_COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "NL", "AU"]


def demo_events(
    site: str, days: int, daily_visitors: int, seed: int = 42
) -> Iterator[dict[str, Any]]:
    """A realistic month: weekly rhythm, sessions of 1–8 pages, some sign-ups."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    visitors = [uuid.UUID(int=rng.getrandbits(128)).hex[:16] for _ in range(daily_visitors * 4)]
    for d in range(days, 0, -1):
        day = now - timedelta(days=d)
        weekday_factor = 0.7 if day.weekday() >= 5 else 1.0
        for _ in range(int(daily_visitors * weekday_factor * rng.uniform(0.85, 1.15))):
            visitor = rng.choice(visitors)
            session = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
            t = day + timedelta(seconds=rng.randrange(86400))
            device, browser, os_name = rng.choice(_CLIENT)
            ref = rng.choice(_REFS)
            utm = {"utm_source": "newsletter", "utm_medium": "email"} if rng.random() < 0.05 else {}
            for i in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 8])):
                yield {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "website_id": site,
                       "visitor_id": visitor, "session_id": session, "event_type": "pageview",
                       "page": rng.choice(_PAGES) if i else rng.choice(_PAGES[:4]),
                       "referrer": ref if i == 0 else None, "timestamp": t.isoformat(),
                       "device": device, "browser": browser, "os": os_name,
                       "country": rng.choice(_COUNTRIES), **(utm if i == 0 else {})}  # fmt: skip
                t += timedelta(seconds=rng.randrange(10, 240))
            if rng.random() < 0.04:
                yield {"website_id": site, "visitor_id": visitor, "session_id": session,
                       "event_type": "signup", "page": "/signup", "timestamp": t.isoformat(),
                       "properties": {"plan": rng.choice(["free", "pro"])}}  # fmt: skip


async def run_demo(runtime: RuntimeFactory, args: argparse.Namespace, port: int) -> int:
    from resolvers import websites
    from resolvers.access import Principal

    events = list(demo_events(args.website, args.days, args.visitors))
    async with runtime() as rt:
        if await rt.websites.get(args.website) is None:
            await websites.create(rt, Principal.superuser("demo"), {
                "id": args.website, "domain": "demo.footfall.local", "name": "Footfall demo",
                "timezone": "UTC", "is_public": True,
            })  # fmt: skip
        with tqdm(total=len(events), unit="ev", file=sys.stderr, disable=args.quiet) as bar:
            for i in range(0, len(events), CHUNK):
                part = events[i : i + CHUNK]
                await track(rt, TrackRequest(args.website, part, "import", door="demo"))
                bar.update(len(part))
    print(f"demo website {args.website!r}: {len(events)} events over {args.days} days")
    print(f"dashboard: http://127.0.0.1:{port}/dashboard/{args.website}")
    return 0
