"""Commit notices through PostgreSQL (``LISTEN``/``NOTIFY``), for processes without Redis.

Without ``REDIS_URL`` each process caches answers in its own memory and hears only its
own commits, so events committed by another process on the same database — ``footfall
import`` next to a running ``footfall serve`` — stayed invisible to the server for as
long as its cached answers lived (an hour for settled ranges). Each commit is announced
on ``CHANNEL`` (after it committed: a process that dies in between leaves caches to
their TTLs), and every process listens on a connection of its own, reconnecting when
it is cut; ``on_restored`` tells it that notices may have been missed meanwhile.

Payload: ``{"o": origin, "w": [website ids]}`` (``"w": null`` = every website, when the
list would not fit PostgreSQL's 8,000-byte limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from db import background

log = logging.getLogger("footfall.notices")

CHANNEL = "footfall_commits"
MAX_PAYLOAD = 7_000  # bytes; PostgreSQL refuses payloads of 8,000 or more
RETRY_SECONDS = 1.0
#: Seconds between checks that a quiet connection still answers, and how long a check
#: (or a connection attempt) may take: a partition is noticed within twice this.
PROBE_SECONDS = 5.0

#: (origin of the notice, website ids — None for all of them)
NoticeHandler = Callable[[str, list[str] | None], None]


def payload(origin: str, website_ids: list[str]) -> str:
    """The notice text for ``website_ids`` (all websites when the list is too long)."""
    text = orjson.dumps({"o": origin, "w": website_ids}).decode()
    if len(text.encode()) > MAX_PAYLOAD:
        text = orjson.dumps({"o": origin, "w": None}).decode()
    return text


async def notify(pool: asyncpg.Pool, origin: str, website_ids: list[str]) -> None:
    """Announce a commit of these websites' events to every listening process."""
    await pool.execute("SELECT pg_notify($1, $2)", CHANNEL, payload(origin, website_ids))


class Listener:
    """``LISTEN`` on ``CHANNEL`` over its own connection to ``dsn``; calls ``on_notice``
    for each notice and ``on_restored`` after every reconnection; ``reliable`` while
    listening."""

    def __init__(self, dsn: str, on_notice: NoticeHandler, on_restored: Callable[[], None]):
        self._dsn = dsn
        self._on_notice = on_notice
        self._on_restored = on_restored
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def reliable(self) -> bool:
        """Listening now: other processes' notices arrive (else caches must not serve)."""
        return self._listening.is_set()

    async def start(self, wait: float = 2.0) -> None:
        """Start listening; wait (at most ``wait`` seconds) until the first LISTEN."""
        self._task = await background.start(
            self._run(), "commit-notices", self._listening, wait
        )

    async def close(self) -> None:
        await background.stop(self._task)
        self._task = None

    def _received(self, _conn: Any, _pid: int, _channel: str, text: str) -> None:
        try:
            body = orjson.loads(text)
            sites = body.get("w")
            self._on_notice(str(body.get("o")), None if sites is None else [str(s) for s in sites])
        except Exception:  # a bad payload or handler must not stop the listener
            log.exception("commit notice %r not handled", text[:200])

    async def _run(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=PROBE_SECONDS,
                                             command_timeout=PROBE_SECONDS)  # fmt: skip
                cut = asyncio.Event()
                conn.add_termination_listener(lambda _c, cut=cut: cut.set())
                await conn.add_listener(CHANNEL, self._received)
                if not first:
                    self._on_restored()
                first = False
                self._listening.set()
                while not cut.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cut.wait(), PROBE_SECONDS)
                    if not cut.is_set():  # a quiet connection may be dead (partition): ask
                        await conn.execute("SELECT 1", timeout=PROBE_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("commit notices: %r; listening again in %.0f s", exc, RETRY_SECONDS)
            finally:
                self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1.0)
            await asyncio.sleep(RETRY_SECONDS)
