"""Request ids: a caller's well-formed ``X-Request-Id`` is kept, anything else replaced, and the id comes back
in the response, in the request's log lines and in its audit event."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import orjson

from gateway.app import create_app
from gateway.audit.keys import generate_key_file
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import Filter
from gateway.settings import CORSSettings
from schema.catalog import Catalog
from tests.conftest import make_settings
from tests.support.governance import governed_deployment
from tests.support.servers import fedgate_serve, free_port, serving, wait_until_healthy, write_config

QUERY = "{ clinic { people(limit: 2) { personId } } }"
GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_the_id_is_kept_or_made_and_answered(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    generate_key_file(tmp_path / "audit-key.pem")
    audit = {"store": {"kind": "sqlite", "path": "audit.sqlite"}, "signing_key_file": "audit-key.pem"}
    async with governed_deployment(tmp_path, sqlite_clinic, audit=audit) as deployment:
        token = await deployment.token("council-care")
        headers = {"authorization": f"Bearer {token}", "fedgate-purpose": "direct_care"}
        async with httpx.AsyncClient(base_url=deployment.base_url) as http:

            async def ask(request_id: str | bytes | None) -> httpx.Response:
                sent: dict[str, str | bytes] = {**headers}
                if request_id is not None:
                    sent["x-request-id"] = request_id
                return await http.post("/graphql", json={"query": QUERY}, headers=sent)

            kept = await ask("trace-7.b:Ok_1")
            assert kept.status_code == 200 and kept.headers["x-request-id"] == "trace-7.b:Ok_1"
            longest = "a" * 128
            assert (await ask(longest)).headers["x-request-id"] == longest
            replaced: dict[str | bytes, str] = {}
            for bad in ("two words", "a" * 129, "-starts-with-a-dash", "semi;colon", "", "café".encode()):
                answered = (await ask(bad)).headers["x-request-id"]
                assert GENERATED.fullmatch(answered), (bad, answered)
                replaced[bad] = answered
            made = [(await ask(None)).headers["x-request-id"] for _ in range(2)]
            assert all(GENERATED.fullmatch(made_id) for made_id in made) and made[0] != made[1]
            refused = await http.post(
                "/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token}", "x-request-id": "no-1"}
            )
            assert refused.json()["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
            assert refused.headers["x-request-id"] == "no-1"
            health = await http.get("/healthz", headers={"x-request-id": "probe-9"})
            assert health.headers["x-request-id"] == "probe-9"
            assert len(health.headers.get_list("x-request-id")) == 1
    store = SqliteAuditStore(tmp_path / "audit.sqlite")
    await store.open()
    try:
        events = [orjson.loads(event.body) for event in await store.query(Filter(), 100)]
    finally:
        await store.close()
    recorded = sorted(event["request_id"] for event in events)
    assert recorded == sorted(["trace-7.b:Ok_1", longest, *replaced.values(), *made, "no-1"])


def test_every_log_line_of_a_request_names_its_id(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    config = write_config(sqlite_clinic, tmp_path, logging={"format": "json", "level": "info"})
    port = free_port()
    process = fedgate_serve(config, port)
    try:
        wait_until_healthy(process, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            answered = http.post("/graphql", json={"query": QUERY}, headers={"x-request-id": "log-line-42"})
            assert answered.headers["x-request-id"] == "log-line-42"
            made = http.post("/graphql", json={"query": "{ clinic { nobody } }"}).headers["x-request-id"]
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == len(output.splitlines())  # JSON lines only
    requests = [line for line in lines if line["event"] == "graphql_request"]
    assert [line.get("request_id") for line in requests] == ["log-line-42", made]
    assert all(line["level"] and line["timestamp"] for line in requests)
    started = [line for line in lines if line["event"] == "listening"]
    assert started and "request_id" not in started[0]  # outside a request, no id


async def test_a_browser_app_on_another_origin_may_read_the_id(sqlite_clinic: Catalog) -> None:
    origin = "https://app.example.test"
    settings = make_settings().model_copy(update={"cors": CORSSettings(allow_origins=[origin])})
    async with serving(create_app(settings, sqlite_clinic, None)) as url, httpx.AsyncClient() as http:
        answer = await http.post(
            f"{url}/graphql", json={"query": QUERY}, headers={"origin": origin, "x-request-id": "from-the-browser"}
        )
    assert answer.headers["x-request-id"] == "from-the-browser"
    assert answer.headers["access-control-allow-origin"] == origin
    assert answer.headers["access-control-expose-headers"].lower() == "x-request-id"
