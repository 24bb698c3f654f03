"""A TCP relay in the test process in front of a real server (PostgreSQL, Redis), to cut it off.

``close()`` stops listening (new connections are refused) and aborts every relayed
connection, as a database restart does to its clients; ``open()`` listens again on the
same port. Nothing is answered by the relay itself: every byte is the database's.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class Relay:
    """Relays ``127.0.0.1:<port>`` to ``target`` (host, port); port chosen on first open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        #: drop every byte while True, connections left open: a network partition
        self.blackhole = False

    def dsn(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by the relay's."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rpartition("@")[0]
        netloc = f"{netloc}@127.0.0.1:{self.port}" if netloc else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def open(self) -> None:
        """Listen (again, on the same port after ``close``); no-op while open."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Refuse new connections and cut the open ones; no-op while closed."""
        if self._server is None:
            return
        self._server.close()
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self._transports.update(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for transport in pair:
                transport.abort()
                self._transports.discard(transport)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if not self.blackhole:
                    sink.write(data)
                    await sink.drain()
        sink.transport.abort()
