"""One writer at a time per data DB: a file lock for SQLite, an advisory lock for PostgreSQL,
``GET_LOCK`` for MySQL/MariaDB. Every kind is released by the operating system or the database
server when its holder dies, so a ``kill -9`` never leaves the data DB locked.

Who holds the lock (pid, host, since, command) is written to ``mlops_meta`` once it is taken,
so that a second writer can say who it is waiting for.

The lock fences: taking it advances an epoch in ``mlops_meta`` (``writer_epoch``), and every
transaction that advances a round first checks, with that row locked, that the epoch is still
this writer's and that the lock's own connection still holds the lock (:func:`check_fence`).
A writer whose lock connection was dropped (the server then released the lock) takes it again
when nobody took it meanwhile (the epoch is still its own) and goes on; when another run took
it, the epoch has moved on and the writer cannot commit: it stops with :class:`LockLost`, and a
rerun resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import LockHeld, LockLost

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

LOCK_NAME = "mlops-data-writer"
# PostgreSQL advisory locks take a 64-bit key: a stable one derived from the name.
PG_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


def _holder(engine: Engine) -> str:
    from mlops_cli.store.meta import get_meta

    try:
        with engine.connect() as conn:
            info = json.loads(get_meta(conn, "writer") or "{}")
    except Exception:  # the holder's record is a courtesy: never fail on it
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')} ({info.get('command')})"


EPOCH_KEY = "writer_epoch"


def _take_epoch(engine: Engine) -> int:
    """Record this process as the holder and advance the writer epoch; returns the new epoch."""
    from mlops_cli.store.meta import get_meta, set_meta
    from mlops_cli.store.tables import now

    command = " ".join(["mlops", *sys.argv[1:]])[:200] if sys.argv else "mlops"
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now().isoformat(timespec="seconds")}
    with engine.begin() as conn:
        epoch = int(get_meta(conn, EPOCH_KEY) or 0) + 1
        set_meta(conn, writer=json.dumps({**holder, "command": command}), **{EPOCH_KEY: str(epoch)})
    return epoch


class _FileLock:
    def __init__(self, path: str) -> None:
        from filelock import FileLock

        self.lock = FileLock(path)

    def try_acquire(self) -> bool:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self.lock.release()

    def holds(self) -> bool:
        return self.lock.is_locked  # a file lock lives as long as this process

    def regain(self) -> bool:
        return False  # never lost while this process lives


class _ServerLock:
    """PostgreSQL's session advisory lock or MySQL's GET_LOCK, on a connection of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.dialect = engine.dialect.name
        database = engine.url.database or ""
        self.name = f"{LOCK_NAME}:{database}"[:64]  # MySQL's lock names are server-wide

    def _execute(self, sql: str) -> Any:
        from sqlalchemy import text

        assert self.conn is not None
        return self.conn.execute(text(sql), {"key": PG_KEY, "name": self.name}).scalar()

    def try_acquire(self) -> bool:
        if self.conn is None:
            self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self.dialect == "postgresql":
            taken = bool(self._execute("SELECT pg_try_advisory_lock(:key)"))
        else:
            taken = self._execute("SELECT GET_LOCK(:name, 0)") == 1
        if taken:  # the session that holds it: a reconnect would be another one, without the lock
            self.session = self._execute(
                "SELECT pg_backend_pid()" if self.dialect == "postgresql" else "SELECT CONNECTION_ID()"
            )
        return taken

    def holds(self) -> bool:
        """Whether the lock's session is still the one that took it (a dropped connection lost it)."""
        from sqlalchemy.exc import SQLAlchemyError

        if self.conn is None:
            return False
        try:
            if self.dialect == "postgresql":
                return self._execute("SELECT pg_backend_pid()") == self.session
            return self._execute("SELECT IS_USED_LOCK(:name)") == self.session
        except SQLAlchemyError:
            return False

    def regain(self) -> bool:
        """After the lock's connection was dropped: try to take the lock again on a new one (the
        caller has checked that no other writer took it meanwhile: the epoch is still its own)."""
        from sqlalchemy.exc import SQLAlchemyError

        old, self.conn = self.conn, None
        if old is not None:
            try:
                old.close()
            except SQLAlchemyError:
                pass
        try:
            return self.try_acquire()
        except SQLAlchemyError:
            return False

    def release(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        if self.conn is None:
            return
        try:
            if self.dialect == "postgresql":
                self._execute("SELECT pg_advisory_unlock(:key)")
            else:
                self._execute("SELECT RELEASE_LOCK(:name)")
        except SQLAlchemyError:
            pass  # the connection is gone, and with it the lock: the server released it
        finally:
            self.conn.close()
            self.conn = None


def _lock_for(engine: Engine) -> _FileLock | _ServerLock | None:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            return None  # a private in-memory DB has one writer by construction
        return _FileLock(f"{database}.lock")
    if engine.dialect.name in ("postgresql", "mysql", "mariadb"):
        return _ServerLock(engine)
    return None


@contextmanager
def writer_lock(
    engine: Engine,
    wait: bool | float = False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the data DB's writer lock for the block.

    ``wait``: False fails at once with :class:`LockHeld` naming the holder; True waits as long
    as it takes; a number waits that many seconds. ``on_wait`` hears who is being waited for.
    """
    lock = _lock_for(engine)
    if lock is None:
        yield
        return
    started = time.monotonic()
    while not lock.try_acquire():
        holder = _holder(engine)
        limit = None if wait is True else float(wait or 0)
        if limit is not None and time.monotonic() - started >= limit:
            if isinstance(lock, _ServerLock):
                lock.release()
            raise LockHeld(
                f"the data DB is being written by {holder}",
                hint="wait for it to finish, or pass --wait-lock to queue behind it",
            )
        if on_wait:
            on_wait(f"waiting for the data DB's writer lock, held by {holder}")
        time.sleep(0.5)
    from mlops_cli.store.rounds import fences_of

    fences = fences_of(engine)
    try:
        fences.append((_take_epoch(engine), lock))
        yield
    finally:
        try:
            if fences and fences[-1][1] is lock:
                _clear_holder(engine)
        finally:
            if fences and fences[-1][1] is lock:
                fences.pop()
            lock.release()


def _clear_holder(engine: Engine) -> None:
    """Forget the holder record, if this process still holds the lock (else it is another's)."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_cli.store.meta import set_meta
    from mlops_cli.store.rounds import check_fence

    try:
        with engine.begin() as conn:
            check_fence(conn)
            set_meta(conn, writer=None)
    except (LockLost, SQLAlchemyError):
        pass  # a courtesy record: the next holder overwrites it
