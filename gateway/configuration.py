"""Everything ``fedgate serve`` needs before it binds a port, loaded and validated by one function.

:func:`load_configuration` is how ``fedgate serve``, each worker of ``serve --workers N``, ``fedgate demo``
and ``fedgate check`` read their configuration: the settings file; the catalog it names, with the
environment variables its sources' passwords and tokens are in; the policy file and its master secret
(strong enough: :data:`~gateway.policy.secrets.MIN_SECRET_BYTES`); the dev issuer and its state file when
it runs; the GraphiQL assets folder; the listening addresses and the number of workers. So what ``check``
passes is what ``serve`` starts: the two cannot drift apart. ``check`` adds its lint (warnings) on top, and
tries the listening addresses the way ``serve`` will bind them.

Every problem is an issue of one :class:`~gateway.errors.ConfigError`, placed at its file, line and key
(a secret file that is not hexadecimal is reported at ``policy.secret_file``), never quoting a secret.
Files generated on first run (the policy secret, the dev issuer's state) are written only by ``serve``
(``create_files``); ``check`` writes nothing and confirms that they could be written.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.http_transport import tls_verify
from gateway.audit.keys import Signer
from gateway.audit.setup import audit_signer
from gateway.auth.dev_config import DevIssuerSettings
from gateway.auth.dev_issuer import DevIssuerState
from gateway.errors import ConfigError, ConfigIssue
from gateway.listening import listening_host
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import Policy, policy_from_settings
from gateway.private_files import exists
from gateway.settings import Settings, read_settings
from schema.catalog import Catalog, read_catalog
from schema.configfile import ConfigDocument, Loc
from schema.http_sources import HttpSource

#: Addresses that mean "every interface": a port there collides with the same port on any address.
_WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - names the wildcard, binds nothing

Problem = Callable[[Loc, str], None]


@dataclass(frozen=True)
class Listener:
    """An address fedgate listens on, and what for ("the gateway")."""

    host: str
    port: int
    what: str


@dataclass(frozen=True)
class Configuration:
    """The validated configuration one gateway process runs with."""

    file: Path
    settings: Settings
    catalog: Catalog
    #: ``None`` with authentication off.
    policy: Policy | None
    #: The development issuer to serve beside the gateway (``fedgate demo``, or ``dev_issuer.enabled``).
    dev_issuer: DevIssuerSettings | None
    host: str
    port: int
    workers: int
    #: The key that signs the audit's checkpoints (``None`` without the audit).
    audit_signer: Signer | None = None

    @property
    def listeners(self) -> tuple[Listener, ...]:
        gateway = Listener(self.host, self.port, "the gateway")
        if self.dev_issuer is None:
            return (gateway,)
        return gateway, Listener(self.dev_issuer.host, self.dev_issuer.port, "the development issuer")


def load_configuration(
    file: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    demo: bool = False,
    create_files: bool = True,
) -> Configuration:
    """Load and validate everything a gateway needs to start, listing every problem in one
    :class:`ConfigError`. ``host``, ``port`` and ``workers`` override the settings (``serve``'s options);
    ``demo`` runs the dev issuer whether or not it is enabled; ``create_files=False`` (``check``) writes
    nothing."""
    settings, document = read_settings(file)
    issues: list[ConfigIssue] = []

    def problem(loc: Loc, reason: str) -> None:
        issues.append(document.issue(loc, reason))

    catalog: Catalog | None = None
    policy: Policy | None = None
    try:
        catalog, catalog_document = read_catalog(settings.catalog_path)
    except ConfigError as error:
        issues.extend(error.issues)
    else:
        issues.extend(_ca_file_problems(catalog, catalog_document))
    secrets = _policy_secrets(settings, problem, create=create_files)
    if catalog is not None:
        try:
            policy = policy_from_settings(settings, catalog, secrets)
        except ConfigError as error:
            issues.extend(error.issues)
    dev_issuer = _dev_issuer(settings, problem, demo=demo, create=create_files)
    signer = None
    try:
        signer = audit_signer(settings)
    except ConfigError as error:
        issues.extend(document.issue(tuple(issue.path.split(".")), issue.reason) for issue in error.issues)
    if host is not None:
        try:
            listening_host(host)
        except ValueError as error:
            issues.append(ConfigIssue("--host", "", str(error)))
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    workers = workers or settings.server.workers
    _check_workers(settings, workers, problem, dev_issuer=dev_issuer is not None)
    _check_listeners(host, port, dev_issuer, problem)
    _check_assets(settings, problem)
    if issues:
        raise ConfigError(issues)
    assert catalog is not None
    return Configuration(file, settings, catalog, policy, dev_issuer, host, port, workers, signer)


def _ca_file_problems(catalog: Catalog, document: ConfigDocument) -> list[ConfigIssue]:
    """An HTTP department's ``ca_file`` must be a PEM bundle this user can read (its adapter reads it)."""
    issues = []
    for index, department in enumerate(catalog.departments):
        source = department.source
        if isinstance(source, HttpSource) and source.ca_file is not None:
            try:
                tls_verify(source)
            except (OSError, ValueError) as error:
                why = "no PEM certificate in it"
                if isinstance(error, OSError) and not isinstance(error, ssl.SSLError) and error.strerror:
                    why = error.strerror
                reason = f"cannot read {source.resolve_path(source.ca_file)} as certificate authorities: {why}"
                issues.append(document.issue(("departments", index, "source", "ca_file"), reason))
    return issues


def _policy_secrets(settings: Settings, problem: Problem, *, create: bool) -> PolicySecrets | None:
    """The configured master secret, when a policy is used and one is configured; else ``None`` (the policy
    then holds a random one, and refuses pseudonym masks)."""
    policy = settings.policy
    if not settings.auth.enabled or policy.file is None:
        return None
    try:
        if policy.secret_env is not None:
            return PolicySecrets.from_environment(policy.secret_env)
        path = policy.secret_path
        return None if path is None else PolicySecrets.from_file(path, create=create)
    except ValueError as error:
        problem(("policy", "secret_env" if policy.secret_env is not None else "secret_file"), str(error))
        return None


def _dev_issuer(settings: Settings, problem: Problem, *, demo: bool, create: bool) -> DevIssuerSettings | None:
    """The dev issuer to run (with its state file read, or created), if it runs at all."""
    issuer = settings.dev_issuer
    if issuer is None:
        if demo:
            problem(("dev_issuer",), "no dev_issuer section: the demo has no issuer to run")
        return None
    if not (demo or issuer.enabled):
        return None
    try:
        if create:
            DevIssuerState.load_or_create(issuer)
        else:
            DevIssuerState.check(issuer)
    except ValueError as error:
        problem(("dev_issuer", "state_file"), str(error))
    return issuer


def _check_workers(settings: Settings, workers: int, problem: Problem, *, dev_issuer: bool) -> None:
    """Several workers must agree on everything a response depends on: refuse what would differ per process."""
    if workers == 1:
        return
    if dev_issuer:
        problem(("dev_issuer",), "the dev issuer runs in one process only: serve one worker")
    policy = settings.policy
    if policy.file is not None and policy.secret_env is None and policy.secret_file is None:
        reason = "several workers need one policy secret (set secret_env or secret_file): a generated secret "
        problem(("policy", "secret_env"), reason + "would give each worker its own pseudonyms")


def _check_listeners(host: str, port: int, dev_issuer: DevIssuerSettings | None, problem: Problem) -> None:
    if dev_issuer is None or dev_issuer.port != port:
        return
    if dev_issuer.host == host or {dev_issuer.host, host} & _WILDCARDS:
        problem(("dev_issuer", "port"), f"the gateway listens on port {port} of {host}: the dev issuer needs another")


def _check_assets(settings: Settings, problem: Problem) -> None:
    """A missing assets folder is only a warning (the page says how to fetch them); a file is a mistake."""
    assets = settings.graphiql.assets_path
    if assets is not None and exists(assets) and not assets.is_dir():
        problem(("graphiql", "assets_dir"), f"{assets} is not a folder")
