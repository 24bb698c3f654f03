"""Rate limits shared by every API process through Redis, with an in-process fallback.

Algorithm: a sliding-window counter per key. Time is cut into fixed windows of
``window`` seconds (60); a key keeps the count of the current and the previous window,
and the rate is estimated as ``previous × (1 − elapsed / window) + current``. This
smooths the burst a plain fixed window allows at its edges (up to 2× the limit) at the
cost of two integers per key. A request adding ``amount`` is allowed when, for every key
it touches, the estimate plus ``amount`` stays ≤ the key's limit; then all its keys are
incremented together, a refused request counts nowhere. Check-and-increment is one Lua
script (one round trip, atomic across processes).

Without ``REDIS_URL``, or while Redis is unreachable, the same algorithm runs in
process memory (limits then apply per process). After a Redis error the limiter stays
local for ``COOLDOWN`` seconds before trying Redis again, so an outage costs one failed
call per cooldown, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("footfall.limits")

COOLDOWN = 5.0  # seconds without Redis after a failure
_MAX_LOCAL_KEYS = 200_000

# KEYS: [cur1, prev1, cur2, prev2, …]; ARGV: [amount, weight, ttl, limit1, limit2, …].
# Returns {1} when allowed (and increments), else {0, cur1, prev1, cur2, prev2, …}.
_SCRIPT = """
local amount = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local counts = {}
local refused = false
for i = 1, #KEYS, 2 do
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
  counts[#counts + 1] = cur
  counts[#counts + 1] = prev
  if prev * weight + cur + amount > tonumber(ARGV[3 + (i + 1) / 2]) then refused = true end
end
if refused then
  table.insert(counts, 1, 0)
  return counts
end
for i = 1, #KEYS, 2 do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3]))
end
return {1}
"""


@dataclass(frozen=True)
class Decision:
    """``allowed``, else wait ``retry_after`` whole seconds (≥ 1) before retrying;
    ``over`` names the keys whose limit refused the request (in the order given)."""

    allowed: bool
    retry_after: int = 0
    over: tuple[str, ...] = ()


def wait_seconds(
    prev: float, cur: float, amount: float, limit: float, elapsed: float, window: float
) -> int:
    """Seconds until ``amount`` more fits under ``limit`` (sliding-window estimate), ≥ 1."""
    if amount > limit:
        return int(window)
    if cur + amount <= limit and prev > 0:
        t = max(0.0, window * (1 - (limit - cur - amount) / prev) - elapsed)
        if t < window - elapsed:
            return max(1, math.ceil(t))
    # Not within this window: next window, where ``cur`` becomes the previous count.
    t_next = 0.0 if cur <= 0 else max(0.0, window * (1 - (limit - amount) / cur))
    return max(1, math.ceil(window - elapsed + t_next))


class RateLimiter:
    """``hit(keys_and_limits, amount)`` against Redis when given, else process memory."""

    def __init__(
        self,
        redis: Any = None,
        namespace: str = "ff",
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.window = window
        self._clock = clock
        self._script = redis.register_script(_SCRIPT) if redis is not None else None
        self._local: dict[str, tuple[int, float, float]] = {}  # key → (window, prev, cur)
        self._down_until = 0.0

    @property
    def using_redis(self) -> bool:
        """Redis is configured and not in its failure cool-down."""
        return self._script is not None and time.monotonic() >= self._down_until

    async def hit(self, limits: Sequence[tuple[str, int]], amount: int = 1) -> Decision:
        """Count ``amount`` against every ``(key, limit)`` (limit 0 = unlimited) if all
        fit; else count nothing and say how long to wait."""
        active = [(k, lim) for k, lim in limits if lim > 0]
        if not active:
            return Decision(True)
        now = self._clock()
        index = int(now // self.window)
        elapsed = now - index * self.window
        if self.using_redis:
            try:
                return await self._redis_hit(active, amount, index, elapsed)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # redis errors, OSError, timeouts
                self._down_until = time.monotonic() + COOLDOWN
                log.warning("rate limiter: Redis unavailable (%s); in-process for %ss",
                            type(exc).__name__, COOLDOWN)  # fmt: skip
        return self._local_hit(active, amount, index, elapsed)

    async def _redis_hit(
        self, active: list[tuple[str, int]], amount: int, index: int, elapsed: float
    ) -> Decision:
        assert self._script is not None
        keys: list[str] = []
        for key, _ in active:
            keys += [f"{self.namespace}:rl:{key}:{index}", f"{self.namespace}:rl:{key}:{index - 1}"]
        weight = 1 - elapsed / self.window
        ttl = int(self.window * 2) + 1
        args = [amount, repr(weight), ttl, *[lim for _, lim in active]]
        reply = await self._script(keys=keys, args=args)
        if int(reply[0]) == 1:
            return Decision(True)
        counts = [float(c) for c in reply[1:]]
        over = {
            key: wait_seconds(counts[2 * i + 1], counts[2 * i], amount, lim, elapsed, self.window)
            for i, (key, lim) in enumerate(active)
            if counts[2 * i + 1] * weight + counts[2 * i] + amount > lim
        }
        return Decision(False, max(over.values(), default=1), tuple(over))

    def _counts(self, key: str, index: int) -> tuple[float, float]:
        win, prev, cur = self._local.get(key, (index, 0.0, 0.0))
        if win == index:
            return prev, cur
        if win == index - 1:
            return cur, 0.0
        return 0.0, 0.0

    def _local_hit(
        self, active: list[tuple[str, int]], amount: int, index: int, elapsed: float
    ) -> Decision:
        weight = 1 - elapsed / self.window
        over: dict[str, int] = {}
        for key, lim in active:
            prev, cur = self._counts(key, index)
            if prev * weight + cur + amount > lim:
                over[key] = wait_seconds(prev, cur, amount, lim, elapsed, self.window)
        if over:
            return Decision(False, max(over.values()), tuple(over))
        if len(self._local) > _MAX_LOCAL_KEYS:
            self._local = {k: v for k, v in self._local.items() if v[0] >= index - 1}
        for key, _ in active:
            prev, cur = self._counts(key, index)
            self._local[key] = (index, prev, cur + amount)
        return Decision(True)
