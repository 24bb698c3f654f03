"""Claims of new server-assigned sessions, so parallel requests of one visitor agree.

metrics.md: an event without ``session_id`` continues its visitor's latest session when
that session's last event is less than 30 minutes (event time) away, else starts a new
one. ``resolvers.tracking`` finds the latest session in the ``sessions`` table, which
only shows committed events: requests of one visitor arriving together would each see
no live session and each start their own. So before starting a new session, a request
*claims* it here, and every request claiming a new session for the same (website,
visitor) within ``ttl`` gets the same id as long as their event times are within the
gap of each other.

A claim is a session id with the event-time extent ``[first, last]`` (epoch ms) of
the events known to be in it; up to ``KEEP_PER_VISITOR`` claims are kept per (website,
visitor), most recently claimed first. Claiming a run of events ``[lo, hi]``: the first
kept claim whose extent is within ``gap`` of it (``lo - last < gap`` and
``first - hi < gap``) wins and its extent grows to cover the run; when none is, the
run's proposed id becomes a new claim. So the answer does not depend on arrival order,
even when parallel requests carry event times far apart (a flushed offline queue next
to live events). Every claim renews the entry's ``ttl`` (60 s by default: the time a
request needs from its lookup to the commit of its events; after that the session is
in the database and the lookup finds it).

Shared by every worker through Redis (one Lua script per call: atomic across processes,
one round trip; keys ``<namespace>:sess:<digest of website and visitor>``). Without
Redis, during its failure cool-down, or when a call fails, claims live in this process's
memory: coroutines of one process still agree (a claim there never awaits), workers do
not (each may start its own session for the same visitor, the behaviour before claims).
A Redis failure never fails ingest; it is logged once per outage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from resolvers.protection import protection_of
from resolvers.runtime import Runtime

log = logging.getLogger("footfall.session_claims")

EXTRAS_KEY = "session_claims"
CLAIM_TTL = 60.0  # seconds a claim lives after its last use
COOLDOWN = 5.0  # seconds without Redis after a failure
MAX_LOCAL_CLAIMS = 100_000  # in-process entries kept (expired ones are dropped first)
SCRIPT_BATCH = 500  # claims per script call (bounds the time Redis is busy with one)
KEEP_PER_VISITOR = 8  # claimed sessions remembered per (website, visitor)

# KEYS: claim keys; ARGV: ttl ms, gap ms, sessions kept per key, then per key: proposed
# id, first ms, last ms. Stored value: "<id> <first ms> <last ms>;…", most recently
# claimed first. Returns the session id per key.
_SCRIPT = """
local ttl = ARGV[1]
local gap = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS do
  local lo, hi = tonumber(ARGV[3 * i + 2]), tonumber(ARGV[3 * i + 3])
  local found = nil
  local rest = {}
  local cur = redis.call('GET', KEYS[i])
  if cur then
    for csid, clo, chi in string.gmatch(cur, '([^;%s]+) (%-?%d+) (%-?%d+)') do
      clo, chi = tonumber(clo), tonumber(chi)
      if not found and lo - chi < gap and clo - hi < gap then
        found = {csid, math.min(lo, clo), math.max(hi, chi)}
      elseif #rest < keep - 1 then
        rest[#rest + 1] = {csid, clo, chi}
      end
    end
  end
  found = found or {ARGV[3 * i + 1], lo, hi}
  local parts = {string.format('%s %.0f %.0f', found[1], found[2], found[3])}
  for _, e in ipairs(rest) do
    parts[#parts + 1] = string.format('%s %.0f %.0f', e[1], e[2], e[3])
  end
  redis.call('SET', KEYS[i], table.concat(parts, ';'), 'PX', ttl)
  out[i] = found[1]
end
return out
"""


class NewSession(NamedTuple):
    """A run of one visitor's events that starts a new session unless one is claimed:
    ``proposed`` id, event times of its first and last event."""

    visitor_id: str
    proposed: str
    first: datetime
    last: datetime


_Claimed = tuple[str, int, int]  # (session id, first event ms, last event ms)


def _ms(ts: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(ts.timestamp() * 1000)


class SessionClaims:
    """``resolve(website_id, runs, gap)``: the session id each run belongs to."""

    def __init__(self, redis: Any = None, namespace: str = "ff", ttl: float = CLAIM_TTL) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl
        self._script = redis.register_script(_SCRIPT) if redis is not None else None
        # (website, visitor) → (expires at, monotonic s; claimed sessions, most recent first)
        self._local: dict[tuple[str, str], tuple[float, list[_Claimed]]] = {}
        self._down_until = 0.0
        self._degraded = False

    @property
    def using_redis(self) -> bool:
        """Redis is configured and not in its failure cool-down."""
        return self._script is not None and time.monotonic() >= self._down_until

    def _key(self, website_id: str, visitor_id: str) -> str:
        digest = hashlib.blake2b(f"{website_id}\x1f{visitor_id}".encode(), digest_size=16)
        return f"{self.namespace}:sess:{digest.hexdigest()}"

    async def resolve(
        self, website_id: str, runs: Sequence[NewSession], gap: timedelta
    ) -> list[str]:
        """Per run (in order; a visitor's runs in time order): the claimed session id —
        another request's when their event times are within ``gap``, else the run's
        ``proposed`` id, which is then claimed for ``ttl`` seconds. Never raises for a
        Redis failure (falls back to process memory)."""
        out: list[str] = []
        for start in range(0, len(runs), SCRIPT_BATCH):
            batch = runs[start : start + SCRIPT_BATCH]
            ids = await self._redis_resolve(website_id, batch, gap) if self.using_redis else None
            out += ids if ids is not None else self._local_resolve(website_id, batch, gap)
        return out

    async def _redis_resolve(
        self, website_id: str, runs: Sequence[NewSession], gap: timedelta
    ) -> list[str] | None:
        assert self._script is not None
        keys = [self._key(website_id, r.visitor_id) for r in runs]
        args: list[Any] = [int(self.ttl * 1000), int(gap.total_seconds() * 1000), KEEP_PER_VISITOR]
        for r in runs:
            args += [r.proposed, _ms(r.first), _ms(r.last)]
        try:
            reply = await self._script(keys=keys, args=args)
        except Exception as exc:  # redis errors, OSError, timeouts (not cancellation)
            self._down_until = time.monotonic() + COOLDOWN
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "session claims: Redis unavailable (%s); claims are per process until "
                    "it answers (parallel requests on different workers may split sessions)",
                    type(exc).__name__,
                )
            return None
        if self._degraded:
            self._degraded = False
            log.info("session claims: Redis answers again")
        return [v.decode() if isinstance(v, bytes) else str(v) for v in reply]

    def _local_resolve(
        self, website_id: str, runs: Sequence[NewSession], gap: timedelta
    ) -> list[str]:
        """The script's rule in process memory; never awaits, so it is atomic among the
        process's coroutines."""
        now = time.monotonic()
        gap_ms = int(gap.total_seconds() * 1000)
        out: list[str] = []
        for r in runs:
            key = (website_id, r.visitor_id)
            lo, hi = _ms(r.first), _ms(r.last)
            found: _Claimed | None = None
            rest: list[_Claimed] = []
            cur = self._local.pop(key, None)  # re-inserted below: most recent last
            for sid, clo, chi in cur[1] if cur is not None and cur[0] > now else ():
                if found is None and lo - chi < gap_ms and clo - hi < gap_ms:
                    found = (sid, min(lo, clo), max(hi, chi))
                elif len(rest) < KEEP_PER_VISITOR - 1:
                    rest.append((sid, clo, chi))
            found = found or (r.proposed, lo, hi)
            self._local[key] = (now + self.ttl, [found, *rest])
            out.append(found[0])
        if len(self._local) > MAX_LOCAL_CLAIMS:
            self._prune(now)
        return out

    def _prune(self, now: float) -> None:
        self._local = {k: v for k, v in self._local.items() if v[0] > now}
        excess = len(self._local) - MAX_LOCAL_CLAIMS
        if excess > 0:  # all live: drop the least recently claimed
            for key in list(self._local)[:excess]:
                del self._local[key]


def claims_of(rt: Runtime) -> SessionClaims:
    """The runtime's claim registry, built on first use on the Redis client and
    deployment namespace of the rate limiter (``graph.security`` wires those at start-up;
    without ``REDIS_URL`` the registry is in-process)."""
    found = rt.extras.get(EXTRAS_KEY)
    if not isinstance(found, SessionClaims):
        limiter = protection_of(rt).limiter
        found = rt.extras[EXTRAS_KEY] = SessionClaims(limiter.redis, limiter.namespace)
    return found
