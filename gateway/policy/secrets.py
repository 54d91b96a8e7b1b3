"""The policy's secret: keys for pseudonyms (one per recipient) and for ordering rows by a hidden key.

One master secret is configured (``policy.secret_env``, or ``policy.secret_file`` which is generated
on first run); every key is derived from it with HMAC, so a recipient's pseudonym key reveals neither
the master secret nor any other recipient's key, and two recipients' extracts cannot be linked.

A configured secret must hold at least :data:`MIN_SECRET_BYTES` bytes of key material: the bytes of the
variable's value, or the bytes a secret file's hexadecimal digits decode to. Anything shorter stops
start-up (and ``fedgate check``); no message ever quotes the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from gateway.private_files import create_private, creation_problem, exists, read_private

BLOCK = 64  # SHA-256's block size (RFC 2104)

#: The least key material a configured policy secret may hold, in bytes: SHA-256's output, the strength of
#: every key derived from it. A secret file holds it as hexadecimal digits (64 of them for 32 bytes).
MIN_SECRET_BYTES = 32
#: Bytes of random key material in a secret file fedgate generates.
GENERATED_SECRET_BYTES = 32
#: The largest secret file read (a path to a device or a large file is refused, not read).
MAX_SECRET_FILE_BYTES = 4096
_HOW = "generate one with `openssl rand -hex 32`"


class PolicySecrets:
    """Key derivation from the master secret."""

    def __init__(self, master: bytes, *, ephemeral: bool = False) -> None:
        self._master = master
        #: True when no secret was configured and a random one is used for this process only.
        self.ephemeral = ephemeral

    @classmethod
    def from_environment(cls, variable: str, environ: Mapping[str, str] = os.environ) -> PolicySecrets:
        """The secret in ``variable``: its value's UTF-8 bytes. ValueError (a reason) if unset or too short."""
        value = environ.get(variable)
        if value is None:
            raise ValueError(f"environment variable {variable} is not set")
        master = value.encode()
        _strong_enough(master, f"environment variable {variable}")
        return cls(master)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> PolicySecrets | None:
        """The secret in ``path`` (hexadecimal digits), generated first (:data:`GENERATED_SECRET_BYTES` random
        bytes, mode 0600) when the file does not exist and ``create``; without ``create``, ``None`` for a file
        that is not there yet but could be made. ValueError (a reason) for anything start-up would trip on."""
        if not exists(path):
            problem = creation_problem(path)
            if problem is not None:
                raise ValueError(problem)
            if not create:
                return None
            try:
                create_private(path, secrets.token_hex(GENERATED_SECRET_BYTES).encode())
            except OSError as error:
                raise ValueError(f"cannot create {path}: {error.strerror or error}") from error
        content = read_private(path, limit=MAX_SECRET_FILE_BYTES)
        try:
            master = bytes.fromhex(content.decode("ascii").strip())
        except ValueError:  # UnicodeDecodeError too
            raise ValueError(f"{path} does not hold the secret as hexadecimal digits ({_HOW})") from None
        _strong_enough(master, str(path))
        return cls(master)

    @classmethod
    def ephemeral_secret(cls) -> PolicySecrets:
        return cls(secrets.token_bytes(GENERATED_SECRET_BYTES), ephemeral=True)

    def pseudonym_key(self, recipient: str) -> bytes:
        return hmac.new(self._master, b"fedgate pseudonym\x00" + recipient.encode(), hashlib.sha256).digest()

    def row_key(self) -> bytes:
        return hmac.new(self._master, b"fedgate row key", hashlib.sha256).digest()


def _strong_enough(master: bytes, where: str) -> None:
    if len(master) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{where} holds {len(master)} byte(s) of key material; the policy secret needs at least "
            f"{MIN_SECRET_BYTES} ({_HOW})"
        )


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The key XOR ipad and XOR opad (RFC 2104), so that HMAC needs only SHA-256 on the source."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
