"""Callers from HTTP headers: JWT bearer tokens (HS256 with ``JWT_SECRET``), stored API
keys (``X-API-Key`` or ``Bearer ffk_…``, see ``resolvers.api_keys``) and the Seentics
compatibility key (``X-API-Key`` equal to ``GLOBAL_API_KEY``).

Claims: ``sub``, ``websites`` (list of ids or ``"*"``), ``scope`` (read|write|admin),
``exp``, ``iat``. Clock skew of 30 s is tolerated. A bad or expired token is an error
(401), not a silent downgrade to anonymous.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
from collections.abc import Mapping
from typing import Any

import jwt
from starlette.requests import HTTPConnection

from graph.settings import Settings
from resolvers import api_keys
from resolvers.access import Principal
from resolvers.runtime import Runtime

LEEWAY_SECONDS = 30
_TTL = re.compile(r"^(\d+)\s*([smhdw]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SCOPE_KEY = "footfall.principal"


class AuthError(Exception):
    """The credentials are present but invalid (answer 401)."""


def parse_ttl(text: str) -> int:
    """``30d``, ``12h``, ``90m`` or seconds → seconds."""
    m = _TTL.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"--ttl: expected e.g. 30d, 12h, 90m; got {text!r}")
    return int(m.group(1)) * _UNIT[m.group(2)]


def jwt_key(settings: Settings) -> str:
    """The signing key; in development a fixed local key when ``JWT_SECRET`` is unset."""
    return settings.jwt_secret.reveal() or "footfall-development-only-secret-key-do-not-use"


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_name(host: str) -> str:
    """``Host`` without its port (``[::1]:3002`` → ``::1``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def local_admin_token(settings: Settings, conn: HTTPConnection) -> str | None:
    """A 24-hour admin token for the pages' prefilled credentials (GraphiQL, the
    dashboard): in development only, and only to a browser on this machine opening the
    page itself — a request from a loopback address that no proxy forwarded, for host
    ``localhost``/``127.0.0.1``/``[::1]``, not sent by another site's script (``Origin``,
    ``Sec-Fetch-Site``). Else a development server on all interfaces (``HOST=0.0.0.0``)
    would hand admin rights to its network, and any site the developer visits could
    read them through CORS or DNS rebinding."""
    if settings.environment != "development" or conn.client is None:
        return None
    if "x-forwarded-for" in conn.headers or "forwarded" in conn.headers:
        return None
    # a page of another site reading ours (CORS allows any origin): fetch() sends Origin
    # and Sec-Fetch-Site; a DNS-rebinding page arrives under its own host name
    if "origin" in conn.headers or conn.headers.get("sec-fetch-site", "none") not in (
        "none", "same-origin",
    ):
        return None
    if _host_name(conn.headers.get("host", "")) not in _LOCAL_HOSTS:
        return None
    try:
        loopback = ipaddress.ip_address(conn.client.host).is_loopback
    except ValueError:
        return None
    if not loopback:
        return None
    return create_token(settings, subject="local-admin", websites="*", scope="admin",
                        ttl_seconds=86400)  # fmt: skip


def create_token(
    settings: Settings, *, subject: str, websites: list[str] | str, scope: str, ttl_seconds: int
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject, "websites": websites, "scope": scope, "iat": now, "exp": now + ttl_seconds,
    }  # fmt: skip
    return jwt.encode(claims, jwt_key(settings), algorithm="HS256")


def decode_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            jwt_key(settings),
            algorithms=["HS256"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "scope", "websites"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    scope = claims.get("scope")
    if scope not in ("read", "write", "admin"):
        raise AuthError("invalid token: scope must be read, write or admin")
    sites = claims.get("websites")
    if sites == "*":
        websites = None
    elif isinstance(sites, list) and all(isinstance(s, str) for s in sites):
        websites = frozenset(sites)
    else:
        raise AuthError("invalid token: websites must be a list of ids or '*'")
    return Principal(str(claims["sub"]), scope, websites)


async def principal_from_headers(
    settings: Settings, headers: Mapping[str, str], rt: Runtime | None = None
) -> Principal:
    """The caller of a request (anonymous without credentials); ``AuthError`` if invalid.

    ``X-API-Key``: ``GLOBAL_API_KEY`` (superuser) or a stored API key (``ffk_…``).
    ``Authorization: Bearer``: a JWT, or a stored API key. API keys need ``rt`` (the
    database); a revoked key stops working within ``resolvers.api_keys.CACHE_TTL``.
    Raises ``db.errors.DatabaseUnavailable`` when a key cannot be looked up.
    """
    api_key = headers.get("x-api-key")
    if api_key:
        expected = settings.global_api_key.reveal()
        if expected and hmac.compare_digest(api_key.encode(), expected.encode()):
            return Principal.superuser()
        found = await api_keys.authenticate(rt, api_key) if rt is not None else None
        if found is None:
            raise AuthError("Invalid API key")
        return found
    auth = headers.get("authorization", "")
    if auth:
        kind, _, token = auth.partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            raise AuthError("Authorization must be 'Bearer <token>'")
        if token.startswith(api_keys.KEY_PREFIX):
            found = await api_keys.authenticate(rt, token) if rt is not None else None
            if found is None:
                raise AuthError("Invalid API key")
            return found
        return decode_token(settings, token)
    return Principal.anonymous()


async def request_principal(request: HTTPConnection) -> Principal:
    """The caller of a Starlette request or websocket, resolved once per request."""
    cached = request.scope.get(_SCOPE_KEY)
    if isinstance(cached, Principal):
        return cached
    headers = {k.lower(): v for k, v in request.headers.items()}
    found = await principal_from_headers(
        request.app.state.settings, headers, getattr(request.app.state, "runtime", None)
    )
    request.scope[_SCOPE_KEY] = found
    return found
