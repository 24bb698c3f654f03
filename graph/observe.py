"""GraphQL operation latency by operation name (Prometheus histogram)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from resolvers import counters


class OperationTimer(SchemaExtension):
    """Observes ``footfall_graphql_operation_seconds{operation=<name or "anonymous">}``."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        name = self.execution_context.operation_name or "anonymous"
        counters.GRAPHQL_SECONDS.labels(name[:64]).observe(time.perf_counter() - started)
