"""Prometheus series (``prometheus-client``), defined once and shared by every layer.

With several workers the series live in prometheus-client's multiprocess files
(``graph/metrics.py``): counters and histograms add up over workers; each gauge says how
its workers' values combine (``multiprocess_mode``; ``live*`` ignores stopped workers).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_INGESTED = Counter("footfall_events_ingested_total", "Events stored", ["door"])
EVENTS_REJECTED = Counter("footfall_events_rejected_total", "Events refused, by reason", ["reason"])
BOTS_DROPPED = Counter("footfall_bot_events_dropped_total", "Events from bot user agents dropped")
INGEST_BATCH_ROWS = Histogram(
    "footfall_ingest_batch_rows", "Rows per committed group",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)  # fmt: skip
INGEST_COMMIT_SECONDS = Histogram("footfall_ingest_commit_seconds", "Group commit latency (s)")
INGEST_QUEUE_DEPTH = Gauge(
    "footfall_ingest_queue_rows", "Rows waiting for the writer", multiprocess_mode="livesum"
)
GRAPHQL_SECONDS = Histogram(
    "footfall_graphql_operation_seconds", "GraphQL operation latency (s)", ["operation"]
)
STATS_DAY_READS = Counter(
    "footfall_stats_day_reads_total",
    "Stats statements answered through the day rollup, by whether stored days were used",
    ["source"],
)
CACHE_REQUESTS = Counter("footfall_cache_requests_total", "Stats cache look-ups", ["result"])
RESPONSE_CACHE_HITS = Counter(
    "footfall_graphql_response_cache_hits_total", "GraphQL answers served whole from the cache"
)
DB_POOL_SIZE = Gauge(
    "footfall_db_pool_connections", "Database pool connections (all workers)", ["state"],
    multiprocess_mode="livesum",
)  # fmt: skip
FUNNEL_ROLLUP_STEPS = Counter(
    "footfall_funnel_rollup_steps_total",
    "Funnel attempt rollup steps: sealed (a chunk stored), conflict (writers touched the chunk"
    " being sealed; redone later), reset (definition changed or start moved)",
    ["result"],
)
FUNNEL_ROLLUP_LAG = Gauge(
    "footfall_funnel_rollup_lag_seconds",
    "After the last complete pass: the largest time between a funnel's sealed end and where"
    " it should be (10 min before now); 0 when every rollup is current",
    multiprocess_mode="livemax",  # the most behind of the live workers' passes
)
