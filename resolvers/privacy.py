"""Privacy operations (GDPR): erase or export one visitor, and the Seentics account-wide
export / delete / anonymise, retention report and clean-up.

Access. One visitor: delete needs write scope on the website, export read scope (a
public website's visitors are not exported anonymously). Account-wide (``user_id`` =
``websites.owner_id``): admin scope; the operation covers the account's websites that
the credential covers; none → NotFound (another tenant's account looks absent; a
credential for all websites gets an empty result instead). Clean-up deletes across all
websites, so it needs an admin credential for all websites.

Anonymisation (irreversible): in events and sessions ``visitor_id`` and ``session_id``
become ``anon_`` + 16 hex digits of SHA-256(k ‖ id) with a random key k used for that
run only and never stored (the old service used 8 hex digits of MD5, which collide
within ~77,000 sessions — a primary-key clash — so we keep 64 bits); ids already
``anon_…`` are kept, so re-running changes nothing further. ``city`` is cleared and the
query string and fragment are cut from ``referrer``; country, page path, UTM tags,
browser/os/device and event properties are kept (properties are the site owner's own
payload). Distinct counts (visitors, visits) are unchanged.

IP addresses are never stored (only used in memory for the daily-salted visitor hash,
geo look-up and rate limits), so there is nothing to anonymise there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from db.queries import privacy as privacy_sql
from db.queries.retention import delete_older_than
from resolvers.access import Principal
from resolvers.errors import Forbidden, NotFound, UserError
from resolvers.runtime import Runtime
from resolvers.session_state import forget_visitor, forget_websites

MAX_ACCOUNT_EXPORT_EVENTS = 10_000
MAX_ID = 255


def _check_id(value: str, field: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_ID or "\x00" in value:
        raise UserError(f"{field}: 1–{MAX_ID} characters", [field])
    return value


async def _invalidate(rt: Runtime, website_ids: list[str]) -> None:
    if rt.cache is not None:
        for site in website_ids:
            await rt.cache.invalidate(site)


async def delete_visitor(
    rt: Runtime, who: Principal, website_id: str, visitor_id: str
) -> dict[str, int]:
    """Erase one visitor's events and sessions (write scope); counts deleted."""
    site = who.require("write", await rt.websites.get(website_id), website_id)
    visitor = _check_id(visitor_id, "visitorId")
    counts = await privacy_sql.delete_visitor(rt.pools.write, site.id, visitor, who.subject)
    await forget_visitor(rt, site.id, visitor)
    await _invalidate(rt, [site.id])
    return counts


async def anonymize_visitor(
    rt: Runtime, who: Principal, website_id: str, visitor_id: str
) -> dict[str, int]:
    """Anonymise one visitor's events and sessions as account anonymisation does (write
    scope): their visitor and session ids become ``anon_`` ids, city and referrer query
    go; counts changed."""
    site = who.require("write", await rt.websites.get(website_id), website_id)
    visitor = _check_id(visitor_id, "visitorId")
    counts = await privacy_sql.anonymize(rt.pools.write, [site.id], who.subject, visitor)
    await forget_visitor(rt, site.id, visitor)
    await _invalidate(rt, [site.id])
    return counts


async def export_visitor(
    rt: Runtime, who: Principal, website_id: str, visitor_id: str
) -> AsyncIterator[dict[str, Any]]:
    """Check access (read scope), then return the visitor's records (events, sessions)."""
    site = who.require("read", await rt.websites.get(website_id), website_id)
    visitor = _check_id(visitor_id, "visitorId")
    return privacy_sql.visitor_records(rt.pools.read, site.id, visitor)


async def account_websites(rt: Runtime, who: Principal, user_id: str) -> list[str]:
    """The account's websites this admin credential covers (see module docstring)."""
    if not who.has("admin"):
        raise Forbidden("account-wide privacy operations need an admin credential")
    owner = _check_id(user_id, "user_id")
    sites = [s for s in await privacy_sql.owned_websites(rt.pools.write, owner) if who.owns(s)]
    if not sites and not who.all_websites:
        raise NotFound(f"user {owner!r} not found", ["user_id"])
    return sites


async def export_account(rt: Runtime, who: Principal, user_id: str) -> dict[str, Any]:
    """``{website_ids, events (newest 10,000), events_count, daily, funnels}``."""
    sites = await account_websites(rt, who, user_id)
    if not sites:
        return {"website_ids": [], "events": [], "events_count": 0, "daily": [], "funnels": []}
    data = await privacy_sql.account_export(rt.pools.read, sites, MAX_ACCOUNT_EXPORT_EVENTS)
    return {"website_ids": sites, **data}


async def delete_account(rt: Runtime, who: Principal, user_id: str) -> dict[str, int]:
    """Delete events, sessions and funnels of the account's websites (they stay)."""
    sites = await account_websites(rt, who, user_id)
    counts = await privacy_sql.delete_website_data(rt.pools.write, sites, who.subject,
                                                   "delete_account_data")  # fmt: skip
    await forget_websites(rt, sites)
    await _invalidate(rt, sites)
    return counts


async def delete_website_data(rt: Runtime, who: Principal, website_id: str) -> dict[str, int]:
    """Delete one website's events, sessions and funnels (admin scope on it)."""
    site = who.require("admin", await rt.websites.get(website_id), website_id)
    counts = await privacy_sql.delete_website_data(rt.pools.write, [site.id], who.subject,
                                                   "delete_website_data")  # fmt: skip
    await forget_websites(rt, [site.id])
    await _invalidate(rt, [site.id])
    return counts


async def anonymize_account(rt: Runtime, who: Principal, user_id: str) -> dict[str, int]:
    """Anonymise the account's websites (see module docstring); rows changed."""
    sites = await account_websites(rt, who, user_id)
    counts = await privacy_sql.anonymize(rt.pools.write, sites, who.subject)
    await forget_websites(rt, sites)
    await _invalidate(rt, sites)
    return counts


def retention_policies(rt: Runtime) -> list[dict[str, Any]]:
    """The policy in force, in the old ``retention-policies`` shape."""
    days = rt.retention_days
    return [
        {"data_type": "Analytics Events", "retention_period": days, "retention_unit": "days",
         "auto_delete": True,
         "description": "Raw analytics events (page views, custom events), deleted "
                        f"{days} days after they happened (RETENTION_DAYS)"},
        {"data_type": "Session Data", "retention_period": days, "retention_unit": "days",
         "auto_delete": True,
         "description": "Visit summaries, deleted when their last event is older than "
                        f"{days} days"},
        {"data_type": "IP Addresses", "retention_period": 0, "retention_unit": "days",
         "auto_delete": True,
         "description": "Never stored: used in memory only (daily-salted visitor hash, "
                        "geolocation, rate limits)"},
    ]  # fmt: skip


async def run_cleanup(rt: Runtime, who: Principal) -> int:
    """Apply the retention policy now (admin for all websites); events deleted."""
    who.require_global("admin")
    return await delete_older_than(rt.pools.write, rt.retention_days)
