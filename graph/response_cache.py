"""Whole-response cache of GraphQL queries, in-process: a dashboard asked again within
``TTL`` seconds skips parsing, validation and execution (~800 field resolutions for the
8-breakdown dashboard, most of a warm request's time) and gets the same bytes back.

Rules, so that nobody ever gets an answer they could not get fresh:

* Keys are (generation, caller, exact request body): the caller is the principal's
  subject, scope and websites, so two callers never share an entry. Only authenticated
  callers are cached.
* Only successful ``query`` operations are stored (HTTP 200, no ``errors``);
  mutations, subscriptions and failures never are.
* ``bump()`` starts a new generation and so drops every entry. It is called when this
  process commits events (writer commit hook), after every request that may change
  data (any method but GET/HEAD/OPTIONS outside ``/graphql``, and every GraphQL
  operation that is not a query), and entries expire after ``TTL`` (1 s) in any case —
  the bound on staleness for changes made by another process (another worker, a
  ``footfall writer``), the same second the realtime numbers are cached for.
* With ``gate`` set (the app sets it to "commit notices of other workers can arrive"),
  nothing is served or stored while it says no.
* A hit is charged its recorded ``extensions.cost`` against the caller's per-minute
  budget like a fresh answer; when the budget refuses, the request runs normally (and
  is refused with its usual error).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from resolvers import counters
from resolvers.access import Principal

TTL = 1.0  # seconds an entry lives
MAX_ENTRIES = 256
MAX_BODY = 4 * 1_048_576  # bytes; larger responses are not stored
MAX_TOTAL = 32 * 1_048_576  # bytes of all entries together (least recently used go first)
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Entry:
    expires: float  # time.monotonic() seconds
    body: bytes  # the JSON response as sent
    cost: int  # its extensions.cost (0 when absent)


class MarkOperation(SchemaExtension):
    """Records on the HTTP request whether the executed operation is a ``query``
    (``request.state.graphql_query``), so that the cache tells queries from everything
    else without decoding and parsing the request a second time. Unset (a request that
    failed before execution) counts as not a query."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        request = getattr(ec.context, "request", None)
        if isinstance(request, Request):
            request.state.graphql_query = ec.operation_type == OperationType.QUERY
        yield


def executed_query(request: Request) -> bool:
    """The request ran a ``query`` operation (see ``MarkOperation``)."""
    return bool(getattr(request.state, "graphql_query", False))


def caller_key(principal: Principal) -> str | None:
    """What identifies the caller's view of the data; None: not cacheable."""
    if principal.scope is None:
        return None
    sites = "*" if principal.websites is None else ",".join(sorted(principal.websites))
    return f"{principal.subject}\x00{principal.scope}\x00{sites}"


class ResponseCache:
    """An LRU of at most ``MAX_ENTRIES`` responses and ``MAX_TOTAL`` bytes, each kept
    ``ttl`` seconds."""

    def __init__(
        self, ttl: float = TTL, max_entries: int = MAX_ENTRIES, max_total: int = MAX_TOTAL
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_total = max_total
        self.generation = 0
        #: when set and false, nothing is served or stored (e.g. while other workers'
        #: commit notices cannot arrive: ``resolvers.realtime.PubSub.reliable``)
        self.gate: Callable[[], bool] | None = None
        self.hits = 0  # entries served, since start
        self.size = 0  # bytes of the stored bodies
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def bump(self) -> None:
        """Forget every entry (data may have changed)."""
        self.generation += 1
        self._entries.clear()
        self.size = 0

    def _drop(self, key: str) -> None:
        self.size -= len(self._entries.pop(key).body)

    def key(self, principal: Principal, body: bytes) -> str | None:
        who = caller_key(principal)
        if who is None or self.ttl <= 0 or (self.gate is not None and not self.gate()):
            return None
        digest = hashlib.blake2b(who.encode() + b"\x01" + body, digest_size=20).hexdigest()
        return f"{self.generation}:{digest}"

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        counters.RESPONSE_CACHE_HITS.inc()
        return entry

    def put(self, key: str, status: int, response: bytes) -> None:
        """Store ``response`` (the answer to a query) under ``key`` when it succeeded and
        the generation has not moved since ``key`` was made."""
        if status != 200 or len(response) > MAX_BODY or not key.startswith(f"{self.generation}:"):
            return
        try:
            answer = orjson.loads(response)
        except orjson.JSONDecodeError:
            return
        if not isinstance(answer, dict) or answer.get("errors"):
            return
        cost = (answer.get("extensions") or {}).get("cost", 0)
        entry = Entry(time.monotonic() + self.ttl, response, cost if isinstance(cost, int) else 0)
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self.size += len(response)
        while len(self._entries) > self.max_entries or self.size > self.max_total:
            self._drop(next(iter(self._entries)))


class BumpOnWrite:
    """ASGI middleware: a request that may change data (any method but GET, HEAD and
    OPTIONS; ``/graphql`` excepted, which bumps for non-query operations itself) starts a
    new response-cache generation when its response starts, i.e. after its changes."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method", "GET") in READ_ONLY_METHODS
            or scope.get("path", "").rstrip("/") == "/graphql"
        ):
            await self.app(scope, receive, send)
            return
        cache: ResponseCache | None = getattr(scope["app"].state, "responses", None)

        async def bumping_send(message: Any) -> None:
            if message["type"] == "http.response.start" and cache is not None:
                cache.bump()
            await send(message)

        await self.app(scope, receive, bumping_send)
