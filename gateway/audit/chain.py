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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: The previous hash of the first event.
GENESIS = "0" * 64
_DOMAIN = b"fedgate-audit-v1\n"


def canonical(body: Mapping[str, Any]) -> bytes:
    """``body`` as RFC 8785 canonical JSON: one byte sequence for one value, whoever writes it."""
    return bytes(rfc8785.dumps(dict(body)))


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


def verify(
    events: Iterable[StoredEvent],
    checkpoints: Sequence[Checkpoint],
    public_key: Ed25519PublicKey,
    anchor: Anchor | None = None,
    *,
    start: int | None = None,
) -> Verdict:
    """Check every event's hash and link, then every checkpoint's signature and position.

    ``events`` in ``seq`` order, from ``start`` (default: the first after the anchor); a range that starts
    later is taken on trust up to its first event's ``prev_hash``.
    """
    expected_seq = (anchor.seq + 1) if anchor is not None else 1
    previous = anchor.hash if anchor is not None else GENESIS
    hashes: dict[int, str] = {}
    count = 0
    last = anchor.seq if anchor is not None else 0
    for event in events:
        if count == 0 and start is not None and event.seq == start and start != expected_seq:
            expected_seq, previous = event.seq, event.prev_hash
        if event.seq != expected_seq:
            missing = "missing" if event.seq > expected_seq else "out of order or duplicated"
            return Verdict(count, 0, last, f"expected event {expected_seq}, found {event.seq}: events {missing}",
                           event.seq, event.event_id)  # fmt: skip
        if event.prev_hash != previous:
            return Verdict(count, 0, last, "its previous hash is not the hash of the event before it",
                           event.seq, event.event_id)  # fmt: skip
        if link(event.seq, event.prev_hash, event.body) != event.hash:
            return Verdict(count, 0, last, "its content does not match its hash: it was changed", event.seq,
                           event.event_id)  # fmt: skip
        hashes[event.seq] = event.hash
        previous, last, expected_seq = event.hash, event.seq, event.seq + 1
        count += 1
    for number, checkpoint in enumerate(sorted(checkpoints, key=lambda c: c.seq)):
        try:
            public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.payload())
        except (InvalidSignature, ValueError):
            return Verdict(count, number, last, "a checkpoint's signature does not verify with this public key",
                           checkpoint.seq)  # fmt: skip
        if checkpoint.seq > last:
            return Verdict(count, number, last, f"a signed checkpoint covers event {checkpoint.seq} but the store "
                           f"ends at event {last}: events were removed from the end", checkpoint.seq)  # fmt: skip
        stored = hashes.get(checkpoint.seq)
        if stored is not None and stored != checkpoint.hash:
            return Verdict(count, number, last, "the event a signed checkpoint covers has another hash",
                           checkpoint.seq)  # fmt: skip
    return Verdict(count, len(checkpoints), last)
