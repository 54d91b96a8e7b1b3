"""``fedgate check`` and ``fedgate serve`` agree on every configuration: what check passes, serve starts.

A corpus of broken configurations (the settings file, the catalog, the policy, the policy secret, the
environment variables secrets come from, the files fedgate reads or generates, the issuers, the listening
addresses) is given to both commands, each run as its own process the way an operator runs it. For each,
both refuse with exit code 2 and the same single line, naming the file, the line and the key where there is
a file, and the reason, with no traceback and no secret in it. A corpus of good configurations is checked
clean and then served until the gateway answers on its port.

When the tests run as root, the commands run without the capabilities that let root read and write any
file (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``), as an operator's account would: an unreadable secret
file is then unreadable to them too.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import os
import secrets
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.policy.secrets import MIN_SECRET_BYTES
from schema.catalog import Catalog
from schema.configfile import load_yaml
from tests.support.governance import agreement, write_agreements
from tests.support.http_clinic import http_catalog_data
from tests.support.servers import free_port, healthy

ROOT = Path(__file__).parent.parent
FEDGATE = [sys.executable, "-c", "from gateway.cli import main; main()"]
SECRET_ENV = "FEDGATE_CORPUS_POLICY_SECRET"
AUDIT_KEY_ENV = "FEDGATE_CORPUS_AUDIT_KEY"
AUDIT_KEY = (
    Ed25519PrivateKey.generate()
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
DB_PASSWORD_ENV = "FEDGATE_CORPUS_DB_PASSWORD"
API_SECRET_ENV = "FEDGATE_CORPUS_API_SECRET"
ISSUER = {"issuer": "https://idp.example.test", "audiences": ["fedgate"], "jwks_uri": "https://idp.example.test/jwks",
          "claims": {"attributes": {"org_code": "org"}}}  # fmt: skip
POLICY = {
    "version": 1,
    "scopes": [
        {
            "name": "clinic.names",
            "description": "Names of the clinic's people.",
            "purposes": ["direct_care"],
            "grants": [{"table": "clinic.people", "columns": ["person_id", "given_name"]}],
        }
    ],
}
#: The agreement the good configuration's scope reads under (tests/support/governance.py writes it out).
AGREEMENT = agreement("ISA-NAMES", data_items={"clinic.people": {"columns": ["person_id", "given_name"]}})
HTTP_URLS = {"clinic": "http://127.0.0.1:9/clinic", "council": "http://127.0.0.1:9/council"}
CLIENT = {"id": "app-one", "name": "An app", "scopes": ["clinic.names"]}


# --- one configuration on disk ---------------------------------------------------------------------------


@dataclass
class Setup:
    """A configuration to write: the settings, catalog and policy as data (or as raw bytes), extra files,
    and the environment the commands run in."""

    directory: Path
    settings: dict[str, Any]
    catalog: dict[str, Any]
    policy: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(POLICY))
    agreements: dict[str, dict[str, Any]] = field(default_factory=lambda: {"names.yaml": copy.deepcopy(AGREEMENT)})
    env: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    config: str = "fedgate.yaml"

    def write(self) -> Path:
        write_agreements(self.directory / "agreements", self.agreements)
        for name, data in (
            ("fedgate.yaml", self.settings),
            ("catalog.yaml", self.catalog),
            ("policy.yaml", self.policy),
        ):
            path = self.directory / name
            if not path.is_dir():
                path.write_bytes(self.raw.get(name, yaml.safe_dump(data, sort_keys=False).encode()))
        return self.directory / self.config

    def file(self, name: str) -> Path:
        return self.directory / name

    @property
    def port(self) -> int:
        return int(self.settings["server"]["port"])


def base_setup(directory: Path, catalog: Catalog) -> Setup:
    """A good production-like configuration: a JWT issuer, a policy, its secret in the environment."""
    settings = {
        "catalog": "catalog.yaml",
        "server": {"host": "127.0.0.1", "port": free_port()},
        "auth": {"issuers": [copy.deepcopy(ISSUER)]},
        "policy": {"file": "policy.yaml", "secret_env": SECRET_ENV},
        "agreements": {"folder": "agreements", "watch": False},
        "audit": {"store": {"kind": "sqlite", "path": "audit.sqlite"}, "signing_key_env": AUDIT_KEY_ENV},
        "logging": {"format": "json", "level": "warning"},
    }
    data = catalog.model_dump(mode="json", by_alias=True, exclude_none=True)
    environment = {SECRET_ENV: secrets.token_hex(MIN_SECRET_BYTES), AUDIT_KEY_ENV: AUDIT_KEY}
    return Setup(directory, settings, data, env=environment)


def line_of(path: Path, anchor: str) -> int:
    """The line of ``path`` where ``anchor`` first appears (found here, not by the code under test)."""
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if anchor in line:
            return number
    raise AssertionError(f"{anchor!r} is not in {path}")


# --- running the commands ---------------------------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _as_an_operator() -> None:
    """In the child, before exec: give up root's power to read and write any file (a no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _environment(setup: Setup) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEDGATE")}
    return env | {"PYTHONPATH": str(ROOT), "COLUMNS": "200"} | setup.env


