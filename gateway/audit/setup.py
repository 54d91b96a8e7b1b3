"""The audit a deployment's settings describe: on with authentication, unless switched off."""

from __future__ import annotations

from gateway.audit.auditor import Auditor
from gateway.audit.keys import Signer, load_signer
from gateway.audit.postgres_store import PostgresAuditStore
from gateway.audit.settings import SqliteAuditStore as SqliteStoreSettings
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import AuditStore
from gateway.audit.writer import AuditWriter
from gateway.settings import Settings


def audit_active(settings: Settings) -> bool:
    """Whether requests are audited: with authentication on and ``audit.enabled``."""
    return settings.auth.enabled and settings.audit.enabled


def audit_signer(settings: Settings) -> Signer | None:
    """The key that signs checkpoints (:class:`~gateway.errors.ConfigError` if it cannot be used)."""
    if not audit_active(settings):
        return None
    audit = settings.audit
    return load_signer(audit.signing_key_path, audit.signing_key_env)


def audit_store(settings: Settings) -> AuditStore:
    store = settings.audit.store
    assert store is not None, "the settings are validated: an active audit names its store"
    if isinstance(store, SqliteStoreSettings):
        return SqliteAuditStore(store.file, settings.audit.batch_max_events)
    return PostgresAuditStore(store)


def create_auditor(settings: Settings, signer: Signer | None) -> Auditor | None:
    """The gateway's auditor (its store opens when the gateway starts), or ``None`` without the audit."""
    if not audit_active(settings):
        return None
    signer = signer or audit_signer(settings)
    assert signer is not None
    writer = AuditWriter(audit_store(settings), signer, settings.audit)
    return Auditor(writer, settings.audit, settings.agreements.organisation_attribute)
