"""The SQL both audit stores run: one schema, one way to append a batch and to select events.

The stores differ only in how a statement marks its parameters (``?`` in SQLite, ``$1`` in PostgreSQL)
and how a subquery's rows become a JSON array; everything else is written once here. Values are always
bound parameters; the only texts put into a statement are the fixed ones below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit.chain import Checkpoint, StoredEvent
from gateway.audit.store import Entry, Filter

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_events (
  seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, time TEXT NOT NULL, prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL, body TEXT NOT NULL, client_id TEXT, organisation TEXT, purpose TEXT, outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (time);
CREATE TABLE IF NOT EXISTS audit_subjects (seq BIGINT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_subjects_value ON audit_subjects (value, seq);
CREATE TABLE IF NOT EXISTS audit_agreements (seq BIGINT NOT NULL, agreement_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_agreements_id ON audit_agreements (agreement_id, seq);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, time TEXT NOT NULL, signature TEXT NOT NULL, key_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_anchor (
  id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_indexed (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
"""
#: Why a store cannot index its events when ``audit_indexed`` has lost its row (made when the store opens).
MARK_MISSING = "the audit store's index mark (audit_indexed) is missing: the store was altered"
#: Made once, with the head: a store made before the index was caught up in bulk had every event indexed.
INDEXED_FROM_HEAD = (
    "INSERT INTO audit_indexed SELECT 1, seq FROM audit_head WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM audit_indexed)"
)
#: The tables of events, in the order a purge empties them.
EVENT_TABLES = ("audit_events", "audit_subjects", "audit_agreements")
#: The largest ``seq`` (an open-ended range ends here).
LAST_SEQ = 2**62

#: Marks the ``n``-th parameter (from 1) of a statement.
Mark = Callable[[int], str]


def sqlite_mark(_: int) -> str:
    return "?"


def postgres_mark(number: int) -> str:
    return f"${number}"


