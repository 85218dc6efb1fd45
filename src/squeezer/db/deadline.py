"""Connections that give up on a database that does not answer.

A PostgreSQL that is stopped (``SIGSTOP``, a VM paused, a network partition
that drops packets) accepts nothing and refuses nothing: without a deadline,
every request waits for it forever (``POST /v1/jobs`` answered nothing for 60
s).  The server's own ``statement_timeout`` cannot help a server that is not
running, so the API's connections carry both:

* ``connect_timeout`` (libpq's) bounds opening a connection;
* ``statement_timeout`` is set on the server for queries that run too long,
  and :class:`DeadlineConnection` bounds, on our side, every wait for the
  server (a query, a fetch, a commit) to the same number of seconds.  A wait
  that runs out raises :class:`DatabaseUnavailable`; the connection is left
  mid-query, so the pool discards it.

The API answers :class:`DatabaseUnavailable` with ``503`` and ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors

from squeezer.db.errors import DatabaseUnavailable

#: what a wait is given when the class is used without :func:`deadline_class`
DEFAULT_SECONDS = 5.0


class DeadlineConnection(psycopg.AsyncConnection):
    """An async connection whose every wait for the server ends after :attr:`deadline` s."""

    deadline: float = DEFAULT_SECONDS

    async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        limit = self.deadline if timeout is None else min(timeout, self.deadline)
        try:
            return await super().wait(gen, interval=interval, timeout=limit)
        except errors._WaitTimeout:
            # the connection is mid-exchange: close it here, so that a rollback or the pool's
            # reset fails at once instead of waiting out another deadline, and the pool drops it
            self.pgconn.finish()
            raise DatabaseUnavailable(
                f"the database did not answer within {self.deadline:g} s") from None


def deadline_class(seconds: float) -> type[DeadlineConnection]:
    """A :class:`DeadlineConnection` subclass whose waits end after ``seconds``."""
    return type("DeadlineConnection", (DeadlineConnection,), {"deadline": float(seconds)})


def connection_kwargs(connect_timeout: float, statement_timeout: float) -> dict[str, Any]:
    """psycopg connection arguments: autocommit, libpq's connect timeout (whole seconds, at
    least 2, as libpq reads it) and the server-side statement timeout."""
    return {"autocommit": True, "connect_timeout": max(2, round(connect_timeout)),
            "options": f"-c statement_timeout={int(statement_timeout * 1000)}"}
