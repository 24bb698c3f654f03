"""Errors raised by the storage layer, translated from asyncpg by class (SQLSTATE).

DatabaseError
├── DatabaseUnavailable   connection refused/lost, pool exhausted, server shutting down
├── QueryTimeout          statement_timeout or query cancelled
└── ConflictError         a unique constraint was violated
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


class DatabaseError(Exception):
    """Base of every storage-layer error."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached right now; callers answer 503."""


class QueryTimeout(DatabaseError):
    """A statement ran past ``statement_timeout``."""


class ConflictError(DatabaseError):
    """A unique constraint rejected the write."""


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def translate(exc: BaseException) -> BaseException:
    """Map an asyncpg/OS exception to our hierarchy (by class, never by message)."""
    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return QueryTimeout(str(exc))
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return ConflictError(str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(f"database unavailable: {type(exc).__name__}")
    return exc


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Re-raise storage errors as ``DatabaseError`` subclasses."""
    try:
        yield
    except DatabaseError:
        raise
    except Exception as exc:
        mapped = translate(exc)
        if mapped is exc:
            raise
        raise mapped from exc
