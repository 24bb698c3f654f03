"""Fuzzing with schemathesis (bounded, deterministic): the REST routes from
``/openapi.json`` and the GraphQL schema, against a real server. No generated request
may get a 5xx."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.server import ServerProcess

pytestmark = pytest.mark.slow
KEY = "fuzz-global-key"


@pytest.fixture(scope="module")
def server(database_url: str, app: object) -> Iterator[ServerProcess]:
    srv = ServerProcess({"DATABASE_URL": database_url, "ENVIRONMENT": "test",
                         "GLOBAL_API_KEY": KEY, "RATE_LIMIT_IP_PER_MINUTE": "0",
                         "LOG_LEVEL": "error"})  # fmt: skip
    srv.start()
    yield srv
    srv.kill()


def _st(*args: str) -> subprocess.CompletedProcess[str]:
    st = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "st"
    cmd = [str(st) if st.exists() else "st", "run", *args, "-c", "not_a_server_error",
           "-H", f"X-API-Key: {KEY}", "--generation-deterministic", "--phases", "fuzzing"]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:  # schemathesis keeps a cache in its cwd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=scratch)


def test_rest_routes_never_answer_5xx(server: ServerProcess) -> None:
    out = _st(f"{server.url}/openapi.json", "-n", "4")
    assert out.returncode == 0, out.stdout[-4000:]
    assert " passed" in out.stdout


def test_graphql_never_answers_5xx(server: ServerProcess) -> None:
    out = _st(f"{server.url}/graphql", "-n", "8")
    assert out.returncode == 0, out.stdout[-4000:]
    assert " passed" in out.stdout
