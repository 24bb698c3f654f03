"""Footfall's HTTP surface: settings, app factory, GraphQL schema, REST routes, CLI."""

__version__ = "0.1.0"
