"""Where audit events are kept: one small interface, two backends (SQLite, PostgreSQL).

Both keep the same tables and the same rule for appending, so one chain runs through every event
whoever writes it:

* ``audit_head`` holds the chain's last ``seq`` and ``hash`` in one row. An append takes that row inside
  its transaction (PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE``), links its batch to
  it, inserts the events and moves the head, then commits: writers in several processes and on several
  hosts append in turn, and every event follows the one committed before it. (SQLite's store saves the
  read when it can: it links to the head it left and inserts in one statement, and a trigger refuses the
  batch if another writer moved the head meanwhile; see :mod:`gateway.audit.sqlite_store`.) A batch (group
  commit) costs one transaction however many events it holds.
* ``audit_events`` holds each event's canonical body, its links, and columns derived from the body for
  queries (client, organisation, purpose, outcome, time); ``audit_subjects`` and ``audit_agreements`` index
  the people and agreements of each event. Those are written in bulk, off the path of any request: by the
  database itself from the bodies it stores (its JSON functions), for every event after the mark in
  ``audit_indexed``, every ``audit.index_every_events`` or ``audit.index_every_seconds`` and before any
  query or verification reads them, so a query finds every event committed before it. (An index row per
  person per event, written with the event, was the largest part of the audit's cost: a B-tree page a
  person each commit; in bulk, the entries of many events share their pages.) Verification checks every
  derived column and row against the body too.
* ``audit_checkpoints`` holds the signed checkpoints; ``audit_anchor`` where the chain starts after a purge.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.audit.chain import Anchor, Checkpoint, StoredEvent, link


@dataclass(frozen=True)
class Index:
    """What queries find an event by, derived from its body when it is appended (and checked against the
    body by ``fedgate audit verify``: an index changed to hide an event from a query is found)."""

    event_id: str
    time: str
    client_id: str | None
    organisation: str | None
    purpose: str | None
    outcome: str
    subjects: tuple[tuple[str, str], ...] = ()
    agreements: tuple[str, ...] = ()

    @classmethod
    def of(cls, body: bytes) -> Index:
        return cls.of_event(orjson.loads(body))

    @classmethod
    def of_event(cls, event: Mapping[str, Any]) -> Index:
        return cls(
            *columns_of(event),
            subjects=tuple(
                sorted((kind, value) for kind, values in (event.get("subjects") or {}).items() for value in values)
            ),
            agreements=tuple(sorted({agreement["id"] for agreement in event.get("agreements") or ()})),
        )

    @classmethod
    def stored(cls, columns: Sequence[Any], subjects: str, agreements: str) -> Index:
        """The index as a store holds it: the six columns in order, the subjects and agreements as JSON arrays."""
        event_id, time, client_id, organisation, purpose, outcome = columns
        return cls(
            event_id, time, client_id, organisation, purpose, outcome,
            subjects=tuple(sorted((str(kind), str(value)) for kind, value in orjson.loads(subjects))),
            agreements=tuple(sorted(str(agreement) for agreement in orjson.loads(agreements))),
        )  # fmt: skip


#: The columns of ``audit_events`` derived from an event's body: event id, time, client id, organisation,
#: purpose, outcome.
Columns = tuple[str, str, str | None, str | None, str | None, str]


def columns_of(event: Mapping[str, Any]) -> Columns:
    """The derived columns of ``event`` (:data:`Columns`)."""
    principal = event.get("principal") or {}
    purpose = event.get("purpose") or {}
    return (event["event_id"], event["time"], principal.get("client_id"), principal.get("organisation"),
            purpose.get("name"), event["outcome"]["status"])  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """An event to append: its canonical body, and the columns derived from it (the people and agreements
    it names are indexed by the store from the body)."""

    body: bytes
    columns: Columns

    @classmethod
    def of(cls, body: bytes) -> Entry:
        """The entry of a canonical ``body``."""
        return cls(body, columns_of(orjson.loads(body)))


@dataclass(frozen=True)
class Filter:
    """What to look for (every condition must hold; ``None``: any)."""

    subject: str | None = None
    client_id: str | None = None
    organisation: str | None = None
    purpose: str | None = None
    agreement: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None


def link_batch(head_seq: int, head_hash: str, entries: Sequence[Entry]) -> list[StoredEvent]:
    """``entries`` appended after the event ``head_seq`` whose hash is ``head_hash``."""
    linked: list[StoredEvent] = []
    previous = head_hash
    for offset, entry in enumerate(entries, start=1):
        seq = head_seq + offset
        digest = link(seq, previous, entry.body)
        linked.append(StoredEvent(seq, previous, digest, entry.body))
        previous = digest
    return linked


class CheckpointPolicy(Protocol):
    """Whether a checkpoint is due at the head ``head_seq`` after ``last`` (the latest one, if any), and its
    signature (the writer decides and signs)."""

    def due(self, head_seq: int, last: Checkpoint | None) -> bool: ...

    def sign(self, seq: int, head: str) -> Checkpoint: ...

    def withdraw(self, checkpoint: Checkpoint) -> None:
        """``checkpoint`` was signed but not stored (its transaction wrote nothing)."""
        ...


def due_checkpoint(policy: CheckpointPolicy, seq: int, head: str, last: Checkpoint | None) -> Checkpoint | None:
    """The checkpoint of the head ``seq`` (hash ``head``) signed, if ``policy`` says one is due after ``last``."""
    if (last is not None and last.seq >= seq) or not policy.due(seq, last):
        return None
    return policy.sign(seq, head)


class AuditStore(Protocol):
    """A store of audit events (:mod:`gateway.audit.sqlite_store`, :mod:`gateway.audit.postgres_store`)."""

    #: Whether :meth:`append` may be called while another append commits (the store then orders them and
    #: commits those waiting together itself, so the writer hands each request's event straight over); if
    #: not, the writer gathers events into batches and waits for each append before the next.
    concurrent_appends: bool

    async def open(self) -> None:
        """Connect, and create the tables if they do not exist."""
        ...

    async def close(self) -> None: ...

    def append(self, entries: Sequence[Entry], checkpoints: CheckpointPolicy) -> Awaitable[list[StoredEvent]]:
        """Link ``entries`` to the chain and commit them in one transaction, with a checkpoint if one is due;
        raises :class:`~gateway.errors.AuditUnavailableError` if they could not be made durable. A store with
        :attr:`concurrent_appends` answers with an :class:`asyncio.Future` (the writer fails it at a
        request's deadline if the store has not resolved it by then)."""
        ...

    async def index(self) -> int:
        """Index the people and agreements of the events appended (by any process) since the last time; the
        number of events indexed."""
        ...

    async def checkpoint_if_due(self, checkpoints: CheckpointPolicy) -> Checkpoint | None:
        """Sign a checkpoint of the current head if events were written since the last one and one is due."""
        ...

    async def ping(self) -> None:
        """Raise :class:`~gateway.errors.AuditUnavailableError` unless the store answers."""
        ...

    def events(self, start: int | None = None, end: int | None = None) -> AsyncGenerator[StoredEvent, None]:
        """Stored events in ``seq`` order, from ``start`` to ``end`` (inclusive)."""
        ...

    async def checkpoints(self) -> list[Checkpoint]: ...

    async def anchor(self) -> Anchor | None: ...

    def indexed(
        self, start: int | None = None, end: int | None = None
    ) -> AsyncGenerator[tuple[StoredEvent, Index], None]:
        """:meth:`events`, each with the index stored beside it (caught up first; verification compares it with
        the body)."""
        ...

    async def head(self) -> int:
        """The ``seq`` the store records as its last event's (0 when empty)."""
        ...

    async def query(self, where: Filter, limit: int) -> list[StoredEvent]:
        """The newest events matching ``where``, at most ``limit`` (the index caught up first)."""
        ...

    async def purge(self, before: str) -> Anchor | None:
        """Remove the events up to the last checkpoint signed before ``before`` (an ISO 8601 time), keeping that
        checkpoint as the new anchor; ``None`` when there is nothing to remove."""
        ...
