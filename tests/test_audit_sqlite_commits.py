"""The SQLite store's group commit: appends handed over while the store's thread is busy wait for it and are
committed together, in the order they came, in one transaction; a transaction that fails fails every append
in it, and the store goes on recording once the cause is gone. Indexing in bulk lets appends commit between
its transactions. The head the store's thread remembers never forks the chain when another writer appends,
and the store itself refuses an event out of its place.

SQLite's write lock is held from another connection, as another process sharing the file would hold it, to
keep the store's thread busy for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from gateway.audit.chain import Checkpoint, StoredEvent
from gateway.audit.keys import Signer
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import AuditStore, Entry
from gateway.audit.verification import verify_store
from gateway.audit.writer import Checkpoints
from gateway.errors import AuditUnavailableError
from tests.support.audit_stores import OpenStore, body, open_store


def _transactions() -> tuple[float, float]:
    """Transactions the audit stores committed in this process so far, and the events they held."""
    count = REGISTRY.get_sample_value("fedgate_audit_batch_events_count") or 0.0
    return count, REGISTRY.get_sample_value("fedgate_audit_batch_events_sum") or 0.0


@contextmanager
def _write_lock_held(location: str) -> Iterator[sqlite3.Connection]:
    """SQLite's write lock on the store's file, held by another connection until the block ends."""
    other = sqlite3.connect(location, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
        other.execute("COMMIT")
    finally:
        other.close()


async def _appends_behind_a_busy_store(
    opened: OpenStore, bodies: Sequence[bytes], *, while_held: str | None = None
) -> list[list[StoredEvent] | BaseException]:
    """The first body appended while the write lock is held elsewhere (so the store's thread takes it and
    waits), then the others, one append each, while it waits; ``while_held`` runs on the lock's connection
    before it lets go."""
    store: AuditStore = opened.store
    checkpoints = Checkpoints(opened.signer, 1000, 3600)
    with _write_lock_held(opened.location) as other:
        first = asyncio.ensure_future(store.append([Entry.of(bodies[0])], checkpoints))
        await asyncio.sleep(0.3)  # the thread has taken the first append and waits for the lock
        others = [asyncio.ensure_future(store.append([Entry.of(item)], checkpoints)) for item in bodies[1:]]
        await asyncio.sleep(0.1)
        assert not first.done() and not any(task.done() for task in others)
        if while_held is not None:
            other.execute(while_held)
    return await asyncio.gather(first, *others, return_exceptions=True)


async def test_appends_waiting_for_the_store_are_committed_together_in_the_order_they_came(tmp_path: Path) -> None:
    bodies = [body(number) for number in range(10)]
    async with open_store("sqlite", tmp_path) as opened:
        count, events = _transactions()
        results = await _appends_behind_a_busy_store(opened, bodies)
        after_count, after_events = _transactions()
        stored = [event async for event in opened.store.events()]
    # Each append has its own event back, in the order the appends came.
    assert [[event.seq for event in result] for result in results if isinstance(result, list)] == [
        [seq] for seq in range(1, 11)
    ]
    assert [event.body for event in stored] == bodies
    # Two transactions: the first append alone, then the nine that waited behind it, together.
    assert (after_count - count, after_events - events) == (2, 10)


async def test_no_transaction_holds_more_than_the_batch_limit(tmp_path: Path) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    location = tmp_path / "audit.sqlite"
    store = SqliteAuditStore(location, max_batch_events=4)
    await store.open()
    try:
        count, events = _transactions()
        results = await _appends_behind_a_busy_store(
            OpenStore(store, "sqlite", str(location), signer), [body(number) for number in range(10)]
        )
        after_count, after_events = _transactions()
    finally:
        await store.close()
    assert all(isinstance(result, list) for result in results)
    # The first alone, then the nine waiting in transactions of at most four: 4, 4 and 1.
    assert (after_count - count, after_events - events) == (4, 10)


async def test_a_failed_transaction_fails_every_append_in_it_and_the_store_then_records_again(
    tmp_path: Path,
) -> None:
    async with open_store("sqlite", tmp_path) as opened:
        results = await _appends_behind_a_busy_store(
            opened, [body(number) for number in range(4)], while_held="ALTER TABLE audit_events RENAME TO hidden"
        )
        assert len(results) == 4
        for result in results:
            assert isinstance(result, AuditUnavailableError)
            assert result.code == "AUDIT_UNAVAILABLE"
            assert isinstance(result.__cause__, sqlite3.OperationalError)
        await opened.execute("ALTER TABLE hidden RENAME TO audit_events")
        checkpoints = Checkpoints(opened.signer, 1000, 3600)
        (recorded,) = await opened.store.append([Entry.of(body(9))], checkpoints)
        assert recorded.seq == 1  # nothing of the failed transactions was kept
        assert await opened.store.head() == 1


async def test_an_append_to_a_closed_store_is_refused(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as opened:
        store = opened.store
    with pytest.raises(AuditUnavailableError):
        await store.append([Entry.of(body(1))], Checkpoints(opened.signer, 1000, 3600))


class _MarkSeen:
    """A checkpoint policy that signs nothing and notes, from inside each append's transaction, how far the
    index had got then (read through a connection of its own: what other transactions had committed)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.marks: list[int] = []

    def due(self, head_seq: int, last: Checkpoint | None) -> bool:
        with closing(sqlite3.connect(self.location)) as db:
            self.marks.append(db.execute("SELECT seq FROM audit_indexed").fetchone()[0])
        return False

    def sign(self, seq: int, head: str) -> Checkpoint:
        raise AssertionError("never due")

    def withdraw(self, checkpoint: Checkpoint) -> None:
        raise AssertionError("never signed")


