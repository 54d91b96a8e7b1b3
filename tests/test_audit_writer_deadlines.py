"""A request whose event is not durable within ``audit.write_timeout_seconds`` of handing it over gets
``AUDIT_UNAVAILABLE``: each request at its own deadline, whatever the store is doing, and counted."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from gateway.audit.chain import StoredEvent
from gateway.audit.keys import Signer
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import CheckpointPolicy, Entry
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditUnavailableError
from tests.support.audit_stores import audit_settings, body


class _Stuck(SqliteAuditStore):
    """A real store whose appends never finish until ``release`` is set (a disk that stopped answering)."""

    def __init__(self, file: Path) -> None:
        super().__init__(file)
        self.release = asyncio.Event()

    async def append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> list[StoredEvent]:
        await self.release.wait()
        return await super().append(entries, checkpoints)


def _timeouts() -> float:
    return REGISTRY.get_sample_value("fedgate_audit_write_failures_total", {"reason": "timeout"}) or 0.0


async def test_each_request_waiting_on_a_stuck_store_gives_up_at_its_own_deadline(tmp_path: Path) -> None:
    store = _Stuck(tmp_path / "audit.sqlite")
    writer = AuditWriter(store, Signer(Ed25519PrivateKey.generate()), audit_settings(write_timeout_seconds=0.5))
    await writer.start()
    before = _timeouts()
    try:
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
        store.release.set()
        entry = Entry.of(body(3))
        recorded = await writer.record(entry)
        assert recorded.body == entry.body
        await asyncio.sleep(0.7)
        assert _timeouts() - before == 2
    finally:
        store.release.set()
        await writer.stop()
