"""HTTP departments in the catalog: what is refused at load time, TLS with a private CA, and looping pages."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError
from schema.catalog import Catalog, load_catalog
from tests.conftest import run, started_gateway
from tests.support.http_clinic import clinic_rest_api, http_catalog_data, write_http_catalog
from tests.support.rest_api import RestApi
from tests.support.servers import _Server, free_port, serving

URLS = {"clinic": "http://127.0.0.1:9/clinic", "council": "http://127.0.0.1:9/council"}


def _load(tmp_path: Path, kind: str, edit: Callable[[dict[str, Any]], None], **source: Any) -> Catalog:
    data = http_catalog_data(kind, URLS, **source)
    edit(data)
    return load_catalog(write_http_catalog(tmp_path, data))


def _problems(tmp_path: Path, kind: str, edit: Callable[[dict[str, Any]], None], **source: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, kind, edit, **source)
    return "\n".join(str(issue) for issue in raised.value.issues)


def _people(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return dict(data["departments"][0]["tables"][0][kind])


def test_both_http_catalogs_load(tmp_path: Path) -> None:
    assert _load(tmp_path, "rest", lambda data: None).department("clinic").source.kind == "rest"
    assert _load(tmp_path, "graphql", lambda data: None).department("council").source.kind == "graphql"


def test_every_table_needs_its_mapping_and_only_its_own(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        people = data["departments"][0]["tables"][0]
        people["graphql"] = {"field": "people"}
        del data["departments"][0]["tables"][1]["rest"]

    problems = _problems(tmp_path, "rest", edit)
    assert "tables[people].graphql: 'graphql' applies only to tables of a graphql department, not rest" in problems
    assert "tables[visits]: a table of a rest department needs 'rest'" in problems


def test_mappings_name_real_columns_ranges_need_ordered_types_parameters_are_unique(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        rest = data["departments"][0]["tables"][0]["rest"]
        rest["fields"]["nickname"] = "name.nick"
        rest["filters"] += [
            {"column": "given_name", "operator": "gt", "param": "after"},
            {"column": "nobody", "param": "who"},
            {"column": "person_id", "param": "page"},
        ]

    problems = _problems(tmp_path, "rest", edit)
    assert "rest.fields.nickname: 'nickname' is not a column of people" in problems
    assert "filters[7].operator: 'gt' cannot be pushed on string column 'given_name'" in problems
    assert "filters[8].column: 'nobody' is not a column of people" in problems
    assert "filters[9].param: parameter 'page' is set twice" in problems


def test_graphql_arguments_types_and_selections_are_checked(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        graphql = data["departments"][0]["tables"][0]["graphql"]
        graphql["arguments"] += [
            {"column": "person_id", "operator": "in", "argument": "where", "type": "[String!]!"},
            {"column": "born", "operator": "gte", "argument": "bornAfter", "type": "[Date!]"},
        ]
        graphql["fields"]["family_name"] = "name"

    problems = _problems(tmp_path, "graphql", edit)
    assert "arguments[4].argument: argument 'where' is set twice or inside another one" in problems
    assert "arguments[0].argument: argument 'where.personId.eq' is set twice or inside another one" in problems
    assert "arguments[5].type: 'gte' needs a single value's type, not [Date!]" in problems
    assert "arguments[1].type" not in problems  # a list type for 'in' is right
    assert "fields.family_name: field 'name' is selected twice or inside another" in problems
    assert "fields.given_name: field 'name.given' is selected twice or inside another" in problems


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ({"base_url": "https://user:secret@api.example/v1"}, "credentials cannot be part of the URL"),
        ({"base_url": "https://api.example/v1?key=abc"}, "cannot have a query string"),
        ({"headers": {"Authorization": "Bearer abc"}}, "header 'Authorization' cannot be set here"),
        ({"headers": {"Accept-Encoding": "br"}}, "header 'Accept-Encoding' is set by fedgate"),
        ({"max_response_bytes": 10}, "greater than or equal to 1024"),
        ({"credential": {"kind": "bearer", "token": "abc"}}, "credential.token: unknown key"),
        (
            {
                "credential": {
                    "kind": "token_exchange",
                    "token_url": "https://idp/t",
                    "client_id": "f",
                    "client_secret_env": "X_SECRET",
                }
            },
            "audience",
        ),
    ],
)
def test_sources_refuse_secrets_in_files_and_silly_caps(tmp_path: Path, source: dict[str, Any], reason: str) -> None:
    problems = _problems(tmp_path, "rest", lambda data: None, **source)
    assert reason in problems
    assert "secret@" not in problems and "Bearer abc" not in problems


def test_a_missing_secret_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    problems = _problems(
        tmp_path, "rest", lambda data: None, credential={"kind": "bearer", "token_env": "NOT_SET_ANYWHERE"}
    )
    assert "environment variable NOT_SET_ANYWHERE is not set" in problems


# --- TLS with a private certificate authority --------------------------------------------------------


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 it signed: (CA file, certificate file, key file)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedgate test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@contextlib.asynccontextmanager
async def _serving_tls(api: RestApi, certificate: Path, key: Path) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(api.app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                            ssl_certfile=str(certificate), ssl_keyfile=str(key))  # fmt: skip
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.01)
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_tls_is_verified_against_the_ca_file(tmp_path: Path) -> None:
    _, certificate, key = _certificates(tmp_path)
    api = clinic_rest_api()
    async with _serving_tls(api, certificate, key) as url:
        urls = {"clinic": f"{url}/clinic", "council": f"{url}/council"}
        trusted = load_catalog(write_http_catalog(tmp_path, http_catalog_data("rest", urls, ca_file="ca.pem")))
        untrusted = load_catalog(write_http_catalog(tmp_path, http_catalog_data("rest", urls)))
        missing = load_catalog(write_http_catalog(tmp_path, http_catalog_data("rest", urls, ca_file="nowhere.pem")))
        answers = {}
        for name, catalog in (("trusted", trusted), ("untrusted", untrusted), ("missing", missing)):
            gateway = await started_gateway(catalog)
            try:
                answers[name] = await run(gateway, '{ clinic { person(personId: "p01") { givenName } } }')
            finally:
                await gateway.stop()
    assert answers["trusted"].errors == []
    assert answers["trusted"].data == {"clinic": {"person": {"givenName": "alice"}}}
    assert answers["untrusted"].errors[0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    assert answers["missing"].errors[0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    assert "ca_file" in answers["missing"].errors[0]["message"]


async def test_pages_that_go_round_in_circles_are_refused(tmp_path: Path) -> None:
    api = clinic_rest_api()
    async with serving(api.app) as url:
        data = http_catalog_data("rest", {"clinic": f"{url}/clinic", "council": f"{url}/council"})
        gateway = await started_gateway(load_catalog(write_http_catalog(tmp_path, data)))
        try:
            api.behaviour.raw_body = b'{"items": [], "next": "same-cursor"}'
            response = await run(gateway, "{ council { cases { caseId } } }")
        finally:
            await gateway.stop()
    assert response.errors[0]["extensions"]["code"] == "SOURCE_BAD_RESPONSE"
    assert "round in circles" in response.errors[0]["message"]
    assert len(api.log) == 2
