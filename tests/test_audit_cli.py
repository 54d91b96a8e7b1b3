"""``fedgate audit``: verify, query, export, purge and public-key on a real SQLite store, as an operator
runs them (exit codes, one-line errors, JSON for scripts)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import orjson
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from gateway.audit.chain import link
from gateway.audit.keys import generate_key_file, load_signer
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.cli import app
from tests.support.audit_stores import OpenStore, body, write

runner = CliRunner()
NHS = "9990000001"


@pytest.fixture
def config(tmp_path: Path, clinic_catalog_file: Path) -> Path:
    """Settings naming a SQLite store holding 12 events (checkpoints after 5, 10 and 12)."""
    generate_key_file(tmp_path / "key.pem")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({"version": 1, "scopes": []}))
    settings = {
        "catalog": str(clinic_catalog_file),
        "auth": {"issuers": [{"issuer": "https://idp.example.test", "audiences": ["fedgate"],
                              "jwks_uri": "https://idp.example.test/jwks"}]},
        "policy": {"file": "policy.yaml"},
        "purposes": {"required": False},
        "agreements": {"required": False},
        "audit": {"store": {"kind": "sqlite", "path": "audit.sqlite"}, "signing_key_file": "key.pem",
                  "checkpoint_sink": {"file": "checkpoints.jsonl"}},
    }  # fmt: skip
    path = tmp_path / "fedgate.yaml"
    path.write_text(yaml.safe_dump(settings))

    async def fill() -> None:
        store = SqliteAuditStore(tmp_path / "audit.sqlite")
        await store.open()
        opened = OpenStore(store, "sqlite", str(tmp_path / "audit.sqlite"), load_signer(tmp_path / "key.pem", None))
        sink = {"checkpoint_sink": {"file": str(tmp_path / "checkpoints.jsonl")}}
        for numbers in (range(5), range(5, 10), range(10, 12)):
            await write(opened, [body(n, subjects=[NHS] if n % 3 == 0 else []) for n in numbers], **sink)
        await store.close()

    asyncio.run(fill())
    return path


@pytest.fixture
def clinic_catalog_file(tmp_path: Path) -> Path:
    return Path(__file__).parent / "fixtures" / "clinic_catalog.yaml"


def test_verify_passes_and_says_how_much_it_checked(config: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"ok": True, "events": 12, "checkpoints": 3, "last_event": 12,
                                         "problem": None, "seq": None, "event_id": None}  # fmt: skip


def test_verify_with_only_the_public_key_and_a_range(config: Path, tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    assert runner.invoke(app, ["audit", "public-key", "--config", str(config)]).exit_code == 0
    public.write_text(runner.invoke(app, ["audit", "public-key", "--config", str(config)]).output)
    key = serialization.load_pem_public_key(public.read_bytes())
    assert key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == load_signer(
        tmp_path / "key.pem", None
    ).public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "key.pem").unlink()  # a verifier holds only the public key
    result = runner.invoke(
        app, ["audit", "verify", "--config", str(config), "--public-key", str(public), "--from", "6", "--to", "10"]
    )
    assert result.exit_code == 0, result.output
    assert "verified: 5 events, 1 signed checkpoints, the last event 10" in result.output


def test_verify_fails_with_exit_1_naming_the_event_and_reads_the_sink_file(config: Path, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:
        db.execute("DELETE FROM audit_events WHERE seq > 10")
        db.execute("DELETE FROM audit_checkpoints WHERE seq > 10")
        ten = db.execute("SELECT hash FROM audit_events WHERE seq = 10").fetchone()[0]
        db.execute("UPDATE audit_head SET seq = 10, hash = ? WHERE id = 1", (ten,))
    result = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert result.exit_code == 1
    assert "broken at event 12: a signed checkpoint covers event 12 but the store ends at event 10" in result.output
    other = tmp_path / "elsewhere.jsonl"
    other.write_text("")
    (tmp_path / "checkpoints.jsonl").unlink()
    alone = runner.invoke(app, ["audit", "verify", "--config", str(config), "--checkpoints", str(other)])
    assert alone.exit_code == 0  # without the checkpoints kept outside, the cut cannot be seen


def test_query_by_person_as_a_table_and_as_json(config: Path) -> None:
    table = runner.invoke(app, ["audit", "query", "--config", str(config), "--subject", NHS])
    assert table.exit_code == 0, table.output
    assert "Audit events (4, newest first)" in table.output
    seqs = [int(match) for match in re.findall(r"^│ (\d+)\s+│ 2026", table.output, flags=re.MULTILINE)]
    assert seqs == [10, 7, 4, 1]  # newest first (the other columns wrap to the terminal's width)
    found = runner.invoke(app, ["audit", "query", "--config", str(config), "--subject", NHS, "--json"])
    assert [event["request_id"] for event in json.loads(found.output)] == ["r9", "r6", "r3", "r0"]
    window = runner.invoke(app, ["audit", "query", "--config", str(config), "--since", "2026-11-01T05:00",
                                 "--until", "2026-11-01T07:00", "--json"])  # fmt: skip
    assert [event["request_id"] for event in json.loads(window.output)] == ["r6", "r5"]


def test_query_refuses_a_bad_date_in_one_line(config: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "--config", str(config), "--since", "last tuesday"])
    assert result.exit_code == 2
    assert "--since: 'last tuesday' is not an ISO 8601 date or time" in result.output


def test_export_writes_every_event_as_a_json_line_whose_hash_can_be_checked(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    result = runner.invoke(app, ["audit", "export", "--config", str(config), "--output", str(target)])
    assert result.exit_code == 0 and "exported 12 events" in result.output
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, 13))
    stored = SqliteAuditStore(tmp_path / "audit.sqlite")

    async def bodies() -> list[bytes]:
        await stored.open()
        try:
            return [event.body async for event in stored.events()]
        finally:
            await stored.close()

    for line, raw in zip(lines, asyncio.run(bodies()), strict=True):
        assert line["event"] == orjson.loads(raw)
        assert link(line["seq"], line["prev_hash"], raw) == line["hash"]


def test_purge_needs_yes_then_keeps_the_rest_verifiable(config: Path) -> None:
    refused = runner.invoke(app, ["audit", "purge", "--config", str(config), "--before", "2099-01-01"])
    assert refused.exit_code == 2 and "add --yes" in refused.output
    purged = runner.invoke(app, ["audit", "purge", "--config", str(config), "--before", "2099-01-01", "--yes"])
    assert purged.exit_code == 0 and "purged every event up to 12" in purged.output
    again = runner.invoke(app, ["audit", "purge", "--config", str(config), "--before", "2099-01-01", "--yes"])
    assert "nothing to purge" in again.output
    verified = runner.invoke(app, ["audit", "verify", "--config", str(config), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.output)["last_event"] == 12


def test_settings_without_a_store_and_an_unreachable_one_are_one_line_each(tmp_path: Path, config: Path) -> None:
    document = yaml.safe_load(config.read_text())
    document["audit"] = {"enabled": False}
    config.write_text(yaml.safe_dump(document))
    result = runner.invoke(app, ["audit", "query", "--config", str(config)])
    assert result.exit_code == 2 and "these settings name no audit store (audit.store)" in result.output
    document["audit"]["store"] = {"kind": "postgres", "database": "x", "user": "u", "port": 1}
    config.write_text(yaml.safe_dump(document))
    down = runner.invoke(app, ["audit", "query", "--config", str(config)])
    assert down.exit_code == 2
    assert "the audit store on 127.0.0.1:1 cannot be opened" in down.output and "Traceback" not in down.output
