"""fedgate's settings file (``fedgate.yaml``), validated once at start-up.

Unknown keys are errors, every problem is reported with file, line, path and reason, and relative paths
are relative to the settings file. Every setting is documented in ``docs/configuration.md`` (a test
keeps the two in step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from gateway.audit.settings import AuditSettings
from gateway.auth.config import AuthSettings
from gateway.auth.dev_config import DevIssuerSettings
from gateway.graphiql import LOCAL_ASSETS_PATH, PUBLIC_ASSETS_URL
from gateway.limits import default
from gateway.listening import ListeningHost
from gateway.policy.agreements import AgreementSettings
from gateway.policy.purposes import PurposeSettings
from gateway.telemetry_settings import TelemetrySettings
from schema.configfile import ConfigDocument, load_yaml, validate
from schema.models import FileRelative, StrictModel

#: The environment variable naming the settings file: read by every CLI command (after ``--config``) and by
#: the worker processes ``fedgate serve --workers N`` starts.
CONFIG_ENV = "FEDGATE_CONFIG"


class ServerSettings(StrictModel):
    """Where the HTTP server listens and how much it accepts."""

    host: ListeningHost = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        default("server.max_body_bytes"), ge=1024, le=100_000_000, description="Largest request body accepted."
    )
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description="Worker processes sharing the port; more than one needs a configured policy secret.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Longest a client may take to send a request's headers, from connecting (or from a later "
        "request's first byte); then the connection is closed.",
    )
    body_timeout_seconds: float = Field(
        20.0,
        gt=0,
        le=600,
        description="Longest a client may take to send a request's body after its headers; then 408 and the "
        "connection is closed.",
    )
    keep_alive_seconds: int = Field(
        5, ge=1, le=3600, description="How long a kept-alive connection may stay idle between requests."
    )
    max_header_bytes: int = Field(
        65_536,
        ge=4096,
        le=1_048_576,
        description="Longest request line and headers accepted (431 above it); a long document belongs in a POST.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Most connections one process holds open; one more is closed as soon as it is accepted.",
    )


class CORSSettings(StrictModel):
    """Cross-origin requests from browser apps on other origins: off unless origins are listed.

    Only exact origins are accepted (no ``*``, no patterns): a token-bearing API must name the web apps that
    may call it. Preflights (``OPTIONS /graphql``) are answered for ``GET`` and ``POST``; cookies are never
    involved (tokens travel in the ``Authorization`` header), so credentials mode stays off.
    """

    allow_origins: list[Annotated[str, StringConstraints(pattern=r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")]] = Field(
        default_factory=list,
        description="Exact origins (scheme://host[:port], lower case, no path) allowed to call /graphql.",
    )
    allow_headers: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]+$")]] = Field(
        default_factory=lambda: ["authorization", "content-type"],
        description="Request headers a cross-origin caller may send.",
    )
    max_age_seconds: int = Field(600, ge=0, le=86_400, description="How long a browser may cache a preflight.")

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)


class GraphQLSettings(StrictModel):
    """Limits and behaviour of the GraphQL endpoint."""

    default_page_size: int = Field(100, ge=1, le=10_000)
    max_page_size: int = Field(default("graphql.max_page_size"), ge=1, le=100_000)
    max_offset: int = Field(
        default("graphql.max_offset"), ge=0, le=10_000_000, description="Largest 'offset' of a list field."
    )
    max_in_list: int = Field(
        default("graphql.max_in_list"), ge=1, le=100_000, description="Most values in one 'in' filter."
    )
    max_document_chars: int = Field(
        default("graphql.max_document_chars"), ge=100, le=10_000_000, description="Longest query document accepted."
    )
    max_tokens: int = Field(
        default("graphql.max_tokens"), ge=10, le=1_000_000, description="Most lexical tokens in one document."
    )
    max_fields: int = Field(
        default("graphql.max_fields"), ge=1, le=100_000, description="Most fields written in one document."
    )
    max_repeated_fields: int = Field(
        default("graphql.max_repeated_fields"),
        ge=1,
        le=1000,
        description="Most fields with one response name in one selection set, fragments merged.",
    )
    max_fragments: int = Field(
        default("graphql.max_fragments"), ge=0, le=10_000, description="Most fragment definitions in one document."
    )
    max_variables: int = Field(
        default("graphql.max_variables"), ge=0, le=10_000, description="Most variable definitions in one document."
    )
    max_directives: int = Field(
        default("graphql.max_directives"), ge=0, le=10_000, description="Most directives in one document."
    )
    max_selections: int = Field(
        default("graphql.max_selections"),
        ge=1,
        le=1_000_000,
        description="Most selections in one document's operations, fragments expanded.",
    )
    max_field_comparisons: int = Field(
        default("graphql.max_field_comparisons"),
        ge=100,
        le=10_000_000,
        description="Budget of graphql-core's overlapping-fields check (two steps per pair of fields compared).",
    )
    max_batch_size: int = Field(
        default("graphql.max_batch_size"), ge=1, le=1000, description="Most operations in one batched POST."
    )
    limit_refusal_delay_ms: float = Field(
        50,
        ge=0,
        le=5000,
        description="A request refused for a limit (QUERY_LIMIT_EXCEEDED, REQUEST_TOO_LARGE) is answered after "
        "this long: a client looping on hostile documents gets one answer per connection per delay (0: at once).",
    )
    introspection: bool = Field(True, description="Allow __schema / __type queries.")
    suggestions: bool = Field(
        False,
        description="Add graphql-core's \"Did you mean ...?\" to errors for unknown names (off: OWASP's advice; "
        "the demo turns it on).",
    )
    max_depth: int = Field(
        default("graphql.max_depth"), ge=1, le=100, description="Deepest field nesting, fragments expanded."
    )
    max_aliases: int = Field(
        default("graphql.max_aliases"), ge=0, le=10_000, description="Most aliased fields in one document."
    )
    max_root_fields: int = Field(
        default("graphql.max_root_fields"),
        ge=1,
        le=1000,
        description="Most fields at the root and in department namespaces.",
    )
    max_cost: int = Field(
        default("graphql.max_cost"),
        ge=1,
        description="Most rows a query may ask for: page sizes multiplied down each nesting.",
    )
    document_cache_size: int = Field(1000, ge=0, le=1_000_000, description="Parsed, validated documents kept.")
    plan_cache_size: int = Field(1000, ge=0, le=1_000_000, description="Plans kept.")

    @model_validator(mode="after")
    def _page_sizes(self) -> GraphQLSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self


class GraphiQLSettings(FileRelative):
    """The GraphiQL page served to browsers at ``GET /graphql``."""

    enabled: bool = True
    assets_dir: str | None = Field(
        None,
        description="A folder holding GraphiQL's assets (`fedgate graphiql-assets DIR` fills it), served at "
        "/graphiql-assets and used by the page: all a closed network needs.",
    )
    assets_url: str | None = Field(
        None,
        pattern=r"^(https?://[^\s\"'<>]+|/[^\s\"'<>]*)$",
        description="Base URL of an npm-style asset tree (react@.../umd, graphiql@...) to load the assets from "
        "instead: a mirror. Default: /graphiql-assets with assets_dir, else https://unpkg.com.",
    )

    @property
    def assets_path(self) -> Path | None:
        return None if self.assets_dir is None else self.resolve_path(self.assets_dir)

    @property
    def assets_base(self) -> str:
        """Where the page loads its assets from."""
        if self.assets_url is not None:
            return self.assets_url
        return LOCAL_ASSETS_PATH if self.assets_dir is not None else PUBLIC_ASSETS_URL


class ExecutionSettings(StrictModel):
    """How requests are executed."""

    request_timeout_seconds: float = Field(15.0, gt=0, le=600, description="Deadline for a whole request.")


class LoggingSettings(StrictModel):
    """Structured logs on standard error."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class PolicySettings(FileRelative):
    """Which policy file applies, and how the schema reflects it."""

    file: str | None = Field(None, description="The policy file (scopes and grants), relative to this file.")
    schema_visibility: Literal["scoped", "full"] = Field(
        "scoped",
        description="scoped: each caller's schema (and introspection) shows only what their scopes grant. "
        "full: everyone sees the whole catalog; fields outside the caller's grants are refused.",
    )
    explain_scope: str = Field(
        "fedgate:explain", description="Scope that may see query plans (extensions.plan) and needs no grants."
    )
    forbidden_fields: Literal["reject", "null"] = Field(
        "reject",
        description="With schema_visibility full: reject a query naming a field outside the caller's grants, "
        "or answer null at that path with a FORBIDDEN_COLUMN error.",
    )
    secret_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable holding the policy's master secret."
    )
    secret_file: str | None = Field(None, description="File holding the master secret (generated on first run).")
    pseudonym_recipient: str = Field(
        "client_id", description="Principal attribute naming the recipient a pseudonym key is derived for."
    )

    @model_validator(mode="after")
    def _null_needs_full(self) -> PolicySettings:
        if self.forbidden_fields == "null" and self.schema_visibility != "full":
            raise ValueError("forbidden_fields: null needs schema_visibility: full (hidden fields cannot be asked for)")
        return self

    @model_validator(mode="after")
    def _one_secret(self) -> PolicySettings:
        if self.secret_env is not None and self.secret_file is not None:
            raise ValueError("set secret_env or secret_file, not both: which secret applies must not be a guess")
        return self

    @property
    def path(self) -> Path | None:
        return None if self.file is None else self.resolve_path(self.file)

    @property
    def secret_path(self) -> Path | None:
        return None if self.secret_file is None else self.resolve_path(self.secret_file)


