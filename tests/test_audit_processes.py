"""The audit under real processes: ``fedgate serve`` killed with SIGKILL under load, two servers with two
workers each appending to one PostgreSQL store, and the store going away and coming back.

The load generator sends each request with a document of its own (a numbered comment), so each answer it
receives can be looked for in the store by the document's SHA-256, which the event records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.audit.keys import generate_key_file, load_signer
from gateway.audit.postgres_store import PostgresAuditStore
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import AuditStore
from gateway.audit.verification import verify_store
from gateway.auth.dev_issuer import create_dev_issuer_app
from schema.catalog import Catalog
from tests.conftest import PG, scratch_postgres
from tests.support.audit_stores import postgres_settings
from tests.support.governance import GovernedDeployment, audited_settings, governed_deployment
from tests.support.servers import fedgate_serve, free_port, serving, wait_until_healthy, worker_pids
from tests.support.tcp_proxy import TcpProxy

QUERY = "{ clinic { people(limit: 2) { personId } } }"
HEADERS = {"fedgate-purpose": "direct_care"}


class Load:
    """Clients sending numbered documents as fast as answers come, remembering what each answer was."""

    def __init__(self, urls: list[str], token: str, clients: int = 8) -> None:
        self.urls = urls
        self.token = token
        self.clients = clients
        self.answered: set[str] = set()  # the SHA-256 of each document answered with data
        self.statuses: dict[int, int] = {}
        self.transport_errors = 0
        self._next = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            await asyncio.gather(*(self._client(http, number, stop) for number in range(self.clients)))

    async def _client(self, http: httpx.AsyncClient, number: int, stop: asyncio.Event) -> None:
        headers = {"authorization": f"Bearer {self.token}", **HEADERS}
        while not stop.is_set():
            self._next += 1
            query = f"{QUERY} # {self._next}"
            url = self.urls[(number + self._next) % len(self.urls)]
            try:
                response = await http.post(f"{url}/graphql", json={"query": query}, headers=headers)
            except httpx.TransportError:
                self.transport_errors += 1
                await asyncio.sleep(0.05)
                continue
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code == 200 and orjson.loads(response.content).get("data"):
                self.answered.add(hashlib.sha256(query.encode()).hexdigest())


async def _recorded(store: AuditStore) -> list[dict[str, Any]]:
    return [orjson.loads(event.body) async for event in store.events()]


@contextlib.asynccontextmanager
async def _issuer(directory: Path, catalog: Catalog, audit: dict[str, Any]) -> AsyncIterator[GovernedDeployment]:
    """The settings (``directory/fedgate.yaml``) and the dev issuer serving them, in this process."""
    settings = audited_settings(directory, catalog, free_port(), audit=audit)
    assert settings.dev_issuer is not None
    async with serving(create_dev_issuer_app(settings.dev_issuer), settings.dev_issuer.port):
        yield GovernedDeployment(settings, "")


def _started(config: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = fedgate_serve(config, port, *extra)
    wait_until_healthy(process, port)
    return process, f"http://127.0.0.1:{port}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _load_for(load: Load, seconds: float, during: Any = None) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(load.run(stop))
    await asyncio.sleep(seconds)
    if during is not None:
        during()
        await asyncio.sleep(seconds)
    stop.set()
    await task


async def test_every_answer_received_before_a_kill_9_is_in_the_store_and_it_verifies(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    generate_key_file(tmp_path / "audit-key.pem")
    audit = {"store": {"kind": "sqlite", "path": "audit.sqlite"}, "signing_key_file": "audit-key.pem",
             "checkpoint_every_events": 50}  # fmt: skip
    async with _issuer(tmp_path, sqlite_clinic, audit) as deployment:
        token = await deployment.token("council-care")
        process, url = _started(tmp_path / "fedgate.yaml")
        try:
            load = Load([url], token)
            await _load_for(load, 3, during=lambda: process.send_signal(signal.SIGKILL))
        finally:
            _stop(process)
    assert process.returncode == -signal.SIGKILL
    assert len(load.answered) > 50 and load.transport_errors > 0  # answers before, refused connections after
    store = SqliteAuditStore(tmp_path / "audit.sqlite")
    await store.open()
    try:
        recorded = {event["operation"]["document_sha256"] for event in await _recorded(store)}
        verdict = await verify_store(store, load_signer(tmp_path / "audit-key.pem", None).public_key)
        checkpoints = await store.checkpoints()
    finally:
        await store.close()
    assert load.answered <= recorded  # no answer left without its record
    assert verdict.ok, verdict
    assert checkpoints and checkpoints[-1].seq <= verdict.head


async def test_two_servers_of_two_workers_append_one_chain_to_postgres_through_a_worker_killed(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    generate_key_file(tmp_path / "audit-key.pem")
    async with scratch_postgres("fedgate_audit") as database:
        audit = {"store": {"kind": "postgres", "database": database, "user": PG["user"]},
                 "signing_key_file": "audit-key.pem", "checkpoint_every_events": 100}  # fmt: skip
        (tmp_path / "policy-secret").write_text("cd" * 32)
        async with _issuer(tmp_path, sqlite_clinic, audit) as deployment:
            token = await deployment.token("council-care")
            config = tmp_path / "fedgate.yaml"
            servers = [_started(config, "--workers", "2") for _ in range(2)]
            try:
                victim = worker_pids(servers[0][0].pid)[0]
                load = Load([url for _, url in servers], token, clients=12)
                await _load_for(load, 3, during=lambda: os.kill(victim, signal.SIGKILL))
            finally:
                for process, _ in servers:
                    _stop(process)
        store = PostgresAuditStore(postgres_settings(database))
        await store.open()
        try:
            events = await _recorded(store)
            verdict = await verify_store(store, load_signer(tmp_path / "audit-key.pem", None).public_key)
        finally:
            await store.close()
    assert verdict.ok, verdict
    assert verdict.events == len(events) >= len(load.answered) > 100
    assert load.answered <= {event["operation"]["document_sha256"] for event in events}
    assert load.statuses.get(200, 0) >= len(load.answered)


async def test_the_store_going_away_refuses_to_disclose_and_coming_back_recovers(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    generate_key_file(tmp_path / "audit-key.pem")
    async with scratch_postgres("fedgate_audit") as database, TcpProxy(int(PG["port"])) as proxy:
        store_settings = {"kind": "postgres", "database": database, "user": PG["user"], "port": proxy.port}
        audit = {"store": store_settings, "signing_key_file": "audit-key.pem", "write_timeout_seconds": 2,
                 "health_check_seconds": 0.2}  # fmt: skip
        async with governed_deployment(tmp_path, sqlite_clinic, audit=audit) as deployment, httpx.AsyncClient() as http:
            before = await deployment.query(QUERY, "council-care", **HEADERS)
            assert before.status_code == 200 and before.json()["data"]

            await proxy.stop()
            down = await deployment.query(QUERY, "council-care", **HEADERS)
            assert down.status_code == 503
            assert down.headers["retry-after"] == "5"
            body = down.json()
            assert "data" not in body or body["data"] is None  # nothing disclosed without its record
            assert [e["extensions"]["code"] for e in body["errors"]] == ["AUDIT_UNAVAILABLE"]
            await asyncio.sleep(0.6)
            ready = await http.get(f"{deployment.base_url}/readyz")
            assert ready.status_code == 503 and ready.json()["audit"]["status"] == "unavailable"

            await proxy.start()
            await asyncio.sleep(0.6)
            ready = await http.get(f"{deployment.base_url}/readyz")
            assert ready.status_code == 200 and ready.json()["audit"] == {"status": "ok", "reason": None}
            after = await deployment.query(QUERY, "council-care", **HEADERS)
            assert after.status_code == 200 and after.json()["data"] == before.json()["data"]
        store = PostgresAuditStore(postgres_settings(database))
        await store.open()
        try:
            outcomes = [event["outcome"]["status"] for event in await _recorded(store)]
            verdict = await verify_store(store, load_signer(tmp_path / "audit-key.pem", None).public_key)
        finally:
            await store.close()
    assert outcomes == ["ok", "ok"]  # the refused request's record could not be written: it disclosed nothing
    assert verdict.ok
