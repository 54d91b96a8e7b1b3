"""The embedded audit store: one SQLite file in WAL mode, every commit synced to disk.

For the demo and single-host deployments; several worker processes on one host may share the file (an
append takes SQLite's write lock with ``BEGIN IMMEDIATE``, so they append in turn).

Each operation runs as one call on the store's own thread, so it costs the event loop one hand-off, not one
per statement. Appends are group-committed there: an append handed over while the thread is busy waits in
``_appends``, and when the thread is free it commits every append waiting (up to ``max_batch_events``
events), in the order they came, in one transaction, then wakes their requests and looks again, without
waiting for the event loop.

That transaction is one statement when it can be: the events, linked after the head the store's thread
remembers, inserted by one ``INSERT`` that commits by itself. Triggers keep the chain: one refuses an event
that does not follow the head (another process appended since: the thread then reads the head and appends
in a transaction of its own), one moves the head. Every statement lets go of the GIL and must win it back
from the busy event loop, which costs the thread far more than the statement itself (measured in
``docs/performance.md``), so the fewer the better. When a checkpoint may be due, the thread appends in a
transaction of its own too: read the head and the last checkpoint, insert, sign one if due, commit.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from gateway.audit.chain import GENESIS, Anchor, Checkpoint, StoredEvent
from gateway.audit.statements import (
    INDEXED_FROM_HEAD,
    MARK_MISSING,
    SCHEMA,
    Head,
    Statements,
    checkpoint_of,
    checkpoint_row,
    event_rows,
    seq_range,
    sqlite_mark,
    stored_event,
)
from gateway.audit.store import CheckpointPolicy, Entry, Filter, Index, due_checkpoint, link_batch
from gateway.errors import AuditUnavailableError
from gateway.metrics import AUDIT_BATCH_EVENTS

log = structlog.get_logger("fedgate.audit")

SQL = Statements(sqlite_mark, "SELECT json_group_array(json_array({}, {}))", "SELECT json_group_array({})")
#: The people and agreements of the events after ``?`` up to ``?``, indexed from their bodies by SQLite's JSON
#: functions.
_INDEX = (
    "INSERT INTO audit_subjects SELECT e.seq, s.key, v.value FROM audit_events e, json_each(e.body, '$.subjects') s, "
    "json_each(s.value) v WHERE e.seq > ? AND e.seq <= ?",
    "INSERT INTO audit_agreements SELECT DISTINCT e.seq, json_extract(a.value, '$.id') FROM audit_events e, "
    "json_each(e.body, '$.agreements') a WHERE e.seq > ? AND e.seq <= ?",
)
#: Why the store refuses an event inserted out of its place in the chain.
_NOT_AT_HEAD = "fedgate: the event does not follow the head of the chain"
#: The triggers that keep the chain whoever inserts (the head row is made when the store opens).
_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS audit_events_follow_head BEFORE INSERT ON audit_events
WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_head WHERE id = 1)
  OR NEW.prev_hash IS NOT (SELECT hash FROM audit_head WHERE id = 1)
BEGIN SELECT RAISE(ABORT, '{_NOT_AT_HEAD}'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_move_head AFTER INSERT ON audit_events
BEGIN UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END;
"""  # noqa: S608 (fixed text)
#: Most events inserted by one statement; a larger batch (more requests waiting on one commit than this) is
#: appended in a transaction of its own. It bounds the statements kept compiled (one per batch size).
_ROWS_PER_INSERT = 100
#: Most events indexed in one transaction (about 7 ms for events of 50 people each, on this project's machines).
_INDEX_CHUNK = 100
T = TypeVar("T")
#: Rows fetched per hand-off when streaming events (verification, export).
_PAGE = 500


def _connect(file: Path) -> sqlite3.Connection:
    file.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before a response leaves
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA + _TRIGGERS)
        db.execute("INSERT OR IGNORE INTO audit_head VALUES (1, 0, ?)", (GENESIS,))
        db.execute(INDEXED_FROM_HEAD)
    except BaseException:
        db.close()
        raise
    return db


