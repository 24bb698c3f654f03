"""Strawberry types, one module per domain (website, tracking, stats, funnel, …)."""