class Settings(FileRelative):
    """The whole settings file."""

    catalog: str = Field(description="The catalog file, relative to this file.")
    server: ServerSettings = Field(default_factory=ServerSettings)
    graphql: GraphQLSettings = Field(default_factory=GraphQLSettings)
    graphiql: GraphiQLSettings = Field(default_factory=GraphiQLSettings)
    cors: CORSSettings = Field(default_factory=CORSSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings, validate_default=True)
    policy: PolicySettings = Field(default_factory=PolicySettings, validate_default=True)
    purposes: PurposeSettings = Field(default_factory=PurposeSettings)
    agreements: AgreementSettings = Field(default_factory=AgreementSettings, validate_default=True)
    audit: AuditSettings = Field(default_factory=AuditSettings, validate_default=True)
    dev_issuer: DevIssuerSettings | None = None

    @field_validator("auth")
    @classmethod
    def _some_way_to_verify(cls, auth: AuthSettings) -> AuthSettings:
        if auth.enabled and not auth.issuers and auth.introspection is None:
            raise ValueError("authentication is on (the default) but no issuer or introspection endpoint is named")
        return auth

    @field_validator("policy")
    @classmethod
    def _a_policy_when_authenticating(cls, policy: PolicySettings, info: ValidationInfo) -> PolicySettings:
        auth = info.data.get("auth")
        if auth is None or not auth.enabled:
            return policy
        if policy.file is None:
            raise ValueError("authentication is on (the default), so policy.file must name the scopes file")
        available = auth.principal_attributes()
        if policy.pseudonym_recipient not in available:
            raise ValueError(
                f"pseudonym_recipient '{policy.pseudonym_recipient}' is not an attribute any issuer maps; "
                f"principals carry: {', '.join(sorted(available))}"
            )
        return policy

    @field_validator("agreements")
    @classmethod
    def _agreements_when_authenticating(cls, agreements: AgreementSettings, info: ValidationInfo) -> AgreementSettings:
        auth = info.data.get("auth")
        if auth is None or not auth.enabled:
            return agreements
        if agreements.required and agreements.folder is None:
            raise ValueError(
                "authentication is on, so agreements.folder must name the folder of information sharing agreements "
                "(or set agreements.required: false where scopes alone decide, as inside one organisation)"
            )
        available = auth.principal_attributes()
        if agreements.folder is not None and agreements.organisation_attribute not in available:
            raise ValueError(
                f"organisation_attribute '{agreements.organisation_attribute}' is not an attribute any issuer maps; "
                f"principals carry: {', '.join(sorted(available))}"
            )
        return agreements

    @field_validator("audit")
    @classmethod
    def _audit_when_authenticating(cls, audit: AuditSettings, info: ValidationInfo) -> AuditSettings:
        auth = info.data.get("auth")
        if auth is None or not auth.enabled or not audit.enabled:
            return audit
        if audit.store is None:
            raise ValueError(
                "authentication is on, so audit.store must name where every disclosure is recorded (sqlite or "
                "postgres), or audit.enabled: false where nothing may be recorded"
            )
        if audit.signing_key_file is None and audit.signing_key_env is None:
            raise ValueError("audit.signing_key_file or audit.signing_key_env must name the key that signs checkpoints")
        if audit.signing_key_file is not None and audit.signing_key_env is not None:
            raise ValueError("set signing_key_file or signing_key_env, not both")
        return audit

    @property
    def catalog_path(self) -> Path:
        return self.resolve_path(self.catalog)


def load_settings(path: Path) -> Settings:
    """Load and validate a settings file; raise :class:`~gateway.errors.ConfigError` listing every problem."""
    return read_settings(path)[0]


def read_settings(path: Path) -> tuple[Settings, ConfigDocument]:
    """The settings and the document they were read from (to place later problems at their key and line)."""
    document = load_yaml(path)
    return validate(Settings, document, {"base_dir": path.resolve().parent}), document
