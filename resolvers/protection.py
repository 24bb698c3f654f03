"""Protection of the public tracking doors: Origin/Referer check and rate limits.

Applied by ``resolvers.tracking.track`` to every ``public`` request (REST event and
batch, GraphQL ``trackEvents``, ``/funnels/track``); ``import`` mode (write token) is
exempt.

Origin rule. The host of ``Origin`` (or, when Origin is absent or ``null``, of
``Referer``) must equal the website's domain or be a subdomain of it
(``shop.example.com`` and ``www.example.com`` for ``example.com``); ports are ignored.
No Origin and no Referer is allowed: server-side senders and ``curl`` send neither, and a
browser cannot be made to omit both from a cross-site ``fetch``. Loopback pages
(``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``) are accepted for websites whose
own domain is a loopback name, and for every website outside production
(``ENVIRONMENT`` development/test), so trackers can be tried on a dev server; in
production a loopback page tracking a real domain is refused. Mismatch → 403.

Rate limits (``resolvers.limits``, sliding minute): events per client IP
(``RATE_LIMIT_IP_PER_MINUTE``, default 12,000 = 200/s, far above any browser) and per
website (``RATE_LIMIT_WEBSITE_PER_MINUTE``, default 600,000 = 10,000/s, far above the
average rate of a site with ten million page views a day); 0 disables a limit (the ingest benchmark does);
a batch counts its events.
Over either → 429 with ``Retry-After``. The client IP is the peer, or the
``X-Forwarded-For`` client when the peer is in ``TRUSTED_PROXIES``. The per-IP limit is
not applied to loopback peers (a reverse proxy or load test on the same host — set
``TRUSTED_PROXIES`` so real clients are seen) nor to trusted senders (``GLOBAL_API_KEY``
or a write credential for the website, e.g. the Seentics gateway, which forwards every
visitor from its own IP); the per-website limit always applies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from db.queries.websites import WebsiteRow
from resolvers.errors import OriginRejected, RateLimited
from resolvers.limits import RateLimiter
from resolvers.runtime import Runtime

EXTRAS_KEY = "protection"


@dataclass
class Protection:
    """The limiter and the limits in force (events per minute; 0 = unlimited)."""

    limiter: RateLimiter = field(default_factory=RateLimiter)
    ip_per_minute: int = 12_000
    website_per_minute: int = 600_000
    allow_loopback_everywhere: bool = True


def protection_of(rt: Runtime) -> Protection:
    """The runtime's protection (set at start-up; in-process defaults otherwise)."""
    found = rt.extras.get(EXTRAS_KEY)
    if not isinstance(found, Protection):
        found = rt.extras[EXTRAS_KEY] = Protection()
    return found


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def origin_host(headers: Mapping[str, str]) -> tuple[str, str | None] | None:
    """``(header name, host)`` of the page that sent the request; None when the request
    names no page (no Origin or ``null``, and no Referer). Host None = unparsable."""
    origin = (headers.get("origin") or "").strip()
    if origin and origin.lower() != "null":
        return "Origin", _host(origin)
    referer = (headers.get("referer") or "").strip()
    if referer:
        return "Referer", _host(referer)
    return None


def check_origin(site: WebsiteRow, headers: Mapping[str, str], allow_loopback: bool) -> None:
    """Raise ``OriginRejected`` unless the sending page belongs to ``site`` (see above)."""
    found = origin_host(headers)
    if found is None:
        return
    name, host = found
    domain = site.domain.lower().split(":")[0]
    if host is not None:
        if host == domain or host.endswith("." + domain):
            return
        if _is_loopback(host) and (allow_loopback or _is_loopback(domain)):
            return
    raise OriginRejected(
        f"{name} {host or 'header'!s} does not match the domain of website {site.id!r}"
    )


async def protect(rt: Runtime, site: WebsiteRow, headers: Mapping[str, str],
                  ip: str | None, events: int) -> None:  # fmt: skip
    """Origin check, then count ``events`` against the website's limit and, when ``ip``
    is given and not loopback, the IP's."""
    p = protection_of(rt)
    check_origin(site, headers, p.allow_loopback_everywhere)
    site_key, ip_key = f"site:{site.id}", f"ip:{ip}"
    limits = [(site_key, p.website_per_minute)]
    if ip and not _is_loopback(ip):
        limits.append((ip_key, p.ip_per_minute))
    decision = await p.limiter.hit(limits, events)
    if not decision.allowed:
        raise RateLimited(
            f"rate limit exceeded for {_limited(decision.over, site_key, ip_key, site.id, ip)}; "
            f"retry in {decision.retry_after} s",
            decision.retry_after,
        )


def _limited(over: tuple[str, ...], site_key: str, ip_key: str, site: str, ip: str | None) -> str:
    """What refused: ``website 'x'`` (events per website per minute), ``client IP 'a'``
    (events per client IP per minute) or both."""
    named = []
    if site_key in over or not over:
        named.append(f"website {site!r} (events per website per minute)")
    if ip_key in over:
        named.append(f"client IP {ip!r} (events per client IP per minute)")
    return " and ".join(named)
