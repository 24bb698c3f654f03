"""Websites: look-up with access checks, and the admin operations."""

from __future__ import annotations

import re
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from db.errors import ConflictError
from db.queries import websites as website_sql
from db.queries.websites import WebsiteRow
from resolvers.access import Principal
from resolvers.errors import NotFound, UserError
from resolvers.ingest_fallback import fallback_of
from resolvers.runtime import Runtime, valid_website_id

_DOMAIN = re.compile(r"^(?=.{1,253}$)(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+)(:\d{1,5})?$")


@cache
def _zone_names() -> frozenset[str]:
    """IANA zone names of the tz database (not its folders, such as ``America``, nor
    ``Factory`` and the ``localtime`` link to the machine's zone)."""
    return frozenset(available_timezones() - {"Factory", "localtime"})


def check_timezone(name: str, field: str = "timezone") -> str:
    """An IANA zone name, else ``UserError`` naming ``field``."""
    if name not in _zone_names():
        raise UserError(f"{field}: unknown IANA time zone {name!r}", [field])
    return name


def normalize_domain(domain: str) -> str:
    d = domain.strip().lower()
    d = re.sub(r"^https?://", "", d).split("/")[0]
    if d.startswith("www."):
        d = d[4:]
    if not _DOMAIN.match(d):
        raise UserError(f"domain: {domain!r} is not a host name", ["domain"])
    return d


async def get_visible(rt: Runtime, who: Principal, website_id: str) -> WebsiteRow | None:
    site = await rt.websites.get(website_id)
    return site if site is not None and who.can_read(site) else None


async def list_visible(rt: Runtime, who: Principal) -> list[WebsiteRow]:
    if who.all_websites:
        return await website_sql.list_all(rt.pools.read)
    rows = await website_sql.list_all(rt.pools.read, sorted(who.websites or ()))
    public = [r for r in await website_sql.list_all(rt.pools.read) if r.is_public]
    merged = {r.id: r for r in [*rows, *public]}
    return [merged[k] for k in sorted(merged)]


def _owner(value: Any) -> str | None:
    """The owning account's id (the Seentics user id of the privacy routes), ≤ 255 chars."""
    if value is None:
        return None
    owner = str(value).strip()
    if not 1 <= len(owner) <= 255 or "\x00" in owner or "/" in owner:
        raise UserError("ownerId: 1–255 characters, no '/'", ["ownerId"])
    return owner


async def create(rt: Runtime, who: Principal, values: dict[str, Any]) -> WebsiteRow:
    who.require_global("admin")
    website_id = str(values.get("id") or "").strip()
    if not valid_website_id(website_id):
        raise UserError("id: 1–64 characters of A-Z a-z 0-9 _ . : -", ["id"])
    row = {
        "id": website_id,
        "domain": normalize_domain(str(values.get("domain") or "")),
        "name": values.get("name"),
        "timezone": check_timezone(values.get("timezone") or "UTC"),
        "is_public": bool(values.get("is_public", False)),
        "owner_id": _owner(values.get("owner_id")),
    }
    try:
        site = await website_sql.insert(rt.pools.write, **row)
    except ConflictError:
        raise UserError(f"id: website {website_id!r} already exists", ["id"], "TAKEN") from None
    await _changed(rt, website_id, site)
    return site


async def update(
    rt: Runtime, who: Principal, website_id: str, changes: dict[str, Any]
) -> WebsiteRow:
    who.require("admin", await rt.websites.get(website_id), website_id)
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None and key != "name":
            continue
        if key == "domain":
            value = normalize_domain(value)
        elif key == "timezone":
            value = check_timezone(value)
        elif key == "owner_id":
            value = _owner(value)
        clean[key] = value
    site = await website_sql.update(rt.pools.write, website_id, clean)
    await _changed(rt, website_id, site)
    if site is None:
        raise NotFound(f"website {website_id!r} not found", ["id"])
    return site


async def delete(rt: Runtime, who: Principal, website_id: str) -> None:
    who.require("admin", await rt.websites.get(website_id), website_id)
    async with rt.pools.write.acquire() as conn:
        gone = await website_sql.delete(conn, website_id, who.subject)
    await _changed(rt, website_id, None)
    if rt.cache is not None:
        await rt.cache.invalidate(website_id)
    if not gone:
        raise NotFound(f"website {website_id!r} not found", ["id"])


async def _changed(rt: Runtime, website_id: str, row: WebsiteRow | None) -> None:
    """After a website was created or changed (``row``: as stored now) or deleted
    (None): drop this process's row, tell the other processes to drop theirs (else they
    would serve it for up to ``WEBSITE_TTL``: its name, who may read it) and, in queue
    mode, store the Redis copy (or a tombstone: ``resolvers.ingest_fallback``)."""
    rt.websites.forget(website_id)
    if rt.pubsub is not None:
        await rt.pubsub.publish_changed([website_id])
    if rt.queued and valid_website_id(website_id):
        await fallback_of(rt).save_copy(website_id, row, changed=True)