class SqliteAuditStore:
    """The audit in one SQLite file."""

    def __init__(self, file: Path, max_batch_events: int = 500) -> None:
        """``max_batch_events``: the most events committed in one transaction (``audit.batch_max_events``)."""
        self.file = file
        self.max_batch_events = max_batch_events
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: Appends waiting for the thread, and whether the thread is committing them (both under ``_lock``).
        self._appends: list[_Append] = []
        self._appending = False
        #: The chain's head as the store's thread last saw it (only that thread reads or writes it; ``None``:
        #: unknown). Another process appending makes it old, which costs the next append a transaction of its
        #: own, never a wrong link.
        self._head: Head | None = None

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        assert self._thread is not None, "the store is open"
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedgate-audit-sqlite")
        try:
            self._db = await self._call(_connect, self.file)
        except (sqlite3.Error, OSError) as error:
            self._thread.shutdown()
            self._thread = None
            raise AuditUnavailableError(f"the audit store {self.file} cannot be opened") from error

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None

    async def _run(self, work: Callable[[sqlite3.Connection], T], failure: str, *, write: bool = False) -> T:
        """``work`` on the store's thread (inside one write transaction, SQLite's write lock held throughout,
        if ``write``)."""
        db = self._db
        if db is None:
            raise AuditUnavailableError("the audit store is not open")
        try:
            return await self._call(functools.partial(_transaction, work) if write else work, db)
        except sqlite3.Error as error:
            raise AuditUnavailableError(failure) from error

    #: Appends may be handed over while others commit: the store's thread commits every append waiting when it
    #: is free in one transaction, without waiting for the event loop between commits.
    concurrent_appends = True

    def append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> asyncio.Future[list[StoredEvent]]:
        """The future of ``entries`` appended, resolved from the store's thread once they are durable."""
        if self._thread is None:
            raise AuditUnavailableError("the audit store is not open")
        loop = asyncio.get_running_loop()
        waiting = _Append(entries, checkpoints, loop.create_future())
        with self._lock:
            self._appends.append(waiting)
            idle, self._appending = not self._appending, True
        if idle:
            self._thread.submit(self._append_waiting, loop)
        return waiting.done

    def _take(self) -> list[_Append]:
        """The appends waiting, oldest first, up to ``max_batch_events`` events (at least one append)."""
        taken = events = 0
        for waiting in self._appends:
            events += len(waiting.entries)
            if taken and events > self.max_batch_events:
                break
            taken += 1
        appends, self._appends = self._appends[:taken], self._appends[taken:]
        return appends

    def _append_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the store's thread: commit every append waiting, together, until none is left; each append's
        request is woken once its events are durable."""
        try:
            while True:
                with self._lock:
                    appends = self._take()
                    if not appends:
                        self._appending = False
                        return
                entries = [entry for waiting in appends for entry in waiting.entries]
                try:
                    if self._db is None:
                        raise AuditUnavailableError("the audit store is not open")
                    linked = self._append_entries(entries, appends[-1].checkpoints, self._db)
                except Exception as error:  # the database's error, a closed store, or a fault: those appends fail
                    if not isinstance(error, sqlite3.Error | AuditUnavailableError):
                        log.error("audit_append_fault", exc_info=error)
                    loop.call_soon_threadsafe(_refuse, appends, error)
                else:
                    AUDIT_BATCH_EVENTS.observe(len(linked))
                    loop.call_soon_threadsafe(_accept, appends, linked)
        except BaseException:  # the loop is gone (closed at exit): the next append must start the thread again
            with self._lock:
                self._appending = False
            raise

    def _append_entries(
        self, entries: Sequence[Entry], checkpoints: CheckpointPolicy, db: sqlite3.Connection
    ) -> list[StoredEvent]:
        """On the store's thread: ``entries`` linked after the head and durable, by one statement when the head
        is known and no checkpoint is due, else in a transaction of their own."""
        head = self._head
        if head is not None and 0 < len(entries) <= _ROWS_PER_INSERT:
            linked = link_batch(head.seq, head.hash, entries)
            if not checkpoints.due(linked[-1].seq, head.last):
                try:
                    db.execute(
                        _insert_rows(len(linked)), [value for row in event_rows(linked, entries) for value in row]
                    )
                except sqlite3.IntegrityError as error:
                    if str(error) != _NOT_AT_HEAD:
                        raise
                else:
                    self._head = Head(linked[-1].seq, linked[-1].hash, head.last)
                    return linked
        self._head = None  # unknown until the transaction has committed
        linked, self._head = _transaction(functools.partial(_append, entries, checkpoints), db)
        return linked

    async def index(self) -> int:
        """Index in transactions of at most :data:`_INDEX_CHUNK` events: appends handed over meanwhile commit
        between them, rather than wait for the whole (each holds SQLite's write lock)."""

        def work(db: sqlite3.Connection) -> int:
            row = db.execute(SQL.index_mark).fetchone()
            if row is None:
                raise AuditUnavailableError(MARK_MISSING)
            mark, head = row
            end = min(head, mark + _INDEX_CHUNK)
            if mark >= end:
                return 0
            for statement in _INDEX:
                db.execute(statement, (mark, end))
            db.execute(SQL.move_index_mark, (end,))
            return int(end - mark)

        indexed = 0
        while chunk := await self._run(work, "the audit store could not index its events", write=True):
            indexed += chunk
        return indexed

    async def checkpoint_if_due(self, checkpoints: CheckpointPolicy) -> Checkpoint | None:
        def work(db: sqlite3.Connection) -> Checkpoint | None:
            head = _read_head(db)
            return _checkpoint(db, head, checkpoints) if head.seq > 0 else None

        return await self._run(work, "the audit store could not sign a checkpoint", write=True)

    async def ping(self) -> None:
        await self._run(_read_head, "the audit store does not answer")

    async def head(self) -> int:
        return (await self._run(_read_head, "the audit store does not answer")).seq

    async def _rows(self, sql: str, values: Sequence[Any]) -> AsyncGenerator[Sequence[Any], None]:
        """The rows of ``sql``, fetched a page per hand-off."""
        cursor = await self._run(lambda db: db.execute(sql, values), "the audit store does not answer")
        try:
            while page := await self._call(cursor.fetchmany, _PAGE):
                for row in page:
                    yield row
        finally:
            await self._call(cursor.close)

    async def events(self, start: int | None = None, end: int | None = None) -> AsyncGenerator[StoredEvent, None]:
        async for row in self._rows(SQL.events, seq_range(start, end)):
            yield stored_event(row)

    async def indexed(
        self, start: int | None = None, end: int | None = None
    ) -> AsyncGenerator[tuple[StoredEvent, Index], None]:
        await self.index()
        async for row in self._rows(SQL.indexed, seq_range(start, end)):
            yield stored_event(row), Index.stored(row[4:10], row[10], row[11])

    async def checkpoints(self) -> list[Checkpoint]:
        rows = await self._run(lambda db: db.execute(SQL.checkpoints).fetchall(), "the audit store does not answer")
        return [checkpoint_of(row) for row in rows]

    async def anchor(self) -> Anchor | None:
        return await self._run(_anchor, "the audit store does not answer")

    async def query(self, where: Filter, limit: int) -> list[StoredEvent]:
        await self.index()
        sql, values = SQL.query(where, limit)
        rows = await self._run(lambda db: db.execute(sql, values).fetchall(), "the audit store does not answer")
        return [stored_event(row) for row in rows]

    async def purge(self, before: str) -> Anchor | None:
        def work(db: sqlite3.Connection) -> Anchor | None:
            row = db.execute(SQL.purge_point, (before,)).fetchone()
            current = _anchor(db)
            if row is None or (current is not None and current.seq >= row[0]):
                return None
            anchor = Anchor(int(row[0]), str(row[1]))
            for statement in SQL.purge_events:
                db.execute(statement, (anchor.seq,))
            db.execute(SQL.purge_checkpoints, (anchor.seq,))
            db.execute("INSERT OR REPLACE INTO audit_anchor VALUES (1, ?, ?)", (anchor.seq, anchor.hash))
            return anchor

        return await self._run(work, "the audit store could not be purged", write=True)


@dataclass(frozen=True)
class _Append:
    """An append waiting for the store's thread."""

    entries: Sequence[Entry]
    checkpoints: CheckpointPolicy
    done: asyncio.Future[list[StoredEvent]]


def _append(
    entries: Sequence[Entry], checkpoints: CheckpointPolicy, db: sqlite3.Connection
) -> tuple[list[StoredEvent], Head]:
    """``entries`` linked after the head and inserted (a trigger moves the head), and a checkpoint signed if
    one is due; the events, and the head after them."""
    head = _read_head(db)
    linked = link_batch(head.seq, head.hash, entries)
    db.executemany(SQL.insert_event, event_rows(linked, entries))
    if not linked:
        return linked, head
    top = linked[-1]
    signed = _checkpoint(db, Head(top.seq, top.hash, head.last), checkpoints)
    return linked, Head(top.seq, top.hash, signed or head.last)


@functools.cache
def _insert_rows(count: int) -> str:
    """One statement inserting ``count`` events."""
    row = "(" + ", ".join("?" * 10) + ")"
    return SQL.insert_event.partition(" VALUES ")[0] + " VALUES " + ", ".join([row] * count)


def _transaction(work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """``work`` in one write transaction (SQLite's write lock held throughout)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return result


def _accept(appends: Sequence[_Append], linked: Sequence[StoredEvent]) -> None:
    """On the event loop: each append's events, now durable."""
    start = 0
    for waiting in appends:
        if not waiting.done.done():
            waiting.done.set_result(list(linked[start : start + len(waiting.entries)]))
        start += len(waiting.entries)


def _refuse(appends: Sequence[_Append], error: Exception) -> None:
    """On the event loop: the appends' transaction failed."""
    for waiting in appends:
        if not waiting.done.done():
            failure = AuditUnavailableError("the audit store could not record the request")
            failure.__cause__ = error
            waiting.done.set_exception(failure)


def _read_head(db: sqlite3.Connection) -> Head:
    row = db.execute(SQL.head_and_last_checkpoint).fetchone()
    assert row is not None, "the head row is made when the store opens"
    return Head.of(row)


def _anchor(db: sqlite3.Connection) -> Anchor | None:
    row = db.execute(SQL.anchor).fetchone()
    return Anchor(int(row[0]), str(row[1])) if row is not None else None


def _checkpoint(db: sqlite3.Connection, head: Head, policy: CheckpointPolicy) -> Checkpoint | None:
    """The checkpoint of ``head`` signed and inserted, if one is due after the last (``head.last``)."""
    checkpoint = due_checkpoint(policy, head.seq, head.hash, head.last)
    if checkpoint is not None:
        db.execute(SQL.insert_checkpoint, checkpoint_row(checkpoint))
    return checkpoint
