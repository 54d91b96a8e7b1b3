"""The audit's metrics: events written, batches, commit times, the queue, failures and the store's state,
over a real gateway with the dev issuer's tokens, its store in SQLite or in PostgreSQL behind a proxy that
goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from gateway.audit.keys import generate_key_file
from schema.catalog import Catalog
from tests.conftest import PG, scratch_postgres
from tests.support.governance import GovernedDeployment, governed_deployment
from tests.support.metrics import Samples, ascrape, delta, value
from tests.support.tcp_proxy import TcpProxy

QUERY = "{ clinic { people(limit: 2) { personId } } }"
PURPOSE = {"fedgate_purpose": "direct_care"}
HEADER = {"fedgate-purpose": "direct_care"}


@contextlib.asynccontextmanager
async def _audited(
    directory: Path, catalog: Catalog, store: dict[str, Any], **audit: Any
) -> AsyncIterator[GovernedDeployment]:
    generate_key_file(directory / "audit-key.pem")
    section = {"store": store, "signing_key_file": "audit-key.pem", **audit}
    async with governed_deployment(directory, catalog, audit=section) as deployment:
        yield deployment


async def _until(url: str, condition: Any) -> Samples:
    for _ in range(50):
        samples = await ascrape(url)
        if condition(samples):
            return samples
        await asyncio.sleep(0.1)
    raise AssertionError(f"the audit's metrics never showed it: {samples}")


async def test_every_event_written_is_counted_in_its_batch(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    async with _audited(tmp_path, sqlite_clinic, {"kind": "sqlite", "path": "audit.sqlite"}) as deployment:
        url = deployment.base_url
        token = await deployment.token("council-care")
        before = await ascrape(url)
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http:
            answers = await asyncio.gather(
                *(http.post(f"{url}/graphql", json={"query": QUERY}, headers=HEADER) for _ in range(6))
            )
            assert all(answer.status_code == 200 and answer.json()["data"] for answer in answers)
            for _ in range(2):  # refused for want of a purpose: recorded too
                refused = await http.post(f"{url}/graphql", json={"query": QUERY})
                assert refused.json()["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
        after = await ascrape(url)
    assert delta(before, after, "fedgate_audit_events_total") == 8
    assert delta(before, after, "fedgate_audit_batch_events_sum") == 8
    transactions = delta(before, after, "fedgate_audit_batch_events_count")
    assert 1 <= transactions <= 8
    # Each request's event is handed to the SQLite store on its own (observed once each), and committed in a
    # transaction with the others waiting then.
    assert delta(before, after, "fedgate_audit_commit_duration_seconds_count") == 8
    assert delta(before, after, "fedgate_audit_commit_duration_seconds_sum") > 0
    assert value(after, "fedgate_audit_queue_events") == 0
    assert value(after, "fedgate_audit_store_available") == 1
    assert delta(before, after, "fedgate_audit_write_failures_total", reason="store") == 0
    assert delta(before, after, "fedgate_requests_total", endpoint="graphql", outcome="ok", code="none") == 6
    assert (
        delta(before, after, "fedgate_requests_total", endpoint="graphql", outcome="refused", code="PURPOSE_REQUIRED")
        == 2
    )
    # Eight requests presented one token: verified by the first ones to arrive (six at once), then found in
    # the token cache.
    hits, misses = (
        delta(before, after, "fedgate_cache_lookups_total", cache="token", result=r) for r in ("hit", "miss")
    )
    assert hits + misses == 8 and 1 <= misses <= 6 and hits >= 2


async def test_a_store_that_goes_away_shows_failures_and_comes_back(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    async with scratch_postgres("fedgate_audit") as database, TcpProxy(int(PG["port"])) as proxy:
        store = {"kind": "postgres", "database": database, "user": PG["user"], "port": proxy.port}
        async with _audited(
            tmp_path, sqlite_clinic, store, write_timeout_seconds=2, health_check_seconds=0.2
        ) as deployment:
            url = deployment.base_url
            assert (await deployment.query(QUERY, "council-care", **PURPOSE)).status_code == 200
            before = await ascrape(url)
            assert value(before, "fedgate_audit_store_available") == 1

            await proxy.stop()
            down = await deployment.query(QUERY, "council-care", **PURPOSE)
            assert down.status_code == 503
            assert [e["extensions"]["code"] for e in down.json()["errors"]] == ["AUDIT_UNAVAILABLE"]
            failed = await _until(url, lambda s: value(s, "fedgate_audit_store_available") == 0)
            lost = sum(
                delta(before, failed, "fedgate_audit_write_failures_total", reason=r) for r in ("store", "timeout")
            )
            assert lost >= 1
            assert delta(before, failed, "fedgate_requests_total", endpoint="graphql", outcome="failed",
                         code="AUDIT_UNAVAILABLE") == 1  # fmt: skip

            await proxy.start()
            await _until(url, lambda s: value(s, "fedgate_audit_store_available") == 1)
            again = await deployment.query(QUERY, "council-care", **PURPOSE)
            assert again.status_code == 200
            after = await ascrape(url)
    assert delta(failed, after, "fedgate_audit_events_total") >= 1
