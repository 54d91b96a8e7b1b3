"""The policy's secret: keys for pseudonyms (one per recipient) and for ordering rows by a hidden key.

One master secret is configured (``policy.secret_env``, or ``policy.secret_file`` which is generated
on first run); every key is derived from it with HMAC, so a recipient's pseudonym key reveals neither
the master secret nor any other recipient's key, and two recipients' extracts cannot be linked.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

BLOCK = 64  # SHA-256's block size (RFC 2104)


class PolicySecrets:
    """Key derivation from the master secret."""

    def __init__(self, master: bytes, *, ephemeral: bool = False) -> None:
        self._master = master
        #: True when no secret was configured and a random one is used for this process only.
        self.ephemeral = ephemeral

    @classmethod
    def from_file(cls, path: Path) -> PolicySecrets:
        """Read the secret file, creating it (32 random bytes, mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
        return cls(bytes.fromhex(path.read_text().strip()))

    @classmethod
    def ephemeral_secret(cls) -> PolicySecrets:
        return cls(secrets.token_bytes(32), ephemeral=True)

    def pseudonym_key(self, recipient: str) -> bytes:
        return hmac.new(self._master, b"fedgate pseudonym\x00" + recipient.encode(), hashlib.sha256).digest()

    def row_key(self) -> bytes:
        return hmac.new(self._master, b"fedgate row key", hashlib.sha256).digest()


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The key XOR ipad and XOR opad (RFC 2104), so that HMAC needs only SHA-256 on the source."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
