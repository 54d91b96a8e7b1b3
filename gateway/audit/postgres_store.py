"""The shared audit store: a PostgreSQL database every worker of every host appends to.

One chain runs through all of them: an append locks the single ``audit_head`` row (``SELECT ... FOR
UPDATE``) for its transaction, links its batch to the head, inserts and moves the head, so appends from
any number of processes follow one another and the whole store verifies end to end. The lock is held for
one short transaction per batch (group commit), not per event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import asyncpg

from gateway.audit.chain import GENESIS, Anchor, Checkpoint, StoredEvent
from gateway.audit.settings import PostgresAuditStore as Settings
from gateway.audit.statements import (
    SCHEMA,
    Statements,
    batch_rows,
    checkpoint_of,
    checkpoint_row,
    postgres_mark,
    seq_range,
    stored_event,
)
from gateway.audit.store import CheckpointPolicy, Entry, Filter, Index, due_checkpoint, link_batch
from gateway.errors import AuditUnavailableError

SQL = Statements(
    postgres_mark,
    "SELECT COALESCE(json_agg(json_build_array({}, {})), '[]')::text",
    "SELECT COALESCE(json_agg({}), '[]')::text",
)
#: Several processes may create the tables at once: they take turns.
_SETUP_LOCK = 7_264_656_104  # "fedgate" as a number: pg_advisory_xact_lock's key
_LOCK_HEAD = SQL.head + " FOR UPDATE"
#: An append's first statement: the head, locked, and the last checkpoint.
_LOCK_HEAD_AND_LAST_CHECKPOINT = (
    "SELECT h.seq, h.hash, c.seq, c.hash, c.time, c.signature, c.key_id FROM audit_head h "  # noqa: S608
    f"LEFT JOIN LATERAL ({SQL.last_checkpoint}) c ON true WHERE h.id = 1 FOR UPDATE OF h"
)
#: An append's second: the whole batch (events, their people and agreements, a checkpoint if one is due) in
#: one statement, moving the head; the batch's columns arrive as arrays.
_APPEND = """
WITH events AS (INSERT INTO audit_events SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],
       $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])),
     subjects AS (INSERT INTO audit_subjects SELECT * FROM unnest($11::bigint[], $12::text[], $13::text[])),
     agreements AS (INSERT INTO audit_agreements SELECT * FROM unnest($14::bigint[], $15::text[])),
     checkpoints AS (INSERT INTO audit_checkpoints SELECT * FROM unnest($16::bigint[], $17::text[], $18::text[],
       $19::text[], $20::text[]))
UPDATE audit_head SET seq = $21, hash = $22 WHERE id = 1
"""

_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PostgresAuditStore:
    """The audit in a PostgreSQL database."""

    def __init__(self, settings: Settings, *, pool_size: int = 4) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password is not None else None
        try:
            pool = await asyncpg.create_pool(
                host=settings.host, port=settings.port, database=settings.database, user=settings.user,
                password=password, ssl=settings.ssl if settings.ssl != "prefer" else None,
                min_size=1, max_size=self.pool_size, timeout=10, command_timeout=30,
            )  # fmt: skip
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _SETUP_LOCK)
                await connection.execute(SCHEMA)
                await connection.execute("INSERT INTO audit_head VALUES (1, 0, $1) ON CONFLICT DO NOTHING", GENESIS)
        except _ERRORS as error:
            raise AuditUnavailableError(
                f"the audit store on {settings.host}:{settings.port} cannot be opened"
            ) from error
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            raise AuditUnavailableError("the audit store is not open")
        return self._pool

    async def append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> list[StoredEvent]:
        try:
            async with self._connected().acquire() as connection, connection.transaction():
                row = await connection.fetchrow(_LOCK_HEAD_AND_LAST_CHECKPOINT)
                linked = link_batch(int(row[0]), str(row[1]), entries)
                if not linked:
                    return linked
                last = checkpoint_of(tuple(row)[2:]) if row[2] is not None else None
                checkpoint = due_checkpoint(checkpoints, linked[-1].seq, linked[-1].hash, last)
                columns = [
                    list(column)
                    for rows, width in zip(batch_rows(linked, entries), (10, 3, 2), strict=True)
                    for column in (zip(*rows, strict=True) if rows else [()] * width)
                ]
                signed = [[value] for value in checkpoint_row(checkpoint)] if checkpoint else [[]] * 5
                await connection.execute(_APPEND, *columns, *signed, linked[-1].seq, linked[-1].hash)
        except _ERRORS as error:
            raise AuditUnavailableError("the audit store could not record the request") from error
        return linked

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


async def _checkpoint(
    connection: asyncpg.Connection, seq: int, head: str, policy: CheckpointPolicy
) -> Checkpoint | None:
    row = await connection.fetchrow(SQL.last_checkpoint)
    checkpoint = due_checkpoint(policy, seq, head, checkpoint_of(row) if row is not None else None)
    if checkpoint is not None:
        await connection.execute(SQL.insert_checkpoint, *checkpoint_row(checkpoint))
    return checkpoint
