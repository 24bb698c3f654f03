"""Enrichment: user agent → browser/os/device (``ua-parser``), client IP → country/city
(a MaxMind-format database via ``maxminddb`` when ``GEOIP_DB`` is set, else CDN
headers), referrer → referrer host. Never makes an outbound network call.
Client-sent browser/os/device/country/city always win over what is derived here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ua_parser

_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|bingpreview|mediapartners|"
    r"pingdom|uptimerobot|lighthouse|scrapy",
    re.IGNORECASE,
)
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
#: ua-parser's mobile and in-app variants of a browser, reported as the browser itself
#: (the device is its own dimension; the Seentics service reported these names too)
_BROWSER_NAMES = {
    "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox", "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}  # fmt: skip
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry", re.IGNORECASE)

CDN_COUNTRY_HEADERS = ("cf-ipcountry", "cloudfront-viewer-country", "x-vercel-ip-country",
                       "x-country-code", "x-appengine-country", "fastly-geo-country")  # fmt: skip
CDN_CITY_HEADERS = ("cf-ipcity", "cloudfront-viewer-city", "x-vercel-ip-city", "x-appengine-city")


@dataclass(frozen=True)
class Client:
    """What a user agent string says: browser, os, device, and whether it is a bot."""

    browser: str | None
    os: str | None
    device: str | None
    is_bot: bool


@lru_cache(maxsize=8192)
def parse_user_agent(ua: str | None) -> Client:
    """Parse with ua-parser; device is desktop|mobile|tablet; bots are flagged; a
    browser's mobile variants ("Mobile Safari", "Chrome Mobile iOS") are the browser."""
    if not ua:
        return Client(None, None, None, False)
    result = ua_parser.parse(ua)
    device_family = result.device.family if result.device else ""
    if device_family == "Spider" or _BOT.search(ua):
        return Client(None, None, None, True)
    browser = result.user_agent.family if result.user_agent else None
    browser = _BROWSER_NAMES.get(browser or "", browser)
    os_name = result.os.family if result.os else None
    os_name = _OS_NAMES.get(os_name or "", os_name)
    brand = (result.device.brand or "") if result.device else ""
    if _TABLET.search(ua) or "Tablet" in brand or (os_name == "Android" and "Mobile" not in ua):
        device = "tablet"
    elif _MOBILE.search(ua) or os_name == "iOS":
        device = "mobile"
    else:
        device = "desktop"
    return Client(
        None if browser == "Other" else browser,
        None if os_name == "Other" else os_name,
        device,
        False,
    )


def _strip_www(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def referrer_host(referrer: str | None, own_domain: str) -> str | None:
    """Lower-case host without ``www.``; None for no referrer or the website's own domain."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer if "//" in referrer else "//" + referrer).hostname
    except ValueError:
        return None
    if not host or "." not in host and host != "localhost":
        return None
    host = _strip_www(host)
    return None if host == _strip_www(own_domain) else host


class GeoLocator:
    """Country and city for an IP from a MaxMind-format database (or none configured)."""

    def __init__(self, path: Path | None) -> None:
        self._reader: Any = None
        if path is not None:
            import maxminddb

            self._reader = maxminddb.open_database(str(path))

    @property
    def configured(self) -> bool:
        return self._reader is not None

    def lookup(self, ip: str | None) -> tuple[str | None, str | None]:
        if self._reader is None or not ip:
            return None, None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None, None
        if addr.is_loopback or addr.is_link_local:
            return None, None
        record = self._reader.get(str(addr))
        if not isinstance(record, dict):
            return None, None
        country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
        city = ((record.get("city") or {}).get("names") or {}).get("en")
        return country, city

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def cdn_location(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Country/city from CDN headers such as ``CF-IPCountry`` (``XX``/``T1`` = unknown)."""
    country = next((headers[h] for h in CDN_COUNTRY_HEADERS if headers.get(h)), None)
    if country is not None:
        country = country.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", country) or country in ("XX", "T1", "ZZ"):
            country = None
    city = next((headers[h] for h in CDN_CITY_HEADERS if headers.get(h)), None)
    return country, (city.strip()[:100] or None) if city else None


def client_ip(
    peer: str | None,
    forwarded_for: str | None,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> str | None:
    """The client's IP: the peer, or — only when the peer is a trusted proxy — the
    right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy."""

    def is_trusted(ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in trusted)

    if not peer or not forwarded_for or not trusted or not is_trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer
