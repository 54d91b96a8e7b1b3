"""Audit stores for the tests: each backend opened on a fresh file or database, events written through the
real writer (group commit, checkpoints), and raw access to the tables for tampering with them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.keys import Signer
from gateway.audit.postgres_store import PostgresAuditStore
from gateway.audit.record import entry
from gateway.audit.settings import AuditSettings
from gateway.audit.settings import PostgresAuditStore as PostgresSettings
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import AuditStore, Entry
from gateway.audit.writer import AuditWriter
from gateway.policy.purposes import Purpose
from gateway.principal import Principal
from tests.conftest import PG, scratch_postgres

BACKENDS = ("sqlite", "postgres")


@dataclass
class OpenStore:
    """An open store, how to reach its tables directly, and the key its checkpoints are signed with."""

    store: AuditStore
    backend: str
    location: str
    signer: Signer

    async def execute(self, sql: str, *values: Any) -> None:
        """Run ``sql`` on the store's own tables, outside fedgate (``?`` placeholders for both backends)."""
        if self.backend == "sqlite":
            async with aiosqlite.connect(self.location) as db:
                await db.execute(sql, values)
                await db.commit()
            return
        numbered = sql
        for number in range(1, sql.count("?") + 1):
            numbered = numbered.replace("?", f"${number}", 1)
        connection = await asyncpg.connect(database=self.location, **PG)
        try:
            await connection.execute(numbered, *values)
        finally:
            await connection.close()

    async def rows(self, sql: str, *values: Any) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            async with aiosqlite.connect(self.location) as db, db.execute(sql, values) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        numbered = sql
        for number in range(1, sql.count("?") + 1):
            numbered = numbered.replace("?", f"${number}", 1)
        connection = await asyncpg.connect(database=self.location, **PG)
        try:
            return [tuple(row) for row in await connection.fetch(numbered, *values)]
        finally:
            await connection.close()


def postgres_settings(database: str) -> PostgresSettings:
    return PostgresSettings(kind="postgres", database=database, user=str(PG["user"]))


@contextlib.asynccontextmanager
async def open_store(backend: str, directory: Path) -> AsyncIterator[OpenStore]:
    """A fresh, open store of ``backend`` (``sqlite``: a file in ``directory``; ``postgres``: a new database)."""
    signer = Signer(Ed25519PrivateKey.generate())
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            location = str(directory / "audit.sqlite")
            store: AuditStore = SqliteAuditStore(Path(location))
        else:
            location = await stack.enter_async_context(scratch_postgres("fedgate_audit"))
            store = PostgresAuditStore(postgres_settings(location))
        await store.open()
        try:
            yield OpenStore(store, backend, location, signer)
        finally:
            await store.close()


def audit_settings(**overrides: Any) -> AuditSettings:
    """Settings for a writer in a test (the store itself is given to the writer)."""
    return AuditSettings.model_validate({"checkpoint_every_events": 5, "checkpoint_every_seconds": 3600, **overrides})


def body(number: int, *, client: str = "app", purpose: str = "direct_care", subjects: Sequence[str] = (),
         agreement: str = "ISA-1", status: str = "ok") -> bytes:  # fmt: skip
    """A realistic event (the gateway's own :func:`~gateway.audit.record.entry`) numbered ``number``."""
    principal = Principal(
        subject=f"user-{number}", client_id=client, scopes=frozenset({"care"}), attributes={"org_code": "ORG-1"},
        authenticated=True, purpose=Purpose(purpose, "header", "because"),
    )  # fmt: skip
    return entry(
        time=(dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=number)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        request_id=f"r{number}",
        principal=principal,
        organisation_attribute="org_code",
        query="{ clinic { people { personId } } }",
        operation_name=None,
        status=status,
        code=None,
        agreements=[(agreement, 1)],
        subjects={"nhs_number": list(subjects)} if subjects else {},
    ).body


async def write(opened: OpenStore, bodies: Sequence[bytes], **settings: Any) -> AuditWriter:
    """Append ``bodies`` through a started writer, all at once (so they share batches), and stop it."""
    writer = AuditWriter(Unclosed(opened.store), opened.signer, audit_settings(**settings))
    await writer.start()
    try:
        await asyncio.gather(*(writer.record(Entry.of(item)) for item in bodies))
    finally:
        await writer.stop()
    return writer


class InBatches(SqliteAuditStore):
    """A real store the writer hands one batch at a time, as it does PostgreSQL's (``concurrent_appends`` off)."""

    concurrent_appends = False


class Unclosed:
    """``store`` as the writer sees it, left open when the writer stops (the test goes on using it)."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None
