"""The CLI's rule: an operator error gives one clear line on standard error and exit code 2, never a traceback.

Each case is something an operator really does wrong (a missing settings file, a busy port, an unset
variable, a port out of range, another program on the issuer's port), run the way they would run it: the
``fedgate`` command in its own process where that matters (a traceback printed by the interpreter itself
is then seen), else through Typer's runner.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import gateway.cli
from demo.run import SETTINGS_FILE, Ports, write_settings
from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.cli import app
from gateway.settings import load_settings
from schema.catalog import Catalog
from tests.support.servers import free_port, serving
from tests.test_auth_http import write_settings as write_auth_settings

ROOT = Path(__file__).parent.parent


FEDGATE = [sys.executable, "-c", "from gateway.cli import main; main()"]


def fedgate(
    *arguments: str, cwd: Path = ROOT, timeout: float = 60, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``fedgate`` console command in its own process, as an operator runs it (``config``: as
    ``$FEDGATE_CONFIG``, which is otherwise unset)."""
    env = {key: value for key, value in os.environ.items() if key != "FEDGATE_CONFIG"}
    env |= {"PYTHONPATH": str(ROOT), "COLUMNS": "200", **({"FEDGATE_CONFIG": str(config)} if config else {})}
    return subprocess.run(
        [*FEDGATE, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port held by this test process, as another program would hold it."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield held.getsockname()[1]


@pytest.fixture
def clinic_settings(sqlite_clinic: Catalog, tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(sqlite_clinic.model_dump(mode="json", by_alias=True, exclude_none=True)))
    settings = {"catalog": "catalog.yaml", "auth": {"enabled": False}, "logging": {"format": "json"}}
    (tmp_path / "fedgate.yaml").write_text(yaml.safe_dump(settings))
    return tmp_path / "fedgate.yaml"


# --- settings files: one rule for every command ------------------------------------------------------

COMMANDS_READING_SETTINGS = [
    ["check"],
    ["serve"],
    ["token", "--client", "researcher"],
    ["whocan", "nhs_number"],
    ["explain", "{ __typename }"],
    ["scopes", "list"],
    ["scopes", "explain", "health.gp.read"],
]


@pytest.mark.parametrize("command", COMMANDS_READING_SETTINGS, ids=lambda c: " ".join(c[:2]))
def test_every_command_without_settings_says_how_to_name_them(command: list[str], tmp_path: Path) -> None:
    result = fedgate(*command, cwd=tmp_path)
    assert_one_line(result, "no settings file", "--config", "FEDGATE_CONFIG")


@pytest.mark.parametrize("command", COMMANDS_READING_SETTINGS, ids=lambda c: " ".join(c[:2]))
def test_every_command_finds_settings_by_the_same_rule(command: list[str], tmp_path: Path) -> None:
    """$FEDGATE_CONFIG, else ./fedgate.yaml: a broken file there is reported, so each command looked there."""
    (tmp_path / "fedgate.yaml").write_text("catalog: [unclosed\n")
    here = fedgate(*command, cwd=tmp_path)
    assert here.returncode == 2 and "Traceback" not in here.stderr
    assert "fedgate.yaml" in here.stderr and "invalid YAML" in here.stderr
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("catalog: x\nshoe_size: 3\n")
    named = fedgate(*command, cwd=tmp_path, config=elsewhere)
    assert named.returncode == 2 and "Traceback" not in named.stderr
    assert "elsewhere.yaml" in named.stderr and "shoe_size" in named.stderr and "unknown key" in named.stderr


# --- ports -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["0", "99999", "-1", "http"])
def test_a_port_out_of_range_is_refused_before_anything_starts(port: str, clinic_settings: Path) -> None:
    for command in (["serve", "--config", str(clinic_settings), "--port", port], ["demo", "--issuer-port", port]):
        result = CliRunner().invoke(app, command, env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert "Invalid value" in result.output and "port" in result.output


def test_serve_on_a_busy_port_names_it_and_its_holder(clinic_settings: Path, listening: int) -> None:
    result = fedgate("serve", "--config", str(clinic_settings), "--port", str(listening), timeout=30)
    assert_one_line(result, f"port {listening} on 127.0.0.1 is already in use by pid {os.getpid()}", "the gateway")


def test_several_workers_on_a_busy_port_stop_at_once(clinic_settings: Path, listening: int) -> None:
    result = fedgate("serve", "--config", str(clinic_settings), "--port", str(listening), "--workers", "2")
    assert_one_line(result, f"port {listening}", "in use")


@pytest.mark.parametrize("which", ["--port", "--issuer-port", "--housing-port"])
def test_the_demo_on_a_busy_port_stops_before_starting_anything(which: str, listening: int) -> None:
    others = {"--port": free_port(), "--issuer-port": free_port(), "--housing-port": free_port()}
    others[which] = listening
    result = fedgate("demo", *(f"{flag}={port}" for flag, port in others.items()), timeout=30)
    assert_one_line(result, f"port {listening} on 127.0.0.1 is already in use by pid {os.getpid()}")


def test_the_demo_needs_three_different_ports() -> None:
    result = fedgate("demo", "--port", "8300", "--issuer-port", "8300")
    assert_one_line(result, "three different ports")


def test_serve_logs_json_only_and_each_line_once(clinic_settings: Path) -> None:
    """uvicorn's own lines go through the same JSON renderer as fedgate's, exactly once each."""
    port = free_port()
    process = subprocess.Popen(
        [*FEDGATE, "serve", "-c", str(clinic_settings), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "Application startup complete" in line:
                break
    finally:
        process.terminate()
        rest = process.communicate(timeout=20)[1]
    lines += rest.splitlines(keepends=True)
    records = [json.loads(line) for line in lines if line.strip()]
    assert all(isinstance(record, dict) and "event" in record and "level" in record for record in records), lines
    assert [r["url"] for r in records if r["event"] == "listening"] == [f"http://127.0.0.1:{port}"]
    started = [r for r in records if r["event"] == "Application startup complete."]
    assert len(started) == 1 and started[0]["logger"] == "uvicorn.error"


# --- other operator errors -----------------------------------------------------------------------------


def test_introspect_with_an_unset_password_variable_says_which() -> None:
    unset = "FEDGATE_TEST_SURELY_UNSET"
    assert unset not in os.environ
    result = fedgate(
        "introspect", "postgresql://postgres@127.0.0.1/postgres", "--department", "d", "--password-env", unset
    )
    assert_one_line(result, f"environment variable {unset} is not set")


def test_introspect_of_a_server_that_is_not_there_is_one_line() -> None:
    result = fedgate("introspect", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", "--department", "d")
    assert_one_line(result)


def test_a_token_from_another_demos_issuer_says_it_is_not_the_issuer(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    port = free_port()
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    write_auth_settings(ours, sqlite_clinic, port)
    other = write_auth_settings(theirs, sqlite_clinic, port)  # same clients, its own secrets
    assert other.dev_issuer is not None

    async def ask() -> subprocess.CompletedProcess[str]:
        async with serving(create_dev_issuer_app(other.dev_issuer), port):
            return await asyncio.to_thread(
                fedgate, "token", "--client", "research-app", "--config", str(ours / "fedgate.yaml")
            )

    result = asyncio.run(ask())
    assert_one_line(result, "not the issuer for these clients", f"port {port}")


def test_an_internal_fault_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("a fault")

    monkeypatch.setattr(gateway.cli, "app", broken)
    monkeypatch.delenv(gateway.cli.DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        gateway.cli.main()
    assert exit_.value.code == 70
    error = capsys.readouterr().err
    assert "Traceback" not in error and "RuntimeError: a fault" in error and "FEDGATE_DEBUG=1" in error


# --- the demo's written settings ------------------------------------------------------------------------


def test_the_demo_writes_the_settings_it_runs_with(tmp_path: Path) -> None:
    variant = tmp_path / "catalog.variant.yaml"
    shutil.copy(SETTINGS_FILE.parent / "catalog.yaml", variant)
    written = write_settings(SETTINGS_FILE, tmp_path, Ports(8200, 8201, 8202), variant)
    assert written == tmp_path / "fedgate.8200.yaml"
    settings = load_settings(written)
    assert settings.server.port == 8200
    assert settings.dev_issuer is not None and settings.dev_issuer.port == 8201
    assert [issuer.issuer for issuer in settings.auth.issuers] == ["http://127.0.0.1:8201"]
    assert settings.catalog_path == variant.resolve()
    demo = SETTINGS_FILE.parent
    assert settings.policy.path == (demo / "policy.yaml").resolve()
    assert settings.dev_issuer.state_path == (demo / "data" / "dev-issuer.json").resolve()
    assert settings.graphiql.assets_path == (demo / "data" / "graphiql-assets").resolve()
    assert "8201" not in SETTINGS_FILE.read_text()  # the shipped settings are untouched
