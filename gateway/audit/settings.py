"""The ``audit`` section of ``fedgate.yaml``: where the audit is stored, how it is signed and batched."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, model_validator

from schema.models import FileRelative, StrictModel
from schema.sources import SecretEnv, secret_from_env


class SqliteAuditStore(FileRelative):
    """The embedded store: one SQLite file (WAL), for the demo and single-host deployments."""

    kind: Literal["sqlite"]
    path: str = Field(description="The store's file, relative to the settings file; created on first use.")

    @property
    def file(self) -> Path:
        return self.resolve_path(self.path)


class PostgresAuditStore(StrictModel):
    """A PostgreSQL database: the store several workers and hosts share (one chain, appended in turn)."""

    kind: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    database: str
    user: str
    password_env: SecretEnv | None = Field(None, description="Environment variable with the password.")
    ssl: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    _password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_password(self, info: ValidationInfo) -> PostgresAuditStore:
        self._password = secret_from_env(self.password_env, info)
        return self

    @property
    def password(self) -> SecretStr | None:
        return self._password


AuditStoreSettings = Annotated[SqliteAuditStore | PostgresAuditStore, Field(discriminator="kind")]


class CheckpointSink(FileRelative):
    """Where signed checkpoints are also sent, outside the store: a file (one JSON line each) or a URL
    (each POSTed as JSON)."""

    file: str | None = Field(None, description="A file checkpoints are appended to, relative to the settings file.")
    url: str | None = Field(None, pattern=r"^https?://\S+$", description="A URL each checkpoint is POSTed to.")

    @model_validator(mode="after")
    def _one(self) -> CheckpointSink:
        if (self.file is None) == (self.url is None):
            raise ValueError("name exactly one of file and url")
        return self

    @property
    def path(self) -> Path | None:
        return None if self.file is None else self.resolve_path(self.file)


class AuditSettings(FileRelative):
    """The audit of every disclosure: on with authentication (the normal state)."""

    enabled: bool = Field(
        True, description="With authentication on, record every request (false: no record is kept at all)."
    )
    store: AuditStoreSettings | None = Field(None, description="Where events are stored (sqlite or postgres).")
    signing_key_file: str | None = Field(
        None, description="PEM file holding the Ed25519 private key that signs checkpoints (mode 0600)."
    )
    signing_key_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable holding that key (PEM)."
    )
    checkpoint_every_events: int = Field(1000, ge=1, le=10_000_000, description="A checkpoint after this many events.")
    checkpoint_every_seconds: float = Field(
        60.0, gt=0, le=86_400, description="...or after this long, if events were written since the last one."
    )
    checkpoint_sink: CheckpointSink | None = Field(None, description="Also send each checkpoint here.")
    batch_max_events: int = Field(500, ge=1, le=100_000, description="Most events committed in one transaction.")
    batch_wait_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="How long a batch waits for more events once one is queued (0: commit at once; while a "
        "commit is in flight the next batch gathers anyway). PostgreSQL store only: the SQLite store commits "
        "what is waiting whenever its thread is free.",
    )
    index_every_events: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Index the people and agreements of new events once this many "
        "are waiting (in bulk, off any request's path; a query or verification catches up first).",
    )
    index_every_seconds: float = Field(
        1.0, gt=0, le=3600, description="...or once this long has passed, if any are waiting."
    )
    write_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Longest a request waits for its event to be durable; then 503."
    )
    health_check_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often the store is asked whether it answers (/readyz reports it)."
    )
    max_subjects: int = Field(
        1000, ge=1, le=1_000_000, description="Past this many people, an event records the count, not each one."
    )
    scope: str = Field("fedgate:audit", description="The scope that may read the audit (/audit/graphql).")
    max_query_events: int = Field(
        1000, ge=1, le=100_000, description="Most events one request to /audit/graphql may return (all fields)."
    )

    @property
    def signing_key_path(self) -> Path | None:
        return None if self.signing_key_file is None else self.resolve_path(self.signing_key_file)
