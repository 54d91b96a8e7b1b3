"""Connection settings for each kind of departmental source, as declared in the catalog.

Secrets never live in the catalog: a source names the *environment variable* that holds its password
or token (:data:`SecretEnv`: ``password_env``, ``token_env``, ``client_secret_env``); the value is read once,
when the file is validated at start-up (and by ``fedgate check``), and kept as a :class:`~pydantic.SecretStr`,
so it is never printed, logged or echoed in an error. A variable that is unset or empty is a configuration
error at its key, found before anything is served.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, SecretStr, StringConstraints, ValidationInfo, model_validator

from schema.models import FileRelative, StrictModel

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
HTTP_URL = r"^https?://[^\s/?#]+[^\s#]*$"


def _variable_is_set(variable: str, info: ValidationInfo) -> str:
    """The variable's name, once its value is known to be there (unless secrets are not resolved)."""
    _secret_value(variable, info)
    return variable


#: The name of an environment variable holding a secret: it must be set, and not empty, when the file is
#: validated with its secrets resolved (``fedgate serve``, ``fedgate check``).
SecretEnv = Annotated[str, StringConstraints(pattern=ENV_NAME), AfterValidator(_variable_is_set)]


class BreakerSettings(StrictModel):
    """A department's circuit breaker: after ``failures`` consecutive unhealthy failures fedgate stops
    calling the source for ``reset_seconds``, then lets one probe through; the cool-down doubles after
    each failed probe, up to ``max_reset_seconds`` (see ``gateway/execution/breaker.py``)."""

    enabled: bool = Field(True, description="false: never stop calling the source, however often it fails.")
    failures: int = Field(5, ge=1, le=1000, description="Consecutive unhealthy failures that open the breaker.")
    reset_seconds: float = Field(10.0, ge=0.1, le=3600, description="Cool-down before the first probe.")
    max_reset_seconds: float = Field(
        120.0, ge=0.1, le=86400, description="Longest cool-down, however many probes failed in a row."
    )

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> BreakerSettings:
        if self.max_reset_seconds < self.reset_seconds:
            raise ValueError("max_reset_seconds must be at least reset_seconds")
        return self


class HealthCheckSettings(StrictModel):
    """Active health checks of a department's source, as Envoy's: every ``interval_seconds`` (from the end of one
    check to the start of the next) fedgate runs the source's trivial query (``SELECT 1``; an HTTP source's
    health request), bounded by ``timeout_seconds``. ``unhealthy_threshold`` failed checks in a row make the
    department not ready in ``/readyz``, ``healthy_threshold`` passed checks in a row ready again; when those
    passes follow a failed check, a department whose breaker is open is re-admitted at once (see
    ``gateway/execution/health_checks.py``)."""

    enabled: bool = Field(True, description="false: no background checks; /readyz follows the breaker alone.")
    interval_seconds: float = Field(5.0, ge=0.1, le=3600, description="Seconds from the end of one check to the next.")
    timeout_seconds: float = Field(
        2.0, gt=0, le=300, description="A check not answered within this many seconds fails."
    )
    healthy_threshold: int = Field(
        1, ge=1, le=100, description="Passed checks in a row that make the department ready (and re-admit it)."
    )
    unhealthy_threshold: int = Field(
        2, ge=1, le=100, description="Failed checks in a row that make a ready department not ready."
    )


class SourceSettings(StrictModel):
    """What every source kind shares: its per-query timeout, pool size, concurrency limit, breaker and health
    checks."""

    timeout_seconds: float = Field(5.0, gt=0, le=300, description="Per-query timeout; the query is cancelled.")
    pool_size: int = Field(4, ge=1, le=200, description="Connections kept open to the source.")
    max_concurrency: int | None = Field(
        None, ge=1, le=1000, description="Queries in flight at once (bulkhead); defaults to pool_size."
    )
    breaker: BreakerSettings = Field(
        default_factory=BreakerSettings, description="When to stop calling a failing source."
    )
    health_check: HealthCheckSettings = Field(
        default_factory=HealthCheckSettings, description="How often to check the source in the background."
    )

    @property
    def concurrency(self) -> int:
        return self.max_concurrency or self.pool_size


class SqliteSource(SourceSettings, FileRelative):
    """An SQLite database file, opened read-only. The embedded default for the demo and small departments."""

    kind: Literal["sqlite"]
    path: str = Field(description="Database file; a relative path is relative to the catalog file.")

    @property
    def file(self) -> Path:
        return self.resolve_path(self.path)


class _ServerSource(SourceSettings):
    host: str = "127.0.0.1"
    database: str
    user: str
    password_env: SecretEnv | None = Field(None, description="Environment variable with the password.")
    _password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_password(self, info: ValidationInfo) -> Any:
        self._password = secret_from_env(self.password_env, info)
        return self

    @property
    def password(self) -> SecretStr | None:
        return self._password


class PostgresSource(_ServerSource):
    """A PostgreSQL database reached with asyncpg; sessions are read-only with statement_timeout set."""

    kind: Literal["postgres"]
    port: int = Field(5432, ge=1, le=65535)
    ssl: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"


class MySQLSource(_ServerSource):
    """A MariaDB or MySQL database reached with asyncmy; sessions are read-only with a statement time limit."""

    kind: Literal["mysql", "mariadb"]
    port: int = Field(3306, ge=1, le=65535)
    ssl: Literal["disable", "require", "verify-full"] = "disable"


def secret_from_env(variable: str | None, info: ValidationInfo) -> SecretStr | None:
    """The secret in ``variable`` (``None`` without one, or when the context says not to resolve secrets)."""
    if variable is None:
        return None
    value = _secret_value(variable, info)
    return None if value is None else SecretStr(value)


def _secret_value(variable: str, info: ValidationInfo) -> str | None:
    context = info.context or {}
    if not context.get("resolve_secrets", True):
        return None
    environ = context.get("environ", os.environ)
    value = environ.get(variable)
    if value is None:
        raise ValueError(f"environment variable {variable} is not set")
    if not value:
        raise ValueError(f"environment variable {variable} is empty")
    return str(value)
