"""Deterministic traffic for funnel tests (raw import payloads, snake_case keys).

The funnel under test is ``/`` → ``/product/*`` → ``add_to_cart {plan: "pro"}`` →
``/checkout`` with a 2-hour window. Besides random browsing the traffic contains, on
purpose: visitors repeating step 1, steps out of order, conversions exactly at the
window's end and 1 ms after it, step-1 events exactly at the range's start, at its
end and 1 ms before it (with later steps after the end), equal timestamps, steps
split over two sessions, page views and custom events interrupting consecutive
steps (STRICT), look-alike pages (``/old/product/1``, ``/productX``) and properties
(``"pro"`` vs ``"Pro"``, ``1``, missing).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

WINDOW = 7200  # seconds
STEPS = [
    {"name": "Home", "type": "PAGE", "pattern": "/", "properties": None},
    {"name": "Product", "type": "PAGE", "pattern": "/product/*", "properties": None},
    {"name": "Cart", "type": "CUSTOM", "pattern": "add_to_cart", "properties": {"plan": "pro"}},
    {"name": "Checkout", "type": "PAGE", "pattern": "/checkout", "properties": None},
]
DEVICES = ("desktop", "mobile", "tablet")
COUNTRIES = ("DE", "US", "FR", None)
NOISE = ["/pricing", "/about", "/old/product/1", "/productX", "/product/", "/product/7?x=1",
         "/checkout/done", "/blog/post-1"]  # fmt: skip


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Builder:
    def __init__(self, site: str, rng: random.Random) -> None:
        self.site, self.rng = site, rng
        self.events: list[dict[str, Any]] = []

    def add(self, visitor: str, session: str, ts: datetime, kind: str, value: Any = None,
            **client: Any) -> None:  # fmt: skip
        ev: dict[str, Any] = {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "website_id": self.site, "visitor_id": visitor, "session_id": session,
            "timestamp": iso(ts), **client,
        }  # fmt: skip
        ev.setdefault("device", "desktop")
        if kind == "page":
            ev.update(event_type="pageview", page=value)
        else:
            ev.update(event_type=kind, page="/shop", properties=value)
        self.events.append(ev)


def _step_event(b: _Builder, v: str, s: str, ts: datetime, k: int, rng: random.Random,
                client: dict[str, Any]) -> None:  # fmt: skip
    if k == 0:
        b.add(v, s, ts, "page", "/", **client)
    elif k == 1:
        b.add(v, s, ts, "page", f"/product/{rng.randint(1, 9)}", **client)
    elif k == 2:
        b.add(v, s, ts, "add_to_cart", {"plan": "pro", "qty": rng.randint(1, 3)}, **client)
    else:
        b.add(v, s, ts, "page", "/checkout", **client)


def _noise(b: _Builder, v: str, s: str, ts: datetime, rng: random.Random,
           client: dict[str, Any]) -> None:  # fmt: skip
    roll = rng.random()
    if roll < 0.55:
        b.add(v, s, ts, "page", rng.choice(NOISE), **client)
    elif roll < 0.8:
        plan = rng.choice(["free", "Pro", 1, None])
        b.add(v, s, ts, "add_to_cart", {"plan": plan} if plan is not None else {}, **client)
    else:
        b.add(v, s, ts, "signup", {"plan": "pro"}, **client)


def generate(site: str, start: datetime, end: datetime, seed: int = 7,
             visitors: int = 260) -> list[dict[str, Any]]:  # fmt: skip
    """Events around the range ``[start, end)`` (from a day before to a day after)."""
    rng = random.Random(seed)
    b = _Builder(site, rng)
    span = (end - start).total_seconds() + 2 * 86400
    ms = timedelta(milliseconds=1)
    for n in range(visitors):
        v = f"v{n:04d}"
        for sn in range(rng.choice([1, 1, 2, 3])):
            s = f"{v}-s{sn}"
            client = {"device": rng.choice(DEVICES), "country": rng.choice(COUNTRIES)}
            client = {k: x for k, x in client.items() if x is not None}
            ts = start - timedelta(days=1) + timedelta(seconds=rng.uniform(0, span))
            ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
            k = 0
            for _ in range(rng.randint(1, 12)):
                roll = rng.random()
                if roll < 0.5:
                    _step_event(b, v, s, ts, k, rng, client)
                    k = min(k + 1, 3) if rng.random() < 0.85 else 0
                elif roll < 0.6:
                    _step_event(b, v, s, ts, rng.randint(0, 3), rng, client)
                else:
                    _noise(b, v, s, ts, rng, client)
                step = rng.choice([0, 0.001, 1, 20, 300, 900, 1800, 3600, 5000])
                ts += timedelta(seconds=step)
    _edge_cases(b, start, end, ms)
    rng.shuffle(b.events)
    return b.events


def _path(b: _Builder, v: str, s: str, t: datetime, offsets: list[float],
          steps: list[int], client: dict[str, Any] | None = None) -> None:  # fmt: skip
    for off, k in zip(offsets, steps, strict=True):
        _step_event(b, v, s, t + timedelta(seconds=off), k, b.rng, client or {})


def _edge_cases(b: _Builder, start: datetime, end: datetime, ms: timedelta) -> None:
    mid = start + (end - start) / 2
    w = float(WINDOW)
    # last step exactly at the window's end (converts) / 1 ms after it (does not)
    _path(b, "e-win-in", "e-win-in-s", mid, [0, 10, 20, w], [0, 1, 2, 3])
    _path(b, "e-win-out", "e-win-out-s", mid, [0, 10, 20, w + 0.001], [0, 1, 2, 3])
    # step 1 exactly at start (in), at end (out), 1 ms before end with later steps after it
    _path(b, "e-start", "e-start-s", start, [0, 5, 6, 7], [0, 1, 2, 3])
    _path(b, "e-end", "e-end-s", end, [0, 5, 6, 7], [0, 1, 2, 3])
    _path(b, "e-end-1ms", "e-end-1ms-s", end - ms, [0, 5, 6, 7], [0, 1, 2, 3])
    # step 1 before start, rest inside: not entered via that attempt
    _path(b, "e-before", "e-before-s", start - timedelta(seconds=30), [0, 60, 70, 80], [0, 1, 2, 3])
    # repeated step 1: only the late attempt converts within the window
    _path(
        b,
        "e-repeat",
        "e-repeat-s",
        mid,
        [0, 100, 200, 3 * w, 3 * w + 5, 3 * w + 6, 3 * w + 9],
        [0, 0, 0, 0, 1, 2, 3],
    )
    # shortest path from a later step-1 event
    _path(b, "e-short", "e-short-s", mid, [0, 50, 60, 600, 610, 620], [0, 1, 0, 1, 2, 3])
    # out of order: 3 before 2 (ANY converts, ORDERED stops at 2 … then 3 again)
    _path(b, "e-order", "e-order-s", mid, [0, 10, 20, 30], [0, 2, 1, 3])
    # equal timestamps between step 1 and step 2 (not increasing)
    _path(b, "e-tie", "e-tie-s", mid, [0, 0, 0, 1], [0, 1, 2, 3])
    # STRICT: a page view between steps 2 and 3 interrupts; a custom event does not
    _path(b, "e-strict", "e-strict-s", mid, [0, 10, 30, 40], [0, 1, 2, 3])
    b.add("e-strict", "e-strict-s", mid + timedelta(seconds=20), "page", "/pricing")
    _path(b, "e-loose", "e-loose-s", mid, [0, 10, 30, 40], [0, 1, 2, 3])
    b.add("e-loose", "e-loose-s", mid + timedelta(seconds=20), "signup", {})
    # STRICT: a page view at the same instant as a custom step interrupts it
    _path(b, "e-same", "e-same-s", mid, [0, 10, 30, 40], [0, 1, 2, 3])
    b.add("e-same", "e-same-s", mid + timedelta(seconds=30), "page", "/about")
    # a visitor's path split over two sessions (VISITOR converts, SESSION does not)
    _path(b, "e-split", "e-split-a", mid, [0, 10], [0, 1])
    _path(b, "e-split", "e-split-b", mid + timedelta(seconds=60), [0, 10], [2, 3])
