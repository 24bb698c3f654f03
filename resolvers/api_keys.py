"""Long-lived API keys for server-to-server callers.

A key is ``ffk_`` + 43 URL-safe characters (256 random bits), shown once at creation;
only its SHA-256 hex digest is stored. A key acts like a token with its ``websites``
(None = all) and ``scope``; its principal's subject is ``api-key:<id>``.

Look-ups are cached in process for ``CACHE_TTL`` (5 s), hits and misses alike, so a key
revoked through another process stops working within 5 s (at once in the revoking one).
Managing keys needs admin scope; a caller can only grant websites and a scope it holds
itself, and sees (or revokes) only keys whose websites it covers.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

from db.queries import api_keys as key_sql
from db.queries import websites as website_sql
from db.queries.api_keys import ApiKeyRow
from resolvers.access import Principal, Scope
from resolvers.errors import Forbidden, NotFound, UserError
from resolvers.runtime import Runtime

KEY_PREFIX = "ffk_"
CACHE_TTL = 5.0  # seconds
MAX_NAME = 100
MAX_WEBSITES = 1000
_RANK = {"read": 1, "write": 2, "admin": 3}
_EXTRAS_KEY = "api_keys"


def hash_key(key: str) -> str:
    """SHA-256 hex of the plaintext key (what ``api_keys.key_hash`` holds)."""
    return hashlib.sha256(key.encode()).hexdigest()


def principal_of(row: ApiKeyRow) -> Principal:
    websites = None if row.websites is None else frozenset(row.websites)
    scope: Scope = row.scope  # type: ignore[assignment]
    return Principal(f"api-key:{row.id}", scope, websites)


class ApiKeyCache:
    """Principals by key hash, each kept ``ttl`` seconds (None = no such live key)."""

    def __init__(self, ttl: float = CACHE_TTL, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    async def lookup(self, rt: Runtime, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await key_sql.find_live(rt.pools.write, digest)  # no replica lag
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        found = principal_of(row) if row is not None else None
        self._entries[digest] = (now + self.ttl, found)
        return found

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)


def cache_of(rt: Runtime) -> ApiKeyCache:
    found = rt.extras.get(_EXTRAS_KEY)
    if not isinstance(found, ApiKeyCache):
        found = rt.extras[_EXTRAS_KEY] = ApiKeyCache()
    return found


async def authenticate(rt: Runtime, key: str) -> Principal | None:
    """The principal of a live key; None for an unknown or revoked one."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return await cache_of(rt).lookup(rt, key)


def _covers(who: Principal, row: ApiKeyRow) -> bool:
    if who.all_websites:
        return True
    return row.websites is not None and all(who.owns(w) for w in row.websites)


async def create(
    rt: Runtime, who: Principal, name: str, websites: list[str] | None, scope: str
) -> tuple[ApiKeyRow, str]:
    """A new key and its plaintext (shown once). Admin scope; grants ⊆ the caller's."""
    if not who.has("admin"):
        raise Forbidden("createApiKey needs an admin token")
    clean_name = name.strip()
    if not 1 <= len(clean_name) <= MAX_NAME:
        raise UserError(f"name: 1–{MAX_NAME} characters", ["name"], "TOO_LONG")
    if scope not in _RANK:
        raise UserError("scope: read, write or admin", ["scope"])
    if websites is None:
        if not who.all_websites:
            raise Forbidden("websites: only a token for all websites may grant all", ["websites"])
        granted = None
    else:
        if not websites or len(websites) > MAX_WEBSITES:
            raise UserError(f"websites: 1–{MAX_WEBSITES} ids, or null for all", ["websites"])
        granted = sorted(set(websites))
        found = {r.id for r in await website_sql.get_many(rt.pools.read, granted)}
        for i, site in enumerate(websites):
            if site not in found or not who.owns(site):
                raise NotFound(f"websites: website {site!r} not found", ["websites", str(i)])
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await key_sql.insert(
        rt.pools.write, name=clean_name, key_hash=hash_key(key), websites=granted, scope=scope
    )
    return row, key


async def _visible(rt: Runtime, who: Principal, key_id: str) -> ApiKeyRow:
    try:
        uuid.UUID(key_id)
    except ValueError:
        raise NotFound(f"id: API key {key_id!r} not found", ["id"]) from None
    row = await key_sql.get(rt.pools.write, key_id)
    if row is None or not who.has("admin") or not _covers(who, row):
        raise NotFound(f"id: API key {key_id!r} not found", ["id"])
    return row


async def revoke(rt: Runtime, who: Principal, key_id: str) -> None:
    """Revoke a key (idempotent); NotFound when absent or not the caller's to manage."""
    await _visible(rt, who, key_id)
    key_hash = await key_sql.revoke(rt.pools.write, key_id, who.subject)
    if key_hash is not None:
        cache_of(rt).forget(key_hash)


async def list_visible(rt: Runtime, who: Principal) -> list[ApiKeyRow]:
    """Keys the caller may manage (admin scope), newest first; [] otherwise."""
    if not who.has("admin"):
        return []
    return [r for r in await key_sql.list_all(rt.pools.read) if _covers(who, r)]
