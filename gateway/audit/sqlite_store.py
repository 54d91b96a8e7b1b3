"""The embedded audit store: one SQLite file in WAL mode, every commit synced to disk.

For the demo and single-host deployments; several worker processes on one host may share the file (an
append takes SQLite's write lock with ``BEGIN IMMEDIATE``, so they append in turn).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import aiosqlite

from gateway.audit.chain import GENESIS, Anchor, Checkpoint, StoredEvent
from gateway.audit.statements import (
    SCHEMA,
    Statements,
    batch_rows,
    checkpoint_of,
    checkpoint_row,
    seq_range,
    sqlite_mark,
    stored_event,
)
from gateway.audit.store import CheckpointPolicy, Entry, Filter, Index, link_batch
from gateway.errors import AuditUnavailableError

SQL = Statements(sqlite_mark, "SELECT json_group_array(json_array({}, {}))", "SELECT json_group_array({})")
T = TypeVar("T")


class SqliteAuditStore:
    """The audit in one SQLite file."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.file, isolation_level=None)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before a response leaves
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(SCHEMA)
            await db.execute("INSERT OR IGNORE INTO audit_head VALUES (1, 0, ?)", (GENESIS,))
        except (sqlite3.Error, OSError) as error:
            raise AuditUnavailableError(f"the audit store {self.file} cannot be opened") from error
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise AuditUnavailableError("the audit store is not open")
        return self._db

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]], failure: str) -> T:
        """``work`` inside one write transaction (SQLite's write lock held throughout)."""
        db = self._connection()
        try:
            await db.execute("BEGIN IMMEDIATE")
            try:
                result = await work(db)
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise AuditUnavailableError(failure) from error
        return result

    async def append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> list[StoredEvent]:
        async def work(db: aiosqlite.Connection) -> list[StoredEvent]:
            linked = link_batch(*await _head(db), entries)
            events, subjects, agreements = batch_rows(linked, entries)
            await db.executemany(SQL.insert_event, events)
            await db.executemany(SQL.insert_subject, subjects)
            await db.executemany(SQL.insert_agreement, agreements)
            if linked:
                await db.execute(SQL.move_head, (linked[-1].seq, linked[-1].hash))
                await _checkpoint(db, linked[-1].seq, linked[-1].hash, checkpoints)
            return linked

        return await self._transaction(work, "the audit store could not record the request")

    async def checkpoint_if_due(self, checkpoints: CheckpointPolicy) -> Checkpoint | None:
        async def work(db: aiosqlite.Connection) -> Checkpoint | None:
            seq, head = await _head(db)
            return await _checkpoint(db, seq, head, checkpoints) if seq > 0 else None

        return await self._transaction(work, "the audit store could not sign a checkpoint")

    async def ping(self) -> None:
        try:
            await self._connection().execute(SQL.head)
        except sqlite3.Error as error:
            raise AuditUnavailableError("the audit store does not answer") from error

    async def head(self) -> int:
        return (await _head(self._connection()))[0]

    async def events(self, start: int | None = None, end: int | None = None) -> AsyncGenerator[StoredEvent, None]:
        async with self._connection().execute(SQL.events, seq_range(start, end)) as cursor:
            async for row in cursor:
                yield stored_event(row)

    async def indexed(
        self, start: int | None = None, end: int | None = None
    ) -> AsyncGenerator[tuple[StoredEvent, Index], None]:
        async with self._connection().execute(SQL.indexed, seq_range(start, end)) as cursor:
            async for row in cursor:
                yield stored_event(row), Index.stored(row[4:10], row[10], row[11])

    async def checkpoints(self) -> list[Checkpoint]:
        async with self._connection().execute(SQL.checkpoints) as cursor:
            return [checkpoint_of(row) for row in await cursor.fetchall()]

    async def anchor(self) -> Anchor | None:
        return await _anchor(self._connection())

    async def query(self, where: Filter, limit: int) -> list[StoredEvent]:
        sql, values = SQL.query(where, limit)
        async with self._connection().execute(sql, values) as cursor:
            return [stored_event(row) for row in await cursor.fetchall()]

    async def purge(self, before: str) -> Anchor | None:
        async def work(db: aiosqlite.Connection) -> Anchor | None:
            async with db.execute(SQL.purge_point, (before,)) as cursor:
                row = await cursor.fetchone()
            current = await _anchor(db)
            if row is None or (current is not None and current.seq >= row[0]):
                return None
            anchor = Anchor(int(row[0]), str(row[1]))
            for statement in SQL.purge_events:
                await db.execute(statement, (anchor.seq,))
            await db.execute(SQL.purge_checkpoints, (anchor.seq,))
            await db.execute("INSERT OR REPLACE INTO audit_anchor VALUES (1, ?, ?)", (anchor.seq, anchor.hash))
            return anchor

        return await self._transaction(work, "the audit store could not be purged")


async def _head(db: aiosqlite.Connection) -> tuple[int, str]:
    async with db.execute(SQL.head) as cursor:
        row = await cursor.fetchone()
    assert row is not None, "the head row is made when the store opens"
    return int(row[0]), str(row[1])


async def _anchor(db: aiosqlite.Connection) -> Anchor | None:
    async with db.execute(SQL.anchor) as cursor:
        row = await cursor.fetchone()
    return Anchor(int(row[0]), str(row[1])) if row is not None else None


async def _checkpoint(db: aiosqlite.Connection, seq: int, head: str, policy: CheckpointPolicy) -> Checkpoint | None:
    async with db.execute(SQL.last_checkpoint) as cursor:
        row = await cursor.fetchone()
    last = checkpoint_of(row) if row is not None else None
    if (last is not None and last.seq >= seq) or not policy.due(seq, last):
        return None
    checkpoint = policy.sign(seq, head)
    await db.execute(SQL.insert_checkpoint, checkpoint_row(checkpoint))
    return checkpoint
