"""The audit store on both backends: what is written verifies and is found; every kind of tampering is
detected and located by verification; a purge keeps the rest verifiable.

Tampering is done as an attacker with write access to the database would: straight into the tables,
with the chain's own hash function where that helps them, and with a signing key of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.chain import Checkpoint, checkpoint_payload, link
from gateway.audit.keys import Signer
from gateway.audit.postgres_store import PostgresAuditStore
from gateway.audit.store import Entry, Filter, Index
from gateway.audit.verification import read_checkpoint_file, verify_store
from gateway.audit.writer import AuditWriter, Checkpoints
from gateway.errors import AuditUnavailableError
from tests.support.audit_stores import (
    BACKENDS,
    OpenStore,
    Unclosed,
    audit_settings,
    body,
    open_store,
    postgres_settings,
    write,
)

NHS = ["9990000001", "9990000002", "9990000003"]


def _events() -> list[bytes]:
    """Twelve events: the first three about one person each; two refusals; two purposes and clients."""
    events = [body(n, subjects=[NHS[n]]) for n in range(3)]
    events += [body(n, client="other", purpose="planning", status="refused") for n in range(3, 5)]
    events += [body(n, subjects=NHS[:2], agreement="ISA-2") for n in range(5, 12)]
    return events


async def _written(opened: OpenStore, **settings: object) -> None:
    """The twelve events in batches of five, five and two: a checkpoint after events 5 and 10."""
    events = _events()
    for batch in (events[:5], events[5:10], events[10:]):
        await write(opened, batch, **settings)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_what_is_written_verifies_and_each_event_is_found_by_what_it_records(
    backend: str, tmp_path: Path
) -> None:
    async with open_store(backend, tmp_path) as opened:
        await _written(opened)
        store = opened.store
        verdict = await verify_store(store, opened.signer.public_key)
        assert (verdict.ok, verdict.events, verdict.checkpoints, verdict.head) == (True, 12, 3, 12)
        # every five events (batch by batch), and the head when a writer stops
        assert [c.seq for c in await store.checkpoints()] == [5, 10, 12]
        stored = [event async for event in store.events()]
        assert [event.seq for event in stored] == list(range(1, 13))
        assert {orjson.loads(event.body)["request_id"] for event in stored} == {f"r{n}" for n in range(12)}

        async def found(**where: str) -> list[str]:
            return [orjson.loads(e.body)["request_id"] for e in await store.query(Filter(**where), 100)]

        assert await found(subject=NHS[2]) == ["r2"]
        assert await found(subject=NHS[0]) == [f"r{n}" for n in range(11, 4, -1)] + ["r0"]  # newest first
        assert await found(client_id="other") == ["r4", "r3"]
        assert await found(purpose="planning", outcome="refused") == ["r4", "r3"]
        assert await found(agreement="ISA-2", since="2026-11-01T10:00:00.000000Z") == ["r11", "r10"]
        assert await found(until="2026-11-01T01:00:00.000000Z") == ["r0"]
        assert await found(organisation="ORG-2") == []
        assert [orjson.loads(e.body)["request_id"] for e in await store.query(Filter(), 3)] == ["r11", "r10", "r9"]


async def _rehash_from(opened: OpenStore, seq: int) -> None:
    """Recompute every event's links from ``seq`` on, as an attacker covering an edit would."""
    rows = await opened.rows("SELECT seq, body FROM audit_events WHERE seq >= ? ORDER BY seq", seq)
    previous = (await opened.rows("SELECT hash FROM audit_events WHERE seq = ?", seq - 1))[0][0]
    for number, text in rows:
        digest = link(number, previous, str(text).encode())
        await opened.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", previous, digest, number)
        previous = digest
    await opened.execute("UPDATE audit_head SET hash = ? WHERE id = 1", previous)


