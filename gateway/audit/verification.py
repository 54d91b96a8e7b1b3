"""Verifying a store: its chain, its checkpoints, and the index its queries use, read once in ``seq`` order.

Three things are checked, and the first problem is reported with the event it is at:

* the chain (:class:`~gateway.audit.chain.ChainCheck`): each event's hash covers its content and follows
  the event before it, so an edit, a deletion, an insertion or a swap is found where it happened;
* the checkpoints, the store's own and any kept outside it (a checkpoint sink's file): each signed with the
  public key and covering an event that is still there with the hash it signed, so cutting events off the
  end, or rewriting the store and its checkpoints without the private key, is found;
* the index beside each event (who, purpose, outcome, the people and agreements it names) against its
  content, so changing the index to hide an event from ``fedgate audit query`` is found too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.chain import ChainCheck, Checkpoint, Verdict
from gateway.audit.store import AuditStore, Index
from gateway.errors import ConfigError, ConfigIssue


async def verify_store(
    store: AuditStore,
    public_key: Ed25519PublicKey,
    *,
    start: int | None = None,
    end: int | None = None,
    external: Sequence[Checkpoint] = (),
) -> Verdict:
    """The verdict on events ``start`` to ``end`` (default: all) of ``store``; ``external``: checkpoints
    kept elsewhere, checked like the store's own."""
    anchor = await store.anchor()
    known = {*(await store.checkpoints()), *external}
    if anchor is not None and not any(c.seq == anchor.seq and c.hash == anchor.hash for c in known):
        problem = (f"the chain starts after event {anchor.seq} (a purge), but no signed checkpoint of event "
                   f"{anchor.seq} matches where it says it starts: events were removed from the start")  # fmt: skip
        return Verdict(0, 0, anchor.seq, problem, anchor.seq)
    check = ChainCheck(anchor, start=start)
    async with contextlib.aclosing(store.indexed(start, end)) as indexed:
        async for event, stored in indexed:
            broken = check.step(event)
            if broken is None and stored != Index.of(event.body):
                broken = check.broken(event, f"its index ({_difference(stored, Index.of(event.body))}) does not "
                                      "match its content: the index was changed")  # fmt: skip
            if broken is not None:
                return broken
    ranged = start is not None or end is not None
    first = max(anchor.seq if anchor is not None else 1, start or 1)
    checkpoints = [c for c in known if c.seq >= first and (end is None or c.seq <= end)]
    return check.finish(checkpoints, public_key, None if ranged else await store.head())


def _difference(stored: Index, derived: Index) -> str:
    names = [name for name in Index.__dataclass_fields__ if getattr(stored, name) != getattr(derived, name)]
    return ", ".join(names)


def read_checkpoint_file(path: Path) -> list[Checkpoint]:
    """The checkpoints a sink wrote to ``path`` (one JSON object per line)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise ConfigError([ConfigIssue(str(path), "", f"cannot read it: {error.strerror}")]) from error
    checkpoints = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            checkpoints.append(Checkpoint(int(item["seq"]), str(item["hash"]), str(item["time"]),
                                          str(item["signature"]), str(item["key_id"])))  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ConfigError([ConfigIssue(str(path), "", "not a checkpoint (seq, hash, time, signature, key_id)",
                                           line=number)]) from error  # fmt: skip
    return checkpoints
