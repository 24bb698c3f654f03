"""Tracking: validate → enrich → identify → write. One pipeline for the REST routes,
GraphQL ``trackEvents``/``importEvents`` and ``footfall import``. The write is the
group commit (``INGEST_QUEUE=direct``) or an append to the Redis ingest streams
(``redis``; ``footfall writer`` commits), whichever ``rt.writer`` is."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from db.errors import DatabaseUnavailable
from db.ingest_queue import QueueFull, QueueUnavailable
from db.queries import identity as identity_sql
from db.writer import EventRow
from resolvers import counters
from resolvers.enrich import cdn_location, client_ip, parse_user_agent, referrer_host
from resolvers.errors import (
    QUEUE_DOWN,
    NotFound,
    Overloaded,
    Refused,
    ServiceUnavailable,
    UserError,
)
from resolvers.event_input import CleanEvent, Mode, validate_event
from resolvers.ingest_fallback import website_for_ingest
from resolvers.protection import protect
from resolvers.runtime import Runtime
from resolvers.session_claims import NewSession, claims_of
from resolvers.session_state import latest_sessions, remember_sessions

MAX_TRACK_EVENTS = 500
MAX_IMPORT_EVENTS = 10_000
SESSION_GAP = timedelta(minutes=30)


@dataclass
class TrackRequest:
    """One request's events. ``headers`` have lower-case names. ``trusted``: the sender
    holds ``GLOBAL_API_KEY`` or write access to the website (e.g. the Seentics gateway,
    which sends every visitor's events from its own IP)."""

    site_id: str
    events: Sequence[Any]
    mode: Mode = "public"
    peer_ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    door: str = "rest"
    trusted: bool = False  # a credentialed server-side sender: no per-IP rate limit


@dataclass
class TrackResult:
    """Per input event: its id (None for a dropped bot event), visitor and session."""

    event_ids: list[str | None]
    visitor_ids: list[str | None]
    session_ids: list[str | None]
    stored: int
    bots: int


async def _daily_salt(rt: Runtime, day: date) -> bytes:
    """The salt of UTC ``day``: read (or created) once per day per process, since every
    worker must agree on it; the database deletes earlier days' salts at that moment."""
    cached: tuple[date, bytes] | None = rt.extras.get("visitor_salt")
    if cached is None or cached[0] != day:
        cached = (day, await identity_sql.salt_for(rt.pools.write, day))
        rt.extras["visitor_salt"] = cached
    return cached[1]


def _visitor_hash(salt: bytes, website_id: str, ip: str | None, ua: str | None) -> str:
    digest = hashlib.blake2b(
        f"{website_id}\x1f{ip or ''}\x1f{ua or ''}".encode(), key=salt[:64], digest_size=12
    )
    return "h" + digest.hexdigest()


async def _assign_sessions(rt: Runtime, website_id: str, events: list[CleanEvent]) -> None:
    """Give events without ``session_id`` their visitor's session (< 30 min of event time
    since its last event) or a new one; events of one visitor are chained in time order.

    The latest sessions come from the database (committed events only; in queue mode
    also from the records of ``resolvers.session_state``, alone while the database is
    unreachable). A run of events that would start a new session is claimed in
    ``resolvers.session_claims`` first, so parallel requests of one visitor (not yet
    committed) join one new session."""
    missing = [e for e in events if e.session_id is None]
    if not missing:
        return
    by_visitor: dict[str, list[CleanEvent]] = {}
    for ev in sorted(missing, key=lambda e: e.ts):
        assert ev.visitor_id is not None
        by_visitor.setdefault(ev.visitor_id, []).append(ev)
    latest = await latest_sessions(rt, website_id, sorted(by_visitor))
    runs: list[NewSession] = []
    run_events: list[list[CleanEvent]] = []
    for visitor_id, evs in by_visitor.items():
        current = latest.get(visitor_id)  # (session id, last event time); None: no session
        fresh = False  # ``current`` is this request's new (not yet claimed) session
        for ev in evs:
            if current is not None and abs(ev.ts - current[1]) < SESSION_GAP:
                current = (current[0], max(current[1], ev.ts))
                if fresh:
                    runs[-1] = runs[-1]._replace(last=current[1])
                    run_events[-1].append(ev)
                else:
                    ev.session_id = current[0]
                continue
            current, fresh = (uuid.uuid4().hex, ev.ts), True
            runs.append(NewSession(visitor_id, current[0], ev.ts, ev.ts))
            run_events.append([ev])
    if not runs:
        return
    claimed = await claims_of(rt).resolve(website_id, runs, SESSION_GAP)
    for sid, evs in zip(claimed, run_events, strict=True):
        for ev in evs:
            ev.session_id = sid


def _row(ev: CleanEvent, domain: str, received: datetime) -> EventRow:
    return (
        ev.website_id, ev.ts, ev.id, ev.event_type, ev.visitor_id, ev.session_id, ev.page,
        ev.referrer, referrer_host(ev.referrer, domain), ev.utm["utm_source"],
        ev.utm["utm_medium"], ev.utm["utm_campaign"], ev.utm["utm_term"], ev.utm["utm_content"],
        ev.country, ev.city, ev.browser, ev.os, ev.device, ev.screen, ev.time_on_page,
        ev.properties, received,
    )  # fmt: skip


async def track(rt: Runtime, req: TrackRequest) -> TrackResult:
    """Store a request's events, all or nothing; return after they are committed (in
    queue mode: after Redis has them — see ``db.ingest_queue`` for that contract).

    Raises ``UserError`` (nothing stored) for invalid input, ``NotFound`` for an unknown
    website, ``OriginRejected``/``RateLimited`` for a public request refused by
    ``resolvers.protection``, ``ServiceUnavailable`` when the database (or the ingest
    queue's Redis: message ``QUEUE_DOWN``) cannot be reached and ``Overloaded`` when the
    ingest queue is full. Queue mode goes on without the database for websites and
    visitors it knows (``resolvers.ingest_fallback``, ``resolvers.session_state``).
    """
    limit = MAX_IMPORT_EVENTS if req.mode == "import" else MAX_TRACK_EVENTS
    if not req.site_id:
        counters.EVENTS_REJECTED.labels("invalid").inc()
        raise UserError("siteId: required", ["siteId"], "REQUIRED")
    if not isinstance(req.events, list | tuple) or not req.events:
        counters.EVENTS_REJECTED.labels("invalid").inc()
        raise UserError("events: a non-empty list is required", ["events"], "REQUIRED")
    if len(req.events) > limit:
        counters.EVENTS_REJECTED.labels("too_many").inc(len(req.events))
        raise UserError(f"events: at most {limit} per request", ["events"], "TOO_LARGE")
    try:
        website = await website_for_ingest(rt, req.site_id)
    except DatabaseUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from exc
    if website is None:
        counters.EVENTS_REJECTED.labels("unknown_website").inc(len(req.events))
        raise NotFound(f"unknown website {req.site_id!r}", ["siteId"])
    ip = client_ip(req.peer_ip, req.headers.get("x-forwarded-for"), rt.trusted_proxies)
    if req.mode == "public":
        try:
            await protect(rt, website, req.headers, None if req.trusted else ip, len(req.events))
        except Refused:
            counters.EVENTS_REJECTED.labels("refused").inc(len(req.events))
            raise
    received = datetime.now(UTC)
    try:
        clean = [
            validate_event(raw, i, site_id=website.id, mode=req.mode, received=received)
            for i, raw in enumerate(req.events)
        ]
    except UserError:
        counters.EVENTS_REJECTED.labels("invalid").inc(len(req.events))
        raise
    # An import's request comes from the importing program, not from the visitors: its
    # User-Agent and address say nothing about the events (no bot check, device or
    # location from them; only the events' own userAgent, country and city count).
    imported = req.mode == "import"
    header_ua = None if imported else req.headers.get("user-agent")
    geo_country, geo_city = rt.geo.lookup(ip) if rt.geo.configured and not imported else (None, None)
    if geo_country is None and not imported:
        geo_country, geo_city = cdn_location(req.headers)
    kept: list[CleanEvent] = []
    bots = 0
    salt: bytes | None = None
    for ev in clean:
        ua = ev.user_agent or header_ua
        client = parse_user_agent(ua)
        if client.is_bot:
            bots += 1
            continue
        ev.browser = ev.browser or client.browser
        ev.os = ev.os or client.os
        ev.device = ev.device or client.device
        if ev.country is None:
            ev.country, ev.city = geo_country, ev.city or geo_city
        if ev.visitor_id is None:
            if salt is None:
                try:
                    salt = await _daily_salt(rt, received.date())
                except DatabaseUnavailable as exc:
                    raise ServiceUnavailable(str(exc)) from exc
            ev.visitor_id = _visitor_hash(salt, website.id, ip, ua)
        kept.append(ev)
    if bots:
        counters.BOTS_DROPPED.inc(bots)
    try:
        await _assign_sessions(rt, website.id, kept)
        # one row per event id: a request repeating an id stores (and counts) it once
        unique = list({ev.id: ev for ev in reversed(kept)}.values())[::-1]
        result = await rt.writer.write([_row(ev, website.domain, received) for ev in unique])
        await remember_sessions(rt, website.id, unique)
    except QueueFull as exc:
        counters.EVENTS_REJECTED.labels("queue_full").inc(len(kept))
        raise Overloaded(str(exc), exc.retry_after) from exc
    except QueueUnavailable as exc:  # queue mode: Redis, not the database, is down
        counters.EVENTS_REJECTED.labels("queue_unavailable").inc(len(kept))
        raise ServiceUnavailable(str(exc), QUEUE_DOWN) from exc
    except DatabaseUnavailable as exc:
        counters.EVENTS_REJECTED.labels("database_unavailable").inc(len(kept))
        raise ServiceUnavailable(str(exc)) from exc
    counters.EVENTS_INGESTED.labels(req.door).inc(result.stored)
    by_index = {ev.index: ev for ev in kept}
    return TrackResult(
        event_ids=[str(by_index[i].id) if i in by_index else None for i in range(len(clean))],
        visitor_ids=[by_index[i].visitor_id if i in by_index else None for i in range(len(clean))],
        session_ids=[by_index[i].session_id if i in by_index else None for i in range(len(clean))],
        stored=result.stored,
        bots=bots,
    )