async def _edit(opened: OpenStore) -> None:
    text = (await opened.rows("SELECT body FROM audit_events WHERE seq = 7"))[0][0]
    await opened.execute("UPDATE audit_events SET body = ? WHERE seq = 7", str(text).replace("direct_care", "audit"))


async def _delete(opened: OpenStore) -> None:
    await opened.execute("DELETE FROM audit_events WHERE seq = 7")


async def _insert(opened: OpenStore) -> None:
    """An event slipped in after 6, linked to 6, the rest moved up one (SQLite's trigger that refuses an event
    out of its place in the chain dropped first, as an attacker able to write the file can)."""
    if opened.backend == "sqlite":
        await opened.execute("DROP TRIGGER audit_events_follow_head")
    for seq in range(12, 6, -1):
        for table in ("audit_events", "audit_subjects", "audit_agreements"):
            await opened.execute(f"UPDATE {table} SET seq = ? WHERE seq = ?", seq + 1, seq)  # noqa: S608
    previous = (await opened.rows("SELECT hash FROM audit_events WHERE seq = 6"))[0][0]
    fake = body(99)
    index = Index.of(fake)  # consistent with its body: the index check alone would not notice
    await opened.execute(
        "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        7, index.event_id, index.time, previous, link(7, previous, fake), fake.decode(), index.client_id,
        index.organisation, index.purpose, index.outcome,
    )  # fmt: skip
    await opened.execute("INSERT INTO audit_agreements VALUES (?, ?)", 7, "ISA-1")


async def _insert_and_rehash(opened: OpenStore) -> None:
    await _insert(opened)
    await _rehash_from(opened, 8)


async def _swap(opened: OpenStore) -> None:
    await opened.execute("UPDATE audit_events SET seq = -1 WHERE seq = 7")
    await opened.execute("UPDATE audit_events SET seq = 7 WHERE seq = 8")
    await opened.execute("UPDATE audit_events SET seq = 8 WHERE seq = -1")


async def _truncate(opened: OpenStore) -> None:
    """The last events cut off, the head moved back to match: only the checkpoint of event 10 remembers."""
    await opened.execute("DELETE FROM audit_events WHERE seq > 7")
    last = (await opened.rows("SELECT hash FROM audit_events WHERE seq = 7"))[0][0]
    await opened.execute("UPDATE audit_head SET seq = 7, hash = ? WHERE id = 1", last)


async def _resign(opened: OpenStore) -> None:
    """An edit covered completely: the chain rehashed and every checkpoint signed again, with another key."""
    await _edit(opened)
    await opened.execute("UPDATE audit_events SET purpose = 'audit' WHERE seq = 7")
    await _rehash_from(opened, 7)
    forger = Signer(Ed25519PrivateKey.generate())
    for seq, time in await opened.rows("SELECT seq, time FROM audit_checkpoints"):
        head = (await opened.rows("SELECT hash FROM audit_events WHERE seq = ?", seq))[0][0]
        signature = forger.sign(checkpoint_payload(seq, head, time))
        await opened.execute(
            "UPDATE audit_checkpoints SET hash = ?, signature = ?, key_id = ? WHERE seq = ?",
            head, signature, forger.key_id, seq,
        )  # fmt: skip


async def _unindex(opened: OpenStore) -> None:
    """The person's row removed from the index, so ``query --subject`` would not find the event."""
    await opened.execute("DELETE FROM audit_subjects WHERE seq = 2")


async def _reindex(opened: OpenStore) -> None:
    await opened.execute("UPDATE audit_events SET client_id = 'someone-else' WHERE seq = 4")


async def _skip_indexing(opened: OpenStore) -> None:
    """Two events appended and the index's mark moved past them before they were indexed, so queries would
    never find their people."""
    await opened.store.append(
        [Entry.of(body(n, subjects=[NHS[2]])) for n in (12, 13)], Checkpoints(opened.signer, 99, 3600)
    )
    await opened.execute("UPDATE audit_indexed SET seq = 14 WHERE id = 1")


