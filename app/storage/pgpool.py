"""A lean pool of asyncpg connections.

asyncpg's own pool guards every acquire and release with timeouts, shielded tasks and a reset
query; at thousands of requests a second that bookkeeping costs as much as a primary-key read.
Here acquiring an idle connection is a list pop and releasing it a push. The one rule a
borrower must keep: give a connection back outside any transaction, or terminate it.
"""

import asyncio
from collections import deque
from typing import Any

import asyncpg

from app.metrics import PoolUsage

CONNECT_TIMEOUT = 5.0  # seconds: a database that does not answer is out of reach, not slow


class ConnectionPool:
    """Up to `max_size` connections, `min_size` opened up front, lent one borrower at a time."""

    def __init__(
        self, dsn: str, min_size: int, max_size: int, server_settings: dict[str, str]
    ) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._server_settings = server_settings
        self._idle: list[Any] = []
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._size = 0  # connections open or being opened
        self._closed = False

    async def open(self) -> None:
        """Open `min_size` connections; if the server is unreachable, connect lazily later."""
        try:
            for _ in range(self._min_size - self._size):
                self._size += 1
                self._idle.append(await self._connect())
        except (OSError, asyncpg.PostgresError):
            return

    async def _connect(self) -> Any:
        try:
            return await asyncpg.connect(
                self._dsn, server_settings=self._server_settings, timeout=CONNECT_TIMEOUT
            )
        except BaseException:
            self._size -= 1  # the caller counted it; a waiter may now try in its place
            self._wake_one(None)
            raise

    async def acquire(self) -> Any:
        """An open connection, waiting for one to be released when all are lent."""
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the connection pool is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._size -= 1
            if self._size < self._max_size:
                self._size += 1
                return await self._connect()
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self.release(waiter.result())
                raise
            if conn is not None:
                return conn
            # None: a connection closed, so there is room to open another; go round again

    def release(self, conn: Any) -> None:
        """Take a connection back: to the next waiter, else to the idle list."""
        if conn.is_closed() or self._closed:
            if not conn.is_closed():
                conn.terminate()
            self._size -= 1
            self._wake_one(None)
            return
        if not self._wake_one(conn):
            self._idle.append(conn)

    def drop_idle(self) -> None:
        """Terminate the idle connections: one was found broken, so the database went away
        and they are likely broken too (better found now than by the next borrowers)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()
            self._size -= 1
            self._wake_one(None)

    def usage(self, name: str) -> PoolUsage:
        """How many connections are lent, awaited and open now (for /metrics)."""
        waiting = sum(not waiter.done() for waiter in self._waiters)
        return PoolUsage(name, self._size - len(self._idle), waiting, self._size)

    def _wake_one(self, conn: Any) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def close(self) -> None:
        """Close idle connections; lent ones are terminated as they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._size -= 1
            await conn.close()
        while self._wake_one(None):
            pass
