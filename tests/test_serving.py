"""``fedgate serve --workers N``: several processes on one port, and what they must agree on."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import yaml

from schema.catalog import Catalog
from tests.support.servers import fedgate_serve, free_port, healthy, worker_pids


def _write(directory: Path, catalog: Catalog, **settings: object) -> Path:
    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True, exclude_none=True)))
    document = {"catalog": str(catalog_file), "logging": {"format": "json", "level": "warning"}, **settings}
    path = directory / "fedgate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_two_workers_share_the_port_and_answer(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    config = _write(tmp_path, sqlite_clinic, auth={"enabled": False})
    port = free_port()
    process = fedgate_serve(config, port, "--workers", "2")
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < 2 or not healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"fedgate serve --workers 2 did not start:\n{output}")
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