async def _index_twice(opened: OpenStore) -> None:
    """The index's mark moved back: events 10 to 12 indexed a second time."""
    await opened.execute("UPDATE audit_indexed SET seq = 9 WHERE id = 1")


TAMPERING = {
    "an edited field": (_edit, 7, "its content does not match its hash: it was changed"),
    "a deleted event": (_delete, 8, "expected event 7, found 8: events missing"),
    "an inserted event": (_insert, 8, "its previous hash is not the hash of the event before it"),
    "an insertion with the rest rehashed": (
        _insert_and_rehash, 10, "the event a signed checkpoint covers has another hash"),
    "two events swapped": (_swap, 7, "its previous hash is not the hash of the event before it"),
    "the tail cut off after a checkpoint": (
        _truncate, 10, "a signed checkpoint covers event 10 but the store ends at event 7"),
    "everything re-signed with another key": (
        _resign, 5, "a checkpoint's signature does not verify with this public key"),
    "a person removed from the index": (_unindex, 2, "its index (subjects) does not match its content"),
    "a client changed in the index": (_reindex, 4, "its index (client_id) does not match its content"),
    "events never indexed": (_skip_indexing, 13, "its index (subjects, agreements) does not match its content"),
    "events indexed twice": (_index_twice, 10, "its index (subjects, agreements) does not match its content"),
}  # fmt: skip


@pytest.mark.parametrize("tampering", TAMPERING, ids=list(TAMPERING))
async def test_tampering_is_detected_and_located(backend: str, tampering: str, tmp_path: Path) -> None:
    tamper, seq, problem = TAMPERING[tampering]
    async with open_store(backend, tmp_path) as opened:
        await _written(opened)
        assert (await verify_store(opened.store, opened.signer.public_key)).ok
        await tamper(opened)
        verdict = await verify_store(opened.store, opened.signer.public_key)
    assert not verdict.ok
    assert verdict.seq == seq, verdict
    assert verdict.problem is not None and problem in verdict.problem


async def test_a_cut_that_takes_its_checkpoints_with_it_is_caught_by_the_checkpoints_kept_outside(
    backend: str, tmp_path: Path
) -> None:
    sink = tmp_path / "checkpoints.jsonl"
    async with open_store(backend, tmp_path) as opened:
        await _written(opened, checkpoint_sink={"file": str(sink)})
        outside = read_checkpoint_file(sink)
        assert [checkpoint.seq for checkpoint in outside] == [5, 10, 12]
        await _truncate(opened)
        await opened.execute("DELETE FROM audit_checkpoints WHERE seq > 7")
        alone = await verify_store(opened.store, opened.signer.public_key)
        assert alone.ok  # the store alone cannot tell: it is consistent with itself
        verdict = await verify_store(opened.store, opened.signer.public_key, external=outside)
    assert not verdict.ok and verdict.seq == 10
    assert "a signed checkpoint covers event 10 but the store ends at event 7" in str(verdict.problem)


async def test_a_range_verifies_on_its_own_and_a_break_outside_it_does_not_matter(backend: str, tmp_path: Path) -> None:
    async with open_store(backend, tmp_path) as opened:
        await _written(opened)
        await _edit(opened)  # event 7
        early = await verify_store(opened.store, opened.signer.public_key, start=1, end=6)
        late = await verify_store(opened.store, opened.signer.public_key, start=8, end=12)
        spanning = await verify_store(opened.store, opened.signer.public_key, start=4, end=9)
    assert (early.ok, early.events, early.checkpoints) == (True, 6, 1)
    assert (late.ok, late.events, late.checkpoints) == (True, 5, 2)
    assert (spanning.ok, spanning.seq) == (False, 7)


