"""``fedgate serve --workers N``: several processes on one port, and what they must agree on."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import yaml
from uvicorn.config import STARTUP_FAILURE

from gateway.serving import app_from_environment
from gateway.settings import CONFIG_ENV
from schema.catalog import Catalog
from tests.support.servers import fedgate_serve, free_port, wait_until_healthy, worker_pids


def _write(directory: Path, catalog: Catalog, **settings: object) -> Path:
    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True, exclude_none=True)))
    document = {
        "catalog": str(catalog_file),
        "logging": {"format": "json", "level": "warning"},
        "purposes": {"required": False},
        "agreements": {"required": False},
        "audit": {"enabled": False},
        **settings,
    }
    path = directory / "fedgate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_two_workers_share_the_port_and_answer(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    config = _write(tmp_path, sqlite_clinic, auth={"enabled": False})
    port = free_port()
    process = fedgate_serve(config, port, "--workers", "2")
    try:
        wait_until_healthy(process, port)
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < 2 and time.monotonic() < deadline:  # the second worker may lag
            time.sleep(0.2)
        assert len(worker_pids(process.pid)) == 2
        with httpx.Client() as client:
            answers = [
                client.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": '{ clinic { person(personId: "p03") { personId } } }'},
                )
                for _ in range(20)
            ]
        assert {answer.status_code for answer in answers} == {200}
        assert all(answer.json()["data"]["clinic"]["person"] == {"personId": "p03"} for answer in answers)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0


def test_several_workers_need_a_configured_policy_secret(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({"version": 1, "scopes": []}))
    issuer = {"issuer": "https://idp.example.test", "audiences": ["fedgate"], "jwks_uri": "https://idp.example.test/k"}
    config = _write(tmp_path, sqlite_clinic, auth={"issuers": [issuer]}, policy={"file": "policy.yaml"})
    process = fedgate_serve(config, free_port(), "--workers", "2")
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 2
    assert "policy.secret_env" in output and "several workers need one policy secret" in output


def test_the_dev_issuer_is_never_served_by_several_workers(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    issuer = {"issuer": "http://127.0.0.1:8001", "audiences": ["fedgate"], "jwks_uri": "http://127.0.0.1:8001/k"}
    client = {"id": "app-one", "name": "An app", "scopes": ["clinic.read"]}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({"version": 1, "scopes": []}))
    config = _write(
        tmp_path,
        sqlite_clinic,
        auth={"issuers": [issuer]},
        policy={"file": "policy.yaml", "secret_file": "policy-secret"},
        dev_issuer={"enabled": True, "clients": [client]},
    )
    process = fedgate_serve(config, free_port(), "--workers", "3")
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 2
    assert "dev_issuer" in output and "one process only" in output


def test_a_worker_finding_a_broken_configuration_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parent validated the files before binding; should one be broken by the time a worker loads it,
    the worker says why in one line and exits with uvicorn's start-up failure code, which stops the parent
    (instead of uvicorn restarting the worker again and again)."""
    config = tmp_path / "fedgate.yaml"
    config.write_text("catalog: nowhere.yaml\nauth: {enabled: false}\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    with pytest.raises(SystemExit) as exit_:
        app_from_environment()
    assert exit_.value.code == STARTUP_FAILURE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("fedgate: invalid configuration: ") and "nowhere.yaml: cannot read file" in line
