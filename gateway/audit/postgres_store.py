"""The shared audit store: a PostgreSQL database every worker of every host appends to.

One chain runs through all of them. An append is one statement, its own transaction: it moves the single
``audit_head`` row from the head this process last saw to the batch's last event, and inserts the batch
(events, their people and agreements, a checkpoint if one is due) only if it did. Appends from several
processes queue on that row's lock; one that finds the head moved by another process inserts nothing, and
the batch is linked again to the head read afresh and sent again (after two such tries it takes the row's
lock for a transaction of its own: ``SELECT ... FOR UPDATE``, link, insert, commit). So the whole store
verifies end to end, and a batch costs one round trip while this process is the only one appending.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import asyncpg

from adapters.postgres import PooledSession
from gateway.audit.chain import GENESIS, Anchor, Checkpoint, StoredEvent
from gateway.audit.settings import PostgresAuditStore as Settings
from gateway.audit.statements import (
    INDEXED_FROM_HEAD,
    MARK_MISSING,
    SCHEMA,
    Head,
    Statements,
    checkpoint_of,
    checkpoint_row,
    event_rows,
    postgres_mark,
    seq_range,
    stored_event,
)
from gateway.audit.store import CheckpointPolicy, Entry, Filter, Index, due_checkpoint, link_batch
from gateway.errors import AuditUnavailableError
from gateway.metrics import AUDIT_BATCH_EVENTS

SQL = Statements(
    postgres_mark,
    "SELECT COALESCE(json_agg(json_build_array({}, {})), '[]')::text",
    "SELECT COALESCE(json_agg({}), '[]')::text",
)
#: Several processes may create the tables at once: they take turns.
_SETUP_LOCK = 7_264_656_104  # "fedgate" as a number: pg_advisory_xact_lock's key
_LOCK_HEAD = SQL.head + " FOR UPDATE"
#: The head and the last checkpoint, locked for a transaction.
_LOCK_HEAD_AND_LAST_CHECKPOINT = SQL.head_and_last_checkpoint + " FOR UPDATE OF h"
#: The whole batch in one statement, its events' columns as arrays ($1-$10) and a checkpoint's ($11-$15), moving
#: the head to $16/$17 if it is still at $18/$19 (else nothing is written, and it returns 0). Without an $18, the
#: head moves unconditionally.
_APPEND = """
WITH head AS (UPDATE audit_head SET seq = $16, hash = $17 WHERE id = 1 AND ($18::bigint IS NULL OR
       (seq = $18 AND hash = $19)) RETURNING seq),
     events AS (INSERT INTO audit_events SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],
       $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) WHERE EXISTS (SELECT FROM head)),
     checkpoints AS (INSERT INTO audit_checkpoints SELECT * FROM unnest($11::bigint[], $12::text[], $13::text[],
       $14::text[], $15::text[]) WHERE EXISTS (SELECT FROM head))
SELECT count(*) FROM head
"""
#: Tries of the one-statement append before a batch takes the head's lock.
_OPTIMISTIC_TRIES = 2
#: The people and agreements of the events after $1 up to $2, indexed from their bodies by PostgreSQL's JSON
#: functions; then the mark moved to $2.
_INDEX = """
WITH batch AS (SELECT seq, body::json AS body FROM audit_events WHERE seq > $1 AND seq <= $2),
     subjects AS (INSERT INTO audit_subjects SELECT e.seq, s.key, v FROM batch e, json_each(e.body -> 'subjects') s,
       json_array_elements_text(s.value) v),
     agreements AS (INSERT INTO audit_agreements SELECT DISTINCT e.seq, a ->> 'id' FROM batch e,
       json_array_elements(e.body -> 'agreements') a)
