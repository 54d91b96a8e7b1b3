"""The audit's hash chain and signed checkpoints, and their verification. Pure: no I/O.

Each event's body is stored as its RFC 8785 canonical JSON. Its ``hash`` is the SHA-256 of its position
(``seq``), the previous event's hash and that body, so an edit, a deletion, an insertion or a reordering
breaks the chain at the first event it touches. A checkpoint is the chain's head at one moment (``seq``,
``hash``, ``time``) signed with the store's Ed25519 key: anyone holding only the public key can tell that
events up to it are the ones that were written, including that none was cut off the end. A purge keeps
the chain verifiable from an *anchor*: the checkpoint the remaining events follow.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: The previous hash of the first event.
GENESIS = "0" * 64
_DOMAIN = b"fedgate-audit-v1\n"


#: A lead byte of a character beyond the Basic Multilingual Plane, in UTF-8.
_ASTRAL = re.compile(rb"[\xf0-\xf4]")


def canonical(body: Any) -> bytes:
    """``body`` as RFC 8785 canonical JSON: one byte sequence for one value, whoever writes it.

    An event holds objects, arrays, strings, integers, booleans and nulls, never a float. For those, orjson
    with sorted keys writes exactly RFC 8785's bytes (the same escapes, integers beyond 2^53 refused), some
    sixty times faster than the reference implementation, except in one place: RFC 8785 orders keys by
    UTF-16 code units, which differs from code point order only for characters beyond the Basic
    Multilingual Plane. A body holding one (an emoji in a justification) is written by the reference
    implementation (``tests/test_audit_canonical.py`` checks the two agree on generated values)."""
    text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    return text if text.isascii() or not _ASTRAL.search(text) else bytes(rfc8785.dumps(body))


def link(seq: int, previous: str, body: bytes) -> str:
    """The hash of the event at ``seq`` with ``body``, following the event whose hash is ``previous``."""
    return hashlib.sha256(_DOMAIN + f"{seq}\n{previous}\n".encode() + body).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store holds it."""

    seq: int
    prev_hash: str
    hash: str
    body: bytes

    @property
    def event_id(self) -> str:
        return str(orjson.loads(self.body).get("event_id", ""))


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at ``time``, signed."""

    seq: int
    hash: str
    time: str
    signature: str
    key_id: str

    def payload(self) -> bytes:
        return checkpoint_payload(self.seq, self.hash, self.time)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time, "signature": self.signature,
                "key_id": self.key_id}  # fmt: skip


def checkpoint_payload(seq: int, head: str, time: str) -> bytes:
    """What a checkpoint's signature covers."""
    return canonical({"seq": seq, "hash": head, "time": time})


@dataclass(frozen=True)
class Anchor:
    """Where the stored chain starts after a purge: the checkpoint the first remaining event follows."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Verdict:
    """What verification found: how much it checked, and the first problem, if any, with where it is."""

    events: int
    checkpoints: int
    head: int
    problem: str | None = None
    seq: int | None = None
    event_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class ChainCheck:
    """Checks a stream of stored events one at a time (:meth:`step`), then the checkpoints (:meth:`finish`).

    Events come in ``seq`` order from ``start`` (default: the first after the anchor); a range that starts
    later is taken on trust up to its first event's ``prev_hash``.
    """

    def __init__(self, anchor: Anchor | None = None, *, start: int | None = None) -> None:
        self.expected_seq = (anchor.seq + 1) if anchor is not None else 1
        self.previous = anchor.hash if anchor is not None else GENESIS
        self.last = anchor.seq if anchor is not None else 0
        self.start = start
        self.count = 0
        self.hashes: dict[int, str] = {}

    def step(self, event: StoredEvent) -> Verdict | None:
        """``None`` if ``event`` follows the events before it, else the verdict naming it."""
        if self.count == 0 and self.start is not None and event.seq == self.start != self.expected_seq:
            self.expected_seq, self.previous = event.seq, event.prev_hash
        if event.seq != self.expected_seq:
            missing = "missing" if event.seq > self.expected_seq else "out of order or duplicated"
            return self.broken(event, f"expected event {self.expected_seq}, found {event.seq}: events {missing}")
        if event.prev_hash != self.previous:
            return self.broken(event, "its previous hash is not the hash of the event before it")
        if link(event.seq, event.prev_hash, event.body) != event.hash:
            return self.broken(event, "its content does not match its hash: it was changed")
        self.hashes[event.seq] = event.hash
        self.previous, self.last, self.expected_seq = event.hash, event.seq, event.seq + 1
        self.count += 1
        return None

    def broken(self, event: StoredEvent, problem: str) -> Verdict:
        """The verdict for a problem found at ``event``."""
        return Verdict(self.count, 0, self.last, problem, event.seq, event.event_id)

    def finish(self, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey, head: int | None) -> Verdict:
        """Every checkpoint signed by ``public_key`` and covering events that are there with the hash it
        signed; ``head``, the store's own record of its last event (``None``: a range was checked)."""
        for number, checkpoint in enumerate(sorted(checkpoints, key=lambda c: c.seq)):
            try:
                public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.payload())
            except (InvalidSignature, ValueError):
                return self._at(checkpoint.seq, number, "a checkpoint's signature does not verify with this public key")
            if checkpoint.seq > self.last:
                return self._at(checkpoint.seq, number, f"a signed checkpoint covers event {checkpoint.seq} but the "
                                f"store ends at event {self.last}: events were removed from the end")  # fmt: skip
            stored = self.hashes.get(checkpoint.seq)
            if stored is not None and stored != checkpoint.hash:
                return self._at(checkpoint.seq, number, "the event a signed checkpoint covers has another hash")
        if head is not None and head != self.last:
            return self._at(head, len(checkpoints), f"the store's head says event {head} is the last but the "
                            f"events end at {self.last}: events were removed from the end")  # fmt: skip
        return Verdict(self.count, len(checkpoints), self.last)

    def _at(self, seq: int, checkpoints: int, problem: str) -> Verdict:
        return Verdict(self.count, checkpoints, self.last, problem, seq)


def verify(
    events: Iterable[StoredEvent],
    checkpoints: Sequence[Checkpoint],
    public_key: Ed25519PublicKey,
    anchor: Anchor | None = None,
    *,
    start: int | None = None,
    head: int | None = None,
) -> Verdict:
    """Check every event's hash and link, then every checkpoint's signature and position (:class:`ChainCheck`)."""
    check = ChainCheck(anchor, start=start)
    for event in events:
        broken = check.step(event)
        if broken is not None:
            return broken
    return check.finish(checkpoints, public_key, head)
