"""A writer stopped while its batch waits for more events (``audit.batch_wait_ms``) commits that batch and
stops: it does not wait forever for events that will never come."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.keys import Signer
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import Entry
from gateway.audit.writer import AuditWriter
from tests.support.audit_stores import InBatches, audit_settings, body


async def test_a_writer_stopped_while_its_batch_waits_commits_it_and_stops(tmp_path: Path) -> None:
    store = InBatches(tmp_path / "audit.sqlite")
    writer = AuditWriter(store, Signer(Ed25519PrivateKey.generate()), audit_settings(batch_wait_ms=300))
    await writer.start()
    entry = Entry.of(body(1))
    recorded = asyncio.create_task(writer.record(entry))
    await asyncio.sleep(0.1)  # the batch is waiting for more events
    await asyncio.wait_for(writer.stop(), 5)
    assert (await recorded).body == entry.body
    reopened = SqliteAuditStore(tmp_path / "audit.sqlite")
    await reopened.open()
    try:
        assert await reopened.head() == 1
    finally:
        await reopened.close()
