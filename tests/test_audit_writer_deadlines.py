"""A request whose event is not durable within ``audit.write_timeout_seconds`` of handing it over gets
``AUDIT_UNAVAILABLE``: each request at its own deadline, whatever the store is doing, and counted as a
timeout. Both ways the writer hands events over are covered: in batches, one append at a time (a store like
PostgreSQL's), and each event straight to a store that commits those waiting together (SQLite's)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from gateway.audit.chain import StoredEvent
from gateway.audit.keys import Signer
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import CheckpointPolicy, Entry
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditUnavailableError
from tests.support.audit_stores import InBatches, audit_settings, body


class _OneAtATime(InBatches):
    """A real store taking one batch at a time, whose appends wait until ``release`` is set (a disk that
    stopped answering)."""

    def __init__(self, file: Path) -> None:
        super().__init__(file)
        self.release = asyncio.Event()

    async def append(  # type: ignore[override]
        self, entries: Sequence[Entry], checkpoints: CheckpointPolicy
    ) -> list[StoredEvent]:
        await self.release.wait()
        return await super().append(entries, checkpoints)


@asynccontextmanager
async def _stuck(kind: str, directory: Path) -> AsyncIterator[tuple[AuditWriter, asyncio.Event]]:
    """A started writer whose store answers nothing until the event returned is set."""
    release = asyncio.Event()
    file = directory / "audit.sqlite"
    store = _OneAtATime(file) if kind == "batches" else SqliteAuditStore(file)
    writer = AuditWriter(store, Signer(Ed25519PrivateKey.generate()), audit_settings(write_timeout_seconds=0.5))
    await writer.start()
    other = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    if isinstance(store, _OneAtATime):
        store.release = release
    else:  # SQLite's write lock held elsewhere: the store's thread waits for it
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().create_task(release.wait()).add_done_callback(lambda _: other.execute("COMMIT"))
    try:
        yield writer, release
    finally:
        release.set()
        await asyncio.sleep(0.05)
        await writer.stop()
        other.close()


def _timeouts() -> float:
    return REGISTRY.get_sample_value("fedgate_audit_write_failures_total", {"reason": "timeout"}) or 0.0


@pytest.mark.parametrize("kind", ["batches", "straight"])
async def test_each_request_waiting_on_a_stuck_store_gives_up_at_its_own_deadline(kind: str, tmp_path: Path) -> None:
    async with _stuck(kind, tmp_path) as (writer, release):
        before = _timeouts()
        first = asyncio.create_task(writer.record(Entry.of(body(1))))
        await asyncio.sleep(0.3)
        second = asyncio.create_task(writer.record(Entry.of(body(2))))
        await asyncio.wait([first], timeout=2)
        # the first gave up at its deadline; the second, handed over 0.3 s later, still waits for its own
        assert isinstance(first.exception(), AuditUnavailableError)
        assert not second.done()
        await asyncio.wait([second], timeout=2)
        assert isinstance(second.exception(), AuditUnavailableError)
        assert _timeouts() - before == 2
        # one that is answered in time is not given up on
        release.set()
        entry = Entry.of(body(3))
        recorded = await writer.record(entry)
        assert recorded.body == entry.body
        await asyncio.sleep(0.7)
        assert _timeouts() - before == 2