async def test_indexing_in_bulk_lets_an_append_commit_between_its_transactions(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as opened:
        store = opened.store
        people = [f"99900{number:05d}" for number in range(250)]
        checkpoints = Checkpoints(opened.signer, 1000, 3600)
        await store.append([Entry.of(body(n, subjects=[person])) for n, person in enumerate(people)], checkpoints)
        assert await store.head() == 250  # asked on the store's thread: the append's work there is over
        seen = _MarkSeen(opened.location)
        # The index's first transaction is handed over first, the append while it runs: the append commits
        # after the index's first 100 events, not after all 250.
        indexing = asyncio.create_task(store.index())
        await asyncio.sleep(0)
        await asyncio.gather(indexing, store.append([Entry.of(body(250))], seen))
        assert seen.marks == [100]
        assert await opened.rows("SELECT count(*) FROM audit_subjects") == [(250,)]
        assert await opened.rows("SELECT seq FROM audit_indexed") == [(251,)]
        verdict = await verify_store(store, opened.signer.public_key)
        assert (verdict.ok, verdict.events) == (True, 251)


class _Faulty(_MarkSeen):
    """A checkpoint policy that fails: a fault inside the transaction that is not the database's."""

    def due(self, head_seq: int, last: Checkpoint | None) -> bool:
        raise RuntimeError("a fault")


async def test_a_fault_inside_a_transaction_fails_its_appends_and_the_next_append_commits(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as opened:
        store = opened.store
        with pytest.raises(AuditUnavailableError) as refused:
            await asyncio.wait_for(store.append([Entry.of(body(1))], _Faulty(opened.location)), 5)
        assert isinstance(refused.value.__cause__, RuntimeError)
        checkpoints = Checkpoints(opened.signer, 1000, 3600)
        (recorded,) = await asyncio.wait_for(store.append([Entry.of(body(2))], checkpoints), 5)
        assert recorded.seq == 1  # the failed transaction was rolled back


async def test_an_append_after_another_writer_appended_follows_that_writers_events(tmp_path: Path) -> None:
    """The store's thread remembers the head it left; another process appending to the same file moves the
    head on, and the next append follows the other writer's events instead of forking the chain."""
    async with open_store("sqlite", tmp_path) as opened:
        other = SqliteAuditStore(Path(opened.location))
        await other.open()
        try:
            checkpoints = Checkpoints(opened.signer, 1000, 3600)
            (first,) = await opened.store.append([Entry.of(body(1))], checkpoints)
            theirs = await other.append([Entry.of(body(2)), Entry.of(body(3))], checkpoints)
            (last,) = await opened.store.append([Entry.of(body(4))], checkpoints)
        finally:
            await other.close()
        assert [first.seq, *(event.seq for event in theirs), last.seq] == [1, 2, 3, 4]
        assert last.prev_hash == theirs[-1].hash
        verdict = await verify_store(opened.store, opened.signer.public_key)
        assert (verdict.ok, verdict.events) == (True, 4)


async def test_checkpoints_come_every_n_events_when_events_come_one_at_a_time(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as opened:
        for number in range(7):
            checkpoints = Checkpoints(opened.signer, 2, 3600)
            await opened.store.append([Entry.of(body(number))], checkpoints)
            assert [checkpoint.seq for checkpoint in checkpoints.drain()] == ([number + 1] if number % 2 else [])
        assert [checkpoint.seq for checkpoint in await opened.store.checkpoints()] == [2, 4, 6]


async def test_the_store_refuses_an_event_that_does_not_follow_its_head(tmp_path: Path) -> None:
    """Whoever inserts: an event must take the next position after the head and link to its hash."""
    async with open_store("sqlite", tmp_path) as opened:
        (first,) = await opened.store.append([Entry.of(body(1))], Checkpoints(opened.signer, 1000, 3600))
        row = (body(2).decode(), "c", "o", "p", "ok")
        with closing(sqlite3.connect(opened.location)) as db:
            for seq, previous in ((3, first.hash), (2, "f" * 64)):
                with pytest.raises(sqlite3.IntegrityError, match="does not follow the head"):
                    db.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (seq, f"e{seq}", "t", previous, "h" * 64, *row))  # fmt: skip
            db.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (2, "e2", "t", first.hash, "h" * 64, *row))  # fmt: skip
            db.commit()
        assert await opened.store.head() == 2  # the head moved with the insert


async def test_a_batch_larger_than_one_statement_takes_is_appended_whole(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as opened:
        checkpoints = Checkpoints(opened.signer, 1000, 3600)
        await opened.store.append([Entry.of(body(0))], checkpoints)  # the head is now known to the thread
        stored = await opened.store.append([Entry.of(body(n)) for n in range(1, 251)], checkpoints)
        assert [event.seq for event in stored] == list(range(2, 252))
        verdict = await verify_store(opened.store, opened.signer.public_key)
        assert (verdict.ok, verdict.events) == (True, 251)
