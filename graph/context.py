"""Per-request GraphQL context: the caller, the runtime, and lazily built loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket

from graph.settings import Settings
from resolvers.access import Principal
from resolvers.runtime import Runtime


@dataclass
class Context:
    """``loaders`` holds per-operation DataLoaders, created on first use inside the loop."""

    request: Request | WebSocket
    runtime: Runtime
    settings: Settings
    principal: Principal
    loaders: dict[str, Any] = field(default_factory=dict)
    response: Any = None
    #: graphql-transport-ws ``connection_init`` payload (set by Strawberry; None over HTTP)
    connection_params: dict[str, Any] | None = None

    def loader(self, name: str, factory: Any) -> Any:
        """The loader called ``name`` for this operation (built by ``factory()`` once)."""
        found = self.loaders.get(name)
        if found is None:
            found = self.loaders[name] = factory()
        return found