class Statements:
    """The statements of one store, with its parameter marks and its JSON aggregate."""

    def __init__(self, mark: Mark, json_pairs: str, json_items: str) -> None:
        m = mark
        self.insert_event = f"INSERT INTO audit_events VALUES ({', '.join(m(n) for n in range(1, 11))})"  # noqa: S608
        self.move_head = f"UPDATE audit_head SET seq = {m(1)}, hash = {m(2)} WHERE id = 1"  # noqa: S608
        self.head = "SELECT seq, hash FROM audit_head WHERE id = 1"
        #: The last event whose people and agreements are indexed, and the head, in one row.
        self.index_mark = "SELECT i.seq, h.seq FROM audit_indexed i, audit_head h WHERE i.id = 1 AND h.id = 1"
        self.move_index_mark = f"UPDATE audit_indexed SET seq = {m(1)} WHERE id = 1"  # noqa: S608
        self.checkpoints = "SELECT seq, hash, time, signature, key_id FROM audit_checkpoints ORDER BY seq"
        self.last_checkpoint = self.checkpoints + " DESC LIMIT 1"
        #: The head and the last checkpoint, in one row (:meth:`Head.of`).
        self.head_and_last_checkpoint = (
            "SELECT h.seq, h.hash, c.seq, c.hash, c.time, c.signature, c.key_id FROM audit_head h "  # noqa: S608
            f"LEFT JOIN ({self.last_checkpoint}) c ON true WHERE h.id = 1"
        )
        self.insert_checkpoint = f"INSERT INTO audit_checkpoints VALUES ({m(1)}, {m(2)}, {m(3)}, {m(4)}, {m(5)})"  # noqa: S608
        self.anchor = "SELECT seq, hash FROM audit_anchor WHERE id = 1"
        self.events = (
            "SELECT seq, prev_hash, hash, body FROM audit_events "  # noqa: S608
            f"WHERE seq >= {m(1)} AND seq <= {m(2)} ORDER BY seq"
        )
        self.indexed = (
            "SELECT e.seq, e.prev_hash, e.hash, e.body, e.event_id, e.time, e.client_id, e.organisation, "  # noqa: S608
            f"e.purpose, e.outcome, ({json_pairs.format('s.kind', 's.value')} FROM audit_subjects s "
            f"WHERE s.seq = e.seq), ({json_items.format('a.agreement_id')} FROM audit_agreements a "
            f"WHERE a.seq = e.seq) FROM audit_events e WHERE e.seq >= {m(1)} AND e.seq <= {m(2)} ORDER BY e.seq"
        )
        self.purge_point = f"SELECT seq, hash FROM audit_checkpoints WHERE time < {m(1)} ORDER BY seq DESC LIMIT 1"  # noqa: S608
        self.purge_events = [f"DELETE FROM {table} WHERE seq <= {m(1)}" for table in EVENT_TABLES]  # noqa: S608
        self.purge_checkpoints = f"DELETE FROM audit_checkpoints WHERE seq < {m(1)}"  # noqa: S608
        self.mark = mark

    def query(self, where: Filter, limit: int) -> tuple[str, list[Any]]:
        """The newest events matching ``where``, at most ``limit``: the statement and its values."""
        conditions: list[str] = []
        values: list[Any] = []

        def add(condition: str, value: Any) -> None:
            values.append(value)
            conditions.append(condition.format(self.mark(len(values))))

        for column, value in (("client_id", where.client_id), ("organisation", where.organisation),
                              ("purpose", where.purpose), ("outcome", where.outcome)):  # fmt: skip
            if value is not None:
                add(column + " = {}", value)
        if where.subject is not None:
            add("seq IN (SELECT seq FROM audit_subjects WHERE value = {})", where.subject)
        if where.agreement is not None:
            add("seq IN (SELECT seq FROM audit_agreements WHERE agreement_id = {})", where.agreement)
        if where.since is not None:
            add("time >= {}", where.since)
        if where.until is not None:
            add("time < {}", where.until)
        values.append(limit)
        clause = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        sql = f"SELECT seq, prev_hash, hash, body FROM audit_events{clause} ORDER BY seq DESC LIMIT {self.mark(len(values))}"  # noqa: S608, E501
        return sql, values


@dataclass(frozen=True)
class Head:
    """The chain's head as a writer last saw it, with the last checkpoint then: a store appends after it
    without reading either again until another writer moves the head."""

    seq: int
    hash: str
    last: Checkpoint | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> Head:
        """From a row of :attr:`Statements.head_and_last_checkpoint`."""
        return cls(int(row[0]), str(row[1]), checkpoint_of(tuple(row)[2:]) if row[2] is not None else None)


def event_rows(linked: Sequence[StoredEvent], entries: Sequence[Entry]) -> list[tuple[Any, ...]]:
    """The rows a batch adds to ``audit_events`` (the store then indexes their people and agreements)."""
    rows: list[tuple[Any, ...]] = []
    for event, entry in zip(linked, entries, strict=True):
        event_id, time, client_id, organisation, purpose, outcome = entry.columns
        rows.append((event.seq, event_id, time, event.prev_hash, event.hash, entry.body.decode(), client_id,
                     organisation, purpose, outcome))  # fmt: skip
    return rows


def seq_range(start: int | None, end: int | None) -> tuple[int, int]:
    """The bounds of ``events(start, end)``: open ends run from the first event to the last."""
    return (start or 0, end if end is not None else LAST_SEQ)


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """An event from a row starting ``seq, prev_hash, hash, body``."""
    return StoredEvent(int(row[0]), str(row[1]), str(row[2]), str(row[3]).encode())


def checkpoint_of(row: Sequence[Any]) -> Checkpoint:
    """A checkpoint from a row of ``audit_checkpoints``."""
    return Checkpoint(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))


def checkpoint_row(checkpoint: Checkpoint) -> tuple[Any, ...]:
    return (checkpoint.seq, checkpoint.hash, checkpoint.time, checkpoint.signature, checkpoint.key_id)
