"""Shared benchmark plumbing: a scratch database, a real server process, RSS, tables."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def fresh_database(name: str) -> str:
    """Drop and create database ``name`` on the admin server; return its DSN."""
    conn = await asyncpg.connect(ADMIN_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``footfall serve`` as a real process (uvicorn workers = ``WORKER_COUNT``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "ENVIRONMENT": "test", "LOG_LEVEL": "warning", **env,
                    "PORT": str(self.port)}  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen([sys.executable, "-m", "graph.cli", "serve"], env=self.env,
                                     cwd=ROOT, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def worker_rss_mb(self) -> list[float]:
        """RSS of each process serving requests (the workers, or the single process)."""
        assert self.proc is not None
        parent = psutil.Process(self.proc.pid)
        kids = [p for p in parent.children(recursive=True) if "python" in p.name().lower()]
        procs = kids or [parent]
        out = []
        for p in procs:
            try:
                out.append(p.memory_info().rss / 1e6)
            except psutil.Error:
                pass
        return out


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (what the README shows)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join([line, sep, *body])


class RawHTTP:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams, so the load generator
    spends as little of the shared CPU as possible (httpx costs ~1 ms per request)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """POST and return the status; reconnects once if the server closed the idle
        keep-alive connection."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
            self.writer.write(head + body)
            status_line = await self.reader.readline()
            if not status_line:
                self.writer.close()
                self.writer = None
                if attempt == 1:
                    continue
                raise ConnectionError("the server closed the connection")
            length = 0
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await self.reader.readexactly(length)
            return int(status_line.split()[1])
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