async def test_a_purge_removes_events_up_to_a_checkpoint_and_the_rest_still_verifies(
    backend: str, tmp_path: Path
) -> None:
    async with open_store(backend, tmp_path) as opened:
        await _written(opened)
        checkpoints = await opened.store.checkpoints()
        between = checkpoints[1].time  # after the first checkpoint was signed, not after the second
        assert await opened.store.purge("2000-01-01T00:00:00.000000Z") is None  # nothing signed before that
        anchor = await opened.store.purge(between)
        assert anchor is not None and (anchor.seq, anchor.hash) == (5, checkpoints[0].hash)
        remaining = [event.seq async for event in opened.store.events()]
        assert remaining == list(range(6, 13))
        assert await opened.rows("SELECT seq FROM audit_subjects WHERE seq <= 5") == []
        verdict = await verify_store(opened.store, opened.signer.public_key)
        assert (verdict.ok, verdict.events, verdict.checkpoints, verdict.head) == (True, 7, 3, 12)
        assert await opened.store.purge(between) is None  # already purged up to there
        await write(opened, [body(n) for n in range(12, 15)])  # appending goes on after a purge
        assert (await verify_store(opened.store, opened.signer.public_key)).head == 15
        await opened.execute("DELETE FROM audit_events WHERE seq = 6")  # the first after the anchor
        broken = await verify_store(opened.store, opened.signer.public_key)
        assert (broken.ok, broken.seq) == (False, 7)
        seventh = (await opened.rows("SELECT hash FROM audit_events WHERE seq = 7"))[0][0]
        await opened.execute("UPDATE audit_anchor SET seq = 7, hash = ? WHERE id = 1", seventh)  # a purge forged
        forged = await verify_store(opened.store, opened.signer.public_key)
    assert (forged.ok, forged.seq) == (False, 7)
    assert "no signed checkpoint of event 7 matches where it says it starts" in str(forged.problem)


async def test_people_are_indexed_in_bulk_off_the_commit_and_a_query_catches_up_first(
    backend: str, tmp_path: Path
) -> None:
    async with open_store(backend, tmp_path) as opened:
        store = opened.store
        lazy = AuditWriter(
            Unclosed(store), opened.signer, audit_settings(index_every_events=1000, index_every_seconds=3600)
        )
        await lazy.start()
        try:
            await asyncio.gather(*(lazy.record(Entry.of(body(n, subjects=[NHS[n]]))) for n in range(3)))
            # committed (the events are there), not yet indexed
            assert [event.seq async for event in store.events()] == [1, 2, 3]
            assert await opened.rows("SELECT count(*) FROM audit_subjects") == [(0,)]
            # a query indexes what is waiting first, so it finds an event committed a moment ago
            found = await store.query(Filter(subject=NHS[1]), 10)
            assert [orjson.loads(event.body)["request_id"] for event in found] == ["r1"]
            assert await opened.rows("SELECT count(*) FROM audit_subjects") == [(3,)]
        finally:
            await lazy.stop()
        eager = AuditWriter(
            Unclosed(store), opened.signer, audit_settings(index_every_events=2, index_every_seconds=3600)
        )
        await eager.start()
        try:
            await asyncio.gather(*(eager.record(Entry.of(body(n, subjects=NHS[:2]))) for n in (3, 4)))
            # two were waiting: the writer indexes them just after their commit, with no query and no timer
            indexed = "SELECT seq, value FROM audit_subjects WHERE seq > 3 ORDER BY seq, value"
            for _ in range(100):
                if rows := await opened.rows(indexed):
                    break
                await asyncio.sleep(0.02)
            assert rows == [(4, NHS[0]), (4, NHS[1]), (5, NHS[0]), (5, NHS[1])]
        finally:
            await eager.stop()
        assert (await verify_store(store, opened.signer.public_key)).ok


async def test_a_store_from_before_bulk_indexing_opens_with_its_events_counted_as_indexed(
    backend: str, tmp_path: Path
) -> None:
    async with open_store(backend, tmp_path) as opened:
        await _written(opened)
        await opened.execute("DELETE FROM audit_indexed")  # as a store made by an earlier fedgate has it
        await opened.store.close()
        await opened.store.open()
        assert await opened.rows("SELECT seq FROM audit_indexed") == [(12,)]
        assert (await verify_store(opened.store, opened.signer.public_key)).ok  # nothing indexed twice


