"""The key that signs the audit's checkpoints (Ed25519), from a PEM file or an environment variable.

A deployment names its key (``audit.signing_key_file`` or ``audit.signing_key_env``); fedgate never makes
one up, except for the demo (:func:`generate_key_file`, said so at start-up). Verifying needs only the
public key (``fedgate audit verify --public-key``), which can be handed to anyone.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import ConfigError, ConfigIssue


@dataclass(frozen=True)
class Signer:
    """Signs checkpoints."""

    key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, payload: bytes) -> str:
        return self.key.sign(payload).hex()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name for a public key: the start of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signer(file: Path | None, variable: str | None, where: str = "audit") -> Signer:
    """The signing key the settings name; :class:`ConfigError` (never quoting the key) when it is unusable."""
    if variable is not None:
        text = os.environ.get(variable, "")
        if not text:
            raise ConfigError([ConfigIssue("settings", f"{where}.signing_key_env", f"{variable} is not set")])
        return _signer(text.encode(), f"{where}.signing_key_env")
    if file is None:
        raise ConfigError([ConfigIssue("settings", where, "name the checkpoints' signing key: signing_key_file or "
                                       "signing_key_env")])  # fmt: skip
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(
            [ConfigIssue("settings", f"{where}.signing_key_file", f"cannot read {file}: {error.strerror}")]
        ) from error
    return _signer(data, f"{where}.signing_key_file")


def _signer(pem: bytes, where: str) -> Signer:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError([ConfigIssue("settings", where, "not a PEM private key")]) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError([ConfigIssue("settings", where, "the key must be an Ed25519 key")])
    return Signer(key)


def load_public_key(file: Path) -> Ed25519PublicKey:
    """A public key from a PEM file (``fedgate audit verify --public-key``)."""
    try:
        key = serialization.load_pem_public_key(file.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigError([ConfigIssue(str(file), "", "not a readable PEM public key")]) from error
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError([ConfigIssue(str(file), "", "the key must be an Ed25519 key")])
    return key


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key_file(path: Path) -> None:
    """Write a new Ed25519 private key to ``path`` (mode 0600), for the demo only."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
