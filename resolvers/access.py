"""Who is calling and what they may touch. Another tenant's website is reported as
not found, never as forbidden, so its existence does not leak."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from db.queries.websites import WebsiteRow
from resolvers.errors import Forbidden, NotFound

Scope = Literal["read", "write", "admin"]
_RANK = {"read": 1, "write": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    """A caller. ``websites`` None = every website; ``scope`` None = anonymous."""

    subject: str
    scope: Scope | None
    websites: frozenset[str] | None = frozenset()

    @classmethod
    def anonymous(cls) -> Principal:
        return cls("anonymous", None, frozenset())

    @classmethod
    def superuser(cls, subject: str = "global-api-key") -> Principal:
        return cls(subject, "admin", None)

    @property
    def all_websites(self) -> bool:
        return self.scope is not None and self.websites is None

    def owns(self, website_id: str) -> bool:
        """The token names this website (or all websites)."""
        if self.scope is None:
            return False
        return self.websites is None or website_id in self.websites

    def can_read(self, site: WebsiteRow) -> bool:
        return site.is_public or self.owns(site.id)

    def has(self, scope: Scope) -> bool:
        return self.scope is not None and _RANK[self.scope] >= _RANK[scope]

    def require_read(self, site: WebsiteRow | None, website_id: str) -> WebsiteRow:
        if site is None or not self.can_read(site):
            raise NotFound(f"website {website_id!r} not found", ["websiteId"])
        return site

    def require(self, scope: Scope, site: WebsiteRow | None, website_id: str) -> WebsiteRow:
        """The website, if the caller may act on it with ``scope``; else NotFound/Forbidden."""
        if site is None or not (self.owns(site.id) or site.is_public):
            raise NotFound(f"website {website_id!r} not found", ["websiteId"])
        if not self.owns(site.id) or not self.has(scope):
            raise Forbidden(f"this operation needs {scope} scope on {website_id!r}", ["websiteId"])
        return site

    def require_global(self, scope: Scope) -> None:
        if not self.all_websites or not self.has(scope):
            raise Forbidden(f"this operation needs a {scope} token for all websites ('*')")