def test_the_chain_is_the_documented_hash_of_position_previous_and_canonical_body() -> None:
    """docs/audit.md gives the formula so anyone can check a chain without fedgate."""
    event = b'{"a":1}'
    expected = hashlib.sha256(b"fedgate-audit-v1\n3\n" + b"ab" * 32 + b"\n" + event).hexdigest()
    assert link(3, "ab" * 32, event) == expected
    signer = Signer(Ed25519PrivateKey.generate())
    payload = checkpoint_payload(3, expected, "2026-11-01T00:00:00.000000Z")
    assert payload == ('{"hash":"' + expected + '","seq":3,"time":"2026-11-01T00:00:00.000000Z"}').encode()
    checkpoint = Checkpoint(3, expected, "2026-11-01T00:00:00.000000Z", signer.sign(payload), signer.key_id)
    signer.public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.payload())


async def test_two_processes_appending_in_turn_to_one_postgresql_chain(tmp_path: Path) -> None:
    """Each append finds the head moved by the other store since its last: it is linked again to the head read
    afresh, and a checkpoint signed for the stale head is withdrawn (never sent outside)."""
    sink = tmp_path / "checkpoints.jsonl"
    settings = audit_settings(checkpoint_every_events=2, checkpoint_sink={"file": str(sink)})
    async with open_store("postgres", tmp_path) as opened:
        other = PostgresAuditStore(postgres_settings(opened.location))
        stores = (Unclosed(opened.store), other)
        writers = [AuditWriter(store, opened.signer, settings) for store in stores]
        for writer in writers:
            await writer.start()
        stored = [await writers[n % 2].record(Entry.of(body(n))) for n in range(12)]
        for writer in writers:
            await writer.stop()
        outside = read_checkpoint_file(sink)
        verdict = await verify_store(opened.store, opened.signer.public_key, external=outside)
        kept = {(checkpoint.seq, checkpoint.hash) for checkpoint in await opened.store.checkpoints()}
    assert [event.seq for event in stored] == list(range(1, 13))
    assert verdict.ok and verdict.head == 12
    assert outside and all((checkpoint.seq, checkpoint.hash) in kept for checkpoint in outside)


async def test_the_postgresql_store_releases_its_sessions_without_a_reset_round_trip(tmp_path: Path) -> None:
    """asyncpg resets a released session with a statement of its own (a round trip, each batch); the store
    keeps no session state, so its sessions are released as they are."""
    async with open_store("postgres", tmp_path) as opened:
        await opened.store.append([Entry.of(body(1, subjects=[NHS[0]]))], Checkpoints(opened.signer, 99, 3600))
        await opened.store.ping()
        last = await opened.rows(
            "SELECT query FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()", opened.location
        )
    assert last, "the store's sessions are open"
    assert not [query for (query,) in last if "pg_advisory_unlock_all" in query or "RESET ALL" in query], last


async def test_a_store_that_lost_its_index_mark_says_so_and_still_records(backend: str, tmp_path: Path) -> None:
    async with open_store(backend, tmp_path) as opened:
        await _written(opened)
        await opened.execute("DELETE FROM audit_indexed")
        missing = r"index mark \(audit_indexed\) is missing: the store was altered"
        with pytest.raises(AuditUnavailableError, match=missing):
            await opened.store.query(Filter(subject=NHS[0]), 10)
        # the writer logs its failure to index and goes on committing: the chain is what must not stop
        stored = await write(opened, [body(n, subjects=[NHS[0]]) for n in (12, 13)], index_every_events=1)
        assert [event.seq async for event in opened.store.events(13)] == [13, 14]
        assert stored.failure is None