UPDATE audit_indexed SET seq = $2 WHERE id = 1
"""

_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PostgresAuditStore:
    """The audit in a PostgreSQL database."""

    #: One append at a time: each links to the head the last one left (:data:`_OPTIMISTIC_TRIES`).
    concurrent_appends = False

    def __init__(self, settings: Settings, *, pool_size: int = 4) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        #: The head as this process last wrote or read it (``None``: read it before the next append).
        self._head: Head | None = None

    async def open(self) -> None:
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password is not None else None
        try:
            pool = await asyncpg.create_pool(
                host=settings.host, port=settings.port, database=settings.database, user=settings.user,
                password=password, ssl=settings.ssl if settings.ssl != "prefer" else None,
                min_size=1, max_size=self.pool_size, timeout=10, command_timeout=30, connection_class=PooledSession,
            )  # fmt: skip
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _SETUP_LOCK)
                await connection.execute(SCHEMA)
                await connection.execute("INSERT INTO audit_head VALUES (1, 0, $1) ON CONFLICT DO NOTHING", GENESIS)
                await connection.execute(INDEXED_FROM_HEAD)
        except _ERRORS as error:
            raise AuditUnavailableError(
                f"the audit store on {settings.host}:{settings.port} cannot be opened"
            ) from error
        self._pool = pool

    async def close(self) -> None:
        self._head = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            raise AuditUnavailableError("the audit store is not open")
        return self._pool

    async def append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> list[StoredEvent]:
        if not entries:
            return []
        try:
            stored = await self._append(entries, checkpoints)
        except _ERRORS as error:
            self._head = None
            raise AuditUnavailableError("the audit store could not record the request") from error
        AUDIT_BATCH_EVENTS.observe(len(entries))
        return stored

    async def _append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> list[StoredEvent]:
        """Optimistically from the head last seen; if another process moved it, under the head's lock."""
        async with self._connected().acquire() as connection:
            for _ in range(_OPTIMISTIC_TRIES):
                if self._head is None:
                    self._head = Head.of(await connection.fetchrow(SQL.head_and_last_checkpoint))
                appended = await _append(connection, self._head, entries, checkpoints, conditional=True)
                self._head = appended[1] if appended else None  # None: another process appended since
                if appended:
                    return appended[0]
            async with connection.transaction():
                head = Head.of(await connection.fetchrow(_LOCK_HEAD_AND_LAST_CHECKPOINT))
                appended = await _append(connection, head, entries, checkpoints, conditional=False)
            assert appended is not None, "an unconditional append writes"
            self._head = appended[1]
            return appended[0]

    async def index(self) -> int:
        try:
            async with self._connected().acquire() as connection, connection.transaction():
                row = await connection.fetchrow(SQL.index_mark + " FOR UPDATE OF i")
                if row is None:
                    raise AuditUnavailableError(MARK_MISSING)
                mark, head = row
                if mark >= head:
                    return 0
                await connection.execute(_INDEX, mark, head)
                return int(head - mark)
        except _ERRORS as error:
            raise AuditUnavailableError("the audit store could not index its events") from error

    async def checkpoint_if_due(self, checkpoints: CheckpointPolicy) -> Checkpoint | None:
        try:
            async with self._connected().acquire() as connection, connection.transaction():
                row = await connection.fetchrow(_LOCK_HEAD)
                if int(row[0]) == 0:
                    return None
                return await _checkpoint(connection, int(row[0]), str(row[1]), checkpoints)
        except _ERRORS as error:
            raise AuditUnavailableError("the audit store could not sign a checkpoint") from error

    async def ping(self) -> None:
        try:
            async with self._connected().acquire() as connection:
                await connection.fetchrow(SQL.head)
        except _ERRORS as error:
            raise AuditUnavailableError("the audit store does not answer") from error

    async def head(self) -> int:
        async with self._connected().acquire() as connection:
            return int((await connection.fetchrow(SQL.head))[0])

    async def events(self, start: int | None = None, end: int | None = None) -> AsyncGenerator[StoredEvent, None]:
        async with self._connected().acquire() as connection, connection.transaction():
            async for row in connection.cursor(SQL.events, *seq_range(start, end)):
                yield stored_event(row)

    async def indexed(
        self, start: int | None = None, end: int | None = None
    ) -> AsyncGenerator[tuple[StoredEvent, Index], None]:
        await self.index()
        async with self._connected().acquire() as connection, connection.transaction():
            async for row in connection.cursor(SQL.indexed, *seq_range(start, end)):
                yield stored_event(row), Index.stored(tuple(row)[4:10], row[10], row[11])

    async def checkpoints(self) -> list[Checkpoint]:
        async with self._connected().acquire() as connection:
            return [checkpoint_of(row) for row in await connection.fetch(SQL.checkpoints)]

    async def anchor(self) -> Anchor | None:
        async with self._connected().acquire() as connection:
            row = await connection.fetchrow(SQL.anchor)
        return Anchor(int(row[0]), str(row[1])) if row is not None else None

    async def query(self, where: Filter, limit: int) -> list[StoredEvent]:
        await self.index()
        sql, values = SQL.query(where, limit)
        async with self._connected().acquire() as connection:
            return [stored_event(row) for row in await connection.fetch(sql, *values)]

    async def purge(self, before: str) -> Anchor | None:
        try:
            async with self._connected().acquire() as connection, connection.transaction():
                await connection.fetchrow(_LOCK_HEAD)  # no append meanwhile
                row = await connection.fetchrow(SQL.purge_point, before)
                current = await connection.fetchrow(SQL.anchor)
                if row is None or (current is not None and int(current[0]) >= int(row[0])):
                    return None
                anchor = Anchor(int(row[0]), str(row[1]))
                for statement in SQL.purge_events:
                    await connection.execute(statement, anchor.seq)
                await connection.execute(SQL.purge_checkpoints, anchor.seq)
                await connection.execute(
                    "INSERT INTO audit_anchor VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET seq = $1, hash = $2",
                    anchor.seq, anchor.hash,
                )  # fmt: skip
        except _ERRORS as error:
            raise AuditUnavailableError("the audit store could not be purged") from error
        return anchor


async def _append(
    connection: asyncpg.Connection,
    head: Head,
    entries: Sequence[Entry],
    checkpoints: CheckpointPolicy,
    *,
    conditional: bool,
) -> tuple[list[StoredEvent], Head] | None:
    """``entries`` linked to ``head`` and written in one statement, with the new head (``conditional``: only if
    the store's head is still ``head``; ``None`` if it was not, and a checkpoint signed for it is withdrawn)."""
    linked = link_batch(head.seq, head.hash, entries)
    top = linked[-1]
    checkpoint = due_checkpoint(checkpoints, top.seq, top.hash, head.last)
    columns = [list(column) for column in zip(*event_rows(linked, entries), strict=True)]
    signed = [[value] for value in checkpoint_row(checkpoint)] if checkpoint else [[]] * 5
    expected = (head.seq, head.hash) if conditional else (None, None)
    if not await connection.fetchval(_APPEND, *columns, *signed, top.seq, top.hash, *expected):
        if checkpoint is not None:
            checkpoints.withdraw(checkpoint)
        return None
    return linked, Head(top.seq, top.hash, checkpoint or head.last)


async def _checkpoint(
    connection: asyncpg.Connection, seq: int, head: str, policy: CheckpointPolicy
) -> Checkpoint | None:
    row = await connection.fetchrow(SQL.last_checkpoint)
    checkpoint = due_checkpoint(policy, seq, head, checkpoint_of(row) if row is not None else None)
    if checkpoint is not None:
        await connection.execute(SQL.insert_checkpoint, *checkpoint_row(checkpoint))
    return checkpoint