def _start(setup: Setup, config: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FEDGATE, *command, "--config", str(config)],
        cwd=setup.directory,
        env=_environment(setup),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_an_operator,  # the test process is single-threaded here
    )


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _finish(process: subprocess.Popen[str], what: str, timeout: float = 60) -> Outcome:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"{what} did not stop (it should have refused the configuration):\n{stderr}")
    return Outcome(process.returncode, stdout, stderr)


def check_and_serve(setup: Setup) -> tuple[Outcome, Outcome]:
    """Both commands at once (separate processes), each until it exits."""
    config = setup.write()
    check = _start(setup, config, "check")
    serve = _start(setup, config, "serve")
    return _finish(check, "fedgate check"), _finish(serve, "fedgate serve")


@contextlib.contextmanager
def serving(setup: Setup, config: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """``fedgate serve`` until its gateway answers /healthz; stopped (SIGTERM) when the block ends."""
    process = _start(setup, config, "serve", *extra)
    try:
        deadline = time.monotonic() + 45
        while not healthy(setup.port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"fedgate serve did not start:\n{process.communicate()[1]}")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


# --- the corpus of broken configurations --------------------------------------------------------------------


def _put(mapping: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        mapping = mapping.setdefault(key, {})
    mapping[last] = value


def settings(dotted: str, value: Any) -> Callable[[Setup], None]:
    return lambda setup: _put(setup.settings, dotted, value)


def catalog_source(source: dict[str, Any]) -> Callable[[Setup], None]:
    def change(setup: Setup) -> None:
        setup.catalog["departments"][0]["source"] = source

    return change


def http_credential(credential: dict[str, Any]) -> Callable[[Setup], None]:
    """The catalog's departments as REST APIs, the clinic's with ``credential``."""

    def change(setup: Setup) -> None:
        setup.catalog = http_catalog_data("rest", HTTP_URLS)
        setup.catalog["departments"][0]["source"]["credential"] = credential

    return change


def agreement_file(**fields: Any) -> Callable[[Setup], None]:
    """The good agreement with ``fields`` changed."""
    return lambda setup: setup.agreements.__setitem__("names.yaml", {**copy.deepcopy(AGREEMENT), **fields})


def raw(name: str, content: bytes) -> Callable[[Setup], None]:
    return lambda setup: setup.raw.__setitem__(name, content)


def secret_file(
    content: bytes | None = None, *, name: str = "policy-secret", folder: bool = False
) -> Callable[[Setup], None]:
    def change(setup: Setup) -> None:
        setup.settings["policy"] = {"file": "policy.yaml", "secret_file": name}
        if folder:
            (setup.directory / name).mkdir()
        elif content is not None:
            (setup.directory / name).write_bytes(content)

    return change


def unreadable_secret(setup: Setup) -> None:
    secret_file(secrets.token_hex(32).encode())(setup)
    setup.file("policy-secret").chmod(0)


def unwritable_secret_folder(setup: Setup) -> None:
    folder = setup.directory / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    setup.settings["policy"] = {"file": "policy.yaml", "secret_file": "locked/policy-secret"}


def dev_issuer(state: bytes | None = None, *, folder: bool = False, **issuer: Any) -> Callable[[Setup], None]:
    def change(setup: Setup) -> None:
        port = issuer.pop("port", free_port())
        setup.settings["dev_issuer"] = {"enabled": True, "port": port, "state_file": "issuer.json"} | issuer
        setup.settings["dev_issuer"]["clients"] = [CLIENT]
        if folder:
            (setup.directory / "issuer.json").mkdir()
        elif state is not None:
            (setup.directory / "issuer.json").write_bytes(state)

    return change


def on_the_gateways_port(setup: Setup) -> None:
    dev_issuer(port=setup.port)(setup)


def pseudonyms_without_a_secret(setup: Setup) -> None:
    setup.settings["policy"] = {"file": "policy.yaml"}
    setup.policy["scopes"][0]["grants"][0]["masks"] = {"given_name": "pseudonym"}


def unknown_table_in_policy(setup: Setup) -> None:
    setup.policy["scopes"][0]["grants"][0]["table"] = "clinic.nowhere"


def two_workers_without_a_secret(setup: Setup) -> None:
    setup.settings["policy"] = {"file": "policy.yaml"}
    setup.settings["server"]["workers"] = 2


def settings_is_a_folder(setup: Setup) -> None:
    (setup.directory / "settings.d").mkdir()
    setup.config = "settings.d"


def duplicate_issuer(setup: Setup) -> None:
    setup.settings["auth"]["issuers"].append(copy.deepcopy(ISSUER))


def _laughs() -> bytes:
    lines = ["catalog: catalog.yaml", "lol0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"lol{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 8)]
    return "\n".join(lines).encode()


@dataclass(frozen=True)
class Bad:
    """A broken configuration: ``change`` breaks the good one; both commands must say ``reason``, at
    ``file`` (relative to the configuration's folder, or absolute), on the line where ``anchor`` is, at
    ``key``. ``secret``: a value that must not appear in what they print."""

    name: str
    change: Callable[[Setup], None]
    reason: str
    file: str | None = "fedgate.yaml"
    anchor: str | None = None
    key: str | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    secret: str | None = None


SHORT = "s" * (MIN_SECRET_BYTES - 1)
ONE = "#"  # a character no message or path here holds

BAD = [
    # the settings file itself
    Bad("settings: unknown key", settings("shoe_size", 3), "unknown key", anchor="shoe_size", key="shoe_size"),
    Bad("settings: not UTF-8", raw("fedgate.yaml", b"catalog: catalog.yaml\n# caf\xe9\n"), "not UTF-8", anchor="caf"),
    Bad("settings: not YAML", raw("fedgate.yaml", b"catalog: [unclosed\n"), "invalid YAML"),
    Bad("settings: a key twice", raw("fedgate.yaml", b"catalog: a.yaml\ncatalog: b.yaml\n"), "duplicate key"),
    Bad("settings: a folder", settings_is_a_folder, "cannot read file: Is a directory", file="settings.d"),
    Bad("settings: alias loop", raw("fedgate.yaml", b"catalog: c.yaml\nx: &a [*a]\n"), "alias refers to a node"),
    Bad("settings: exploding aliases", raw("fedgate.yaml", _laughs()), "expands to more than 1,000,000 values"),
    Bad("settings: nested too deep", raw("fedgate.yaml", b"x: " + b"[" * 80 + b"]" * 80), "nests more than 64"),
    Bad("settings: missing key", lambda s: s.settings.pop("catalog"), "required key is missing", key="catalog"),
    # listening
    Bad("port 0", settings("server.port", 0), "greater than or equal to 1", anchor="port:", key="server.port"),
    Bad("port not a number", settings("server.port", "http"), "valid integer", anchor="port:", key="server.port"),
    Bad("host not an address", settings("server.host", "999.1.1.1"), "not an IP address", anchor="host:"),
    Bad(
        "host not this machine's",
        settings("server.host", "192.0.2.1"),
        "192.0.2.1 is not an address of this machine",
        file=None,
    ),
    Bad(
        "two workers, no secret",
        two_workers_without_a_secret,
        "several workers need one policy secret",
        anchor="file: policy.yaml",
        key="policy.secret_env",
    ),
    # other settings
    Bad(
        "page sizes inverted",
        settings("graphql.default_page_size", 5000),
        "must not exceed max_page_size",
        key="graphql",
    ),
    Bad("CORS wildcard", settings("cors.allow_origins", ["*"]), "should match pattern", key="cors.allow_origins[0]"),
    Bad(
        "assets folder is a file",
        settings("graphiql.assets_dir", "policy.yaml"),
        "policy.yaml is not a folder",
        anchor="assets_dir",
        key="graphiql.assets_dir",
    ),
    # the catalog
    Bad("catalog missing", settings("catalog", "nowhere.yaml"), "cannot read file: No such file", file="nowhere.yaml"),
    Bad(
        "catalog: not UTF-8",
        raw("catalog.yaml", b"version: 1\ndepartments: []\n\xff\n"),
        "not UTF-8",
        file="catalog.yaml",
        anchor="\ufffd",
    ),
    Bad(
        "catalog: unknown column type",
        lambda s: s.catalog["departments"][0]["tables"][0]["columns"][0].update(type="money"),
        "Input should be",
        file="catalog.yaml",
        anchor="money",
    ),
    Bad(
        "password_env unset",
        catalog_source({"kind": "postgres", "database": "x", "user": "y", "password_env": DB_PASSWORD_ENV}),
        f"environment variable {DB_PASSWORD_ENV} is not set",
        file="catalog.yaml",
        anchor="password_env",
        key="departments[clinic].source.password_env",
    ),
    Bad(
        "password_env empty",
        catalog_source({"kind": "mysql", "database": "x", "user": "y", "password_env": DB_PASSWORD_ENV}),
        f"environment variable {DB_PASSWORD_ENV} is empty",
        file="catalog.yaml",
        anchor="password_env",
        env={DB_PASSWORD_ENV: ""},
    ),
    Bad(
        "token_env unset",
        http_credential({"kind": "bearer", "token_env": API_SECRET_ENV}),
        f"{API_SECRET_ENV} is not set",
        file="catalog.yaml",
        anchor="token_env",
        key="departments[clinic].source.credential.token_env",
    ),
    Bad(
        "client_secret_env unset",
        http_credential(
            {
                "kind": "client_credentials",
                "token_url": "https://idp.example.test/t",
                "client_id": "f",
                "client_secret_env": API_SECRET_ENV,
            }
        ),
        f"{API_SECRET_ENV} is not set",
        file="catalog.yaml",
        anchor="client_secret_env",
        key="departments[clinic].source.credential.client_secret_env",
    ),
    Bad(
        "ca_file missing",
        lambda s: (
            http_credential({"kind": "none"})(s) or s.catalog["departments"][0]["source"].update(ca_file="ca.pem")
        ),
        "ca.pem as certificate authorities: No such file or directory",
        file="catalog.yaml",
        anchor="ca_file",
        key="departments[clinic].source.ca_file",
    ),
    Bad(
        "ca_file not PEM",
        lambda s: (
            http_credential({"kind": "none"})(s) or s.catalog["departments"][0]["source"].update(ca_file="policy.yaml")
        ),
        "policy.yaml as certificate authorities: no PEM certificate in it",
        file="catalog.yaml",
        anchor="ca_file",
        key="departments[clinic].source.ca_file",
    ),
    # the policy secret
    Bad(
        "secret_env unset",
        lambda s: None,
        f"environment variable {SECRET_ENV} is not set",
        anchor="secret_env",
        key="policy.secret_env",
        env={SECRET_ENV: None},
    ),
    Bad(
        "secret_env 1 byte",
        lambda s: None,
        "holds 1 byte(s) of key material; the policy secret needs at least 32",
        anchor="secret_env",
        key="policy.secret_env",
        env={SECRET_ENV: ONE},
        secret=ONE,
    ),
    Bad(
        "secret_env 31 bytes",
        lambda s: None,
        "holds 31 byte(s)",
        anchor="secret_env",
        key="policy.secret_env",
        env={SECRET_ENV: SHORT},
        secret=SHORT,
    ),
    Bad(
        "secret_file not hex",
        secret_file(b"correct horse battery staple, not hex at all\n"),
        "does not hold the secret as hexadecimal digits",
        anchor="secret_file",
        key="policy.secret_file",
        secret="horse",
    ),
    Bad(
        "secret_file binary",
        secret_file(secrets.token_bytes(64) + b"\xff"),
        "hexadecimal digits",
        anchor="secret_file",
        key="policy.secret_file",
    ),
    Bad(
        "secret_file 16 bytes",
        secret_file(b"00112233445566778899aabbccddeeff\n"),
        "holds 16 byte(s) of key material",
        anchor="secret_file",
        key="policy.secret_file",
        secret="00112233",
    ),
    Bad(
        "secret_file a folder",
        secret_file(folder=True),
        "policy-secret is a folder, not a file",
        anchor="secret_file",
        key="policy.secret_file",
    ),
    Bad("secret_file unreadable", unreadable_secret, "cannot read", anchor="secret_file", key="policy.secret_file"),
    Bad(
        "secret_file a device",
        secret_file(name="/dev/zero"),
        "/dev/zero is not a regular file",
        anchor="secret_file",
        key="policy.secret_file",
    ),
    Bad(
        "secret_file under a file",
        secret_file(name="policy.yaml/secret"),
        "policy.yaml is not a folder",
        anchor="secret_file",
        key="policy.secret_file",
    ),
    Bad(
        "secret_file in a locked folder",
        unwritable_secret_folder,
        "this user may not write to",
        anchor="secret_file",
        key="policy.secret_file",
    ),
    Bad(
        "two secrets",
        settings("policy.secret_file", "policy-secret"),
        "set secret_env or secret_file, not both",
        anchor="file: policy.yaml",
        key="policy",
    ),
    # the audit
    Bad(
        "audit: no store",
        settings("audit.store", None),
        "audit.store must name where every disclosure is recorded",
        anchor="store:",
        key="audit",
    ),
    Bad(
        "audit: no key",
        settings("audit.signing_key_env", None),
        "must name the key that signs checkpoints",
        anchor="store:",
        key="audit",
    ),
    Bad(
        "audit: key unset",
        lambda setup: None,
        f"{AUDIT_KEY_ENV} is not set",
        anchor="signing_key_env:",
        key="audit.signing_key_env",
        env={AUDIT_KEY_ENV: None},
    ),
    Bad(
        "audit: key not PEM",
        lambda setup: None,
        "not a PEM private key",
        anchor="signing_key_env:",
        key="audit.signing_key_env",
        env={AUDIT_KEY_ENV: "not a key"},
        secret="not a key",
    ),
    Bad(
        "audit: not an Ed25519 key",
        lambda setup: None,
        "must be an Ed25519 key",
        anchor="signing_key_env:",
        key="audit.signing_key_env",
        env={
            AUDIT_KEY_ENV: generate_private_key(SECP256R1())
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode()
        },
    ),
    # the agreements
    Bad(
        "agreements folder missing",
        settings("agreements.folder", "nowhere"),
        "the agreements folder does not exist",
        file=None,
    ),
    Bad(
        "agreements not configured",
        settings("agreements", {}),
        "agreements.folder must name the folder",
        anchor="agreements:",
        key="agreements",
    ),
    Bad(
        "agreement: unknown column",
        agreement_file(data_items={"clinic.people": {"columns": ["person_id", "shoe_size"]}}),
        "column 'shoe_size' does not exist in clinic.people",
        file="agreements/names.yaml",
        anchor="shoe_size",
        key="data_items.clinic.people.columns[1]",
    ),
    Bad(
        "agreement: unknown purpose",
        agreement_file(purposes=["marketing"]),
        "not in the purpose vocabulary",
        file="agreements/names.yaml",
        anchor="marketing",
        key="purposes[0]",
    ),
    Bad(
        "agreement: no timezone",
        agreement_file(starts="2025-01-01T00:00:00"),
        "timezone",
        file="agreements/names.yaml",
        anchor="starts",
        key="starts",
    ),
    Bad(
        "scope: unknown purpose",
        lambda setup: setup.policy["scopes"][0].__setitem__("purposes", ["marketing"]),
        "'marketing' is not in the purpose vocabulary",
        file="policy.yaml",
        anchor="marketing",
        key="scopes[clinic.names].purposes[0]",
    ),
    # the policy
    Bad(
        "policy missing", settings("policy.file", "nowhere.yaml"), "cannot read file: No such file", file="nowhere.yaml"
    ),
    Bad(
        "policy: not UTF-8",
        raw("policy.yaml", b"version: 1\nscopes: []\n# \xfe\n"),
        "not UTF-8",
        file="policy.yaml",
        anchor="# ",
    ),
    Bad(
        "policy: unknown table",
        unknown_table_in_policy,
        "table 'clinic.nowhere' is not in the catalog",
        file="policy.yaml",
        anchor="clinic.nowhere",
        key="scopes[clinic.names].grants[0].table",
    ),
    Bad(
        "pseudonyms, no secret",
        pseudonyms_without_a_secret,
        "pseudonyms need a stable secret",
        file="policy.yaml",
        anchor="given_name: pseudonym",
    ),
    Bad(
        "recipient unmapped",
        settings("policy.pseudonym_recipient", "team_code"),
        "pseudonym_recipient 'team_code' is not an attribute any issuer maps",
        key="policy",
    ),
    # issuers
    Bad("auth without issuers", settings("auth", {}), "no issuer or introspection endpoint is named", key="auth"),
    Bad("issuer twice", duplicate_issuer, "issuer https://idp.example.test is listed twice", key="auth.issuers"),
    Bad(
        "issuer not a URL",
        settings("auth.issuers", [{"issuer": "corporate-idp", "audiences": ["fedgate"]}]),
        "issuer is not a URL",
        key="auth.issuers[0]",
    ),
    Bad(
        "issuer discovered over http",
        settings("auth.issuers", [{"issuer": "http://idp.example.test", "audiences": ["fedgate"]}]),
        "must be an https URL",
        key="auth.issuers[0]",
    ),
    Bad(
        "keys over http",
        settings("auth.issuers", [ISSUER | {"jwks_uri": "http://idp.example.test/jwks"}]),
        "jwks_uri (where the signing keys come from) must be an https URL",
        anchor="jwks_uri",
        key="auth.issuers[0].jwks_uri",
    ),
    Bad(
        "introspection over http",
        settings(
            "auth.introspection",
            {"endpoint": "http://idp.example.test/i", "client_id": "f", "client_secret_env": API_SECRET_ENV},
        ),
        "introspection endpoint",
        anchor="endpoint",
        key="auth.introspection.endpoint",
        env={API_SECRET_ENV: "s3cret-value"},
        secret="s3cret-value",
    ),
    Bad(
        "introspection secret unset",
        settings(
            "auth.introspection",
            {"endpoint": "https://idp.example.test/i", "client_id": "f", "client_secret_env": API_SECRET_ENV},
        ),
        f"{API_SECRET_ENV} is not set",
        anchor="client_secret_env",
        key="auth.introspection.client_secret_env",
    ),
    # the dev issuer
    Bad(
        "dev issuer state not JSON",
        dev_issuer(b"{ not json"),
        "issuer.json is not the JSON fedgate writes",
        anchor="state_file",
        key="dev_issuer.state_file",
    ),
    Bad(
        "dev issuer state a folder",
        dev_issuer(folder=True),
        "issuer.json is a folder",
        anchor="state_file",
        key="dev_issuer.state_file",
    ),
    Bad(
        "dev issuer state without a key",
        dev_issuer(b'{"key": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "clients": {}}'),
        "does not hold a private RSA signing key",
        anchor="state_file",
        key="dev_issuer.state_file",
    ),
    Bad(
        "dev issuer on the gateway's port", on_the_gateways_port, "the dev issuer needs another", key="dev_issuer.port"
    ),
    Bad(
        "dev issuer, two workers",
        lambda s: (
            dev_issuer()(s),
            _put(s.settings, "policy.secret_env", SECRET_ENV),
            _put(s.settings, "server.workers", 2),
        ),
        "the dev issuer runs in one process only",
        anchor="enabled: true",
        key="dev_issuer",
    ),
    Bad(
        "dev issuer host",
        dev_issuer(host="not a host"),
        "not an IP address",
        anchor="host: not a host",
        key="dev_issuer.host",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.name)
def test_check_and_serve_refuse_alike(case: Bad, sqlite_clinic: Catalog, tmp_path: Path) -> None:
    setup = base_setup(tmp_path, sqlite_clinic)
    case.change(setup)
    for name, value in case.env.items():
        if value is None:
            setup.env.pop(name, None)
        else:
            setup.env[name] = value
    check, serve = check_and_serve(setup)
    for outcome, command in ((check, "check"), (serve, "serve")):
        assert outcome.code == 2, f"fedgate {command}: exit {outcome.code}\n{outcome.stderr}{outcome.stdout}"
        assert "Traceback" not in outcome.stderr + outcome.stdout
        assert len(outcome.lines) == 1, f"fedgate {command} said:\n{outcome.stderr}"
    assert check.lines == serve.lines
    (line,) = check.lines
    assert line.startswith("fedgate: "), line
    assert case.reason in line, line
    if case.file is not None:
        path = case.file if case.file.startswith("/") else str(tmp_path / case.file)
        where = f"{path}:{line_of(Path(path), case.anchor)}: " if case.anchor else f"{path}"
        assert where in line, line
    if case.key is not None:
        assert f": {case.key}: " in line, line
    for value in (case.secret, setup.env.get(SECRET_ENV)):
        if value:
            assert value not in check.stderr + check.stdout + serve.stderr + serve.stdout


# --- the corpus of good configurations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Good:
    name: str
    change: Callable[[Setup], None]
    serve_options: tuple[str, ...] = ()


def generated_secret(setup: Setup) -> None:
    setup.settings["policy"] = {"file": "policy.yaml", "secret_file": "data/policy-secret"}


GOOD = [
    Good("secret in the environment", lambda s: None),
    Good("secret file to generate", generated_secret),
    Good("secret file of 32 bytes", secret_file(secrets.token_hex(MIN_SECRET_BYTES).encode() + b"\n")),
    Good("authentication off", lambda s: s.settings.update(auth={"enabled": False}, policy={})),
    Good(
        "pseudonyms with a secret",
        lambda s: s.policy["scopes"][0]["grants"][0].update(masks={"given_name": "pseudonym"}),
    ),
    Good("assets folder not fetched yet", settings("graphiql.assets_dir", "assets")),
    Good("dev issuer enabled", dev_issuer()),
    Good(
        "a database password",
        lambda s: (
            catalog_source(
                {"kind": "postgres", "database": "nowhere", "user": "postgres", "password_env": DB_PASSWORD_ENV}
            )(s),
            s.env.update({DB_PASSWORD_ENV: "pw"}),
        ),
    ),
    Good(
        "an API token",
        lambda s: (
            http_credential({"kind": "bearer", "token_env": API_SECRET_ENV})(s),
            s.env.update({API_SECRET_ENV: "t"}),
        ),
    ),
    Good(
        "introspection",
        lambda s: (
            settings(
                "auth.introspection",
                {"endpoint": "https://idp.example.test/i", "client_id": "f", "client_secret_env": API_SECRET_ENV},
            )(s),
            s.env.update({API_SECRET_ENV: "c"}),
        ),
    ),
    Good("two workers", lambda s: None, ("--workers", "2")),
]


@pytest.mark.parametrize("case", GOOD, ids=lambda case: case.name)
def test_what_check_passes_serve_starts(case: Good, sqlite_clinic: Catalog, tmp_path: Path) -> None:
    setup = base_setup(tmp_path, sqlite_clinic)
    case.change(setup)
    config = setup.write()
    check = _finish(_start(setup, config, "check"), "fedgate check")
    assert check.code == 0, check.stderr + check.stdout
    assert "checked: 2 departments, 3 tables" in check.stdout
    assert "Traceback" not in check.stderr
    written = sorted(path.name for path in tmp_path.rglob("*"))
    with serving(setup, config, *case.serve_options):
        if case.name == "dev issuer enabled":
            issuer = setup.settings["dev_issuer"]["port"]
            metadata = httpx.get(f"http://127.0.0.1:{issuer}/.well-known/openid-configuration", timeout=5)
            assert metadata.status_code == 200
    generated = {
        "secret file to generate": tmp_path / "data" / "policy-secret",
        "dev issuer enabled": setup.file("issuer.json"),
    }
    if case.name in generated:  # check wrote nothing; serve generated the file, private
        path = generated[case.name]
        assert path.name not in written
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    if case.name == "secret file to generate":
        assert len(bytes.fromhex(generated[case.name].read_text())) >= MIN_SECRET_BYTES


def test_check_warns_of_a_port_in_use_at_the_moment(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    """A taken port is the machine's state, not the configuration's: a warning (an error with --strict)."""
    setup = base_setup(tmp_path, sqlite_clinic)
    with socket.create_server(("127.0.0.1", 0)) as held:
        setup.settings["server"]["port"] = held.getsockname()[1]
        config = setup.write()
        check = _finish(_start(setup, config, "check"), "fedgate check")
        strict = _finish(_start(setup, config, "check", "--strict"), "fedgate check --strict")
        serve = _finish(_start(setup, config, "serve"), "fedgate serve")
    port = setup.port
    assert check.code == 0 and f"port {port} on 127.0.0.1 is already in use" in check.stdout, check.stdout
    assert strict.code == 1
    assert serve.code == 2 and f"port {port} on 127.0.0.1 is already in use" in serve.stderr


def test_aliases_that_do_not_loop_still_load(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("a: &shared {x: 1}\nb: *shared\nc: [*shared, *shared]\n")
    assert load_yaml(path).data == {"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 1}]}
