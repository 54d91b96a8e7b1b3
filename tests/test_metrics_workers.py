"""``/metrics`` of a real ``fedgate serve --workers 2``: whichever worker answers, the whole server's numbers.

Every request is sent over HTTP and counted by the test; the scrape is parsed with prometheus-client's own
parser. The expected numbers are the test's own counts, never read back from the gateway.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from schema.catalog import Catalog
from tests.support.metrics import Samples, delta, label_values, scrape, value, wait_for
from tests.support.servers import running_fedgate, worker_pids, write_config

QUERY = "{ clinic { people(limit: 3) { personId visits { kind } } } }"
INVALID = "{ clinic { nobody } }"
#: Sent in every way a caller can send a value; it must never come back in the metrics.
MARKER = "zz-caller-value-7f3a"


def _workers(pid: int, count: int, seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    while len(found := worker_pids(pid)) != count:
        assert time.monotonic() < deadline, f"{len(found)} workers, not {count}"
        time.sleep(0.2)
    return found


def _multiprocess_directory(worker: int) -> Path:
    environment = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    (entry,) = [item for item in environment if item.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(entry.split(b"=", 1)[1].decode())


def test_two_workers_count_every_request_the_test_sent(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    config = write_config(sqlite_clinic, tmp_path)
    with running_fedgate(config, "--workers", "2") as (port, process), httpx.Client() as http:
        url = f"http://127.0.0.1:{port}"
        workers = _workers(process.pid, 2)
        directory = _multiprocess_directory(workers[0])
        assert directory.is_dir() and (directory.stat().st_mode & 0o777) == 0o700
        assert _multiprocess_directory(workers[1]) == directory
        # Both workers have recorded their state once they have started.
        before = wait_for(url, lambda s: value(s, "fedgate_workers") == 2, what="the two workers")

        statements = 0
        for _ in range(12):
            answer = http.post(
                f"{url}/graphql",
                json={"query": QUERY, "operationName": None, "variables": {MARKER: MARKER}},
                headers={"x-request-id": MARKER, "user-agent": MARKER},
            )
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
            statements += answer.json()["extensions"]["sources"]["clinic"]["statements"]
        for _ in range(3):
            refused = http.post(f"{url}/graphql", json={"query": INVALID})
            assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        for _ in range(2):
            bad = http.post(f"{url}/graphql", content=MARKER, headers={"content-type": "text/plain"})
            assert bad.status_code == 400 and bad.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        after = scrape(url)
        # Each worker records its state every second: both pools idle again once the last one has.
        at_rest = wait_for(url, lambda s: value(s, "fedgate_pool_connections", department="clinic", state="idle") == 8)

    assert statements >= 24  # people, then their visits: two statements a query
    requests = "fedgate_requests_total"
    assert delta(before, after, requests, endpoint="graphql", outcome="ok", code="none") == 12
    assert delta(before, after, requests, endpoint="graphql", outcome="refused", code="GRAPHQL_VALIDATION_FAILED") == 3
    assert delta(before, after, requests, endpoint="graphql", outcome="refused", code="BAD_REQUEST") == 2
    duration = "fedgate_request_duration_seconds_count"
    assert delta(before, after, duration, endpoint="graphql", outcome="ok") == 12
    assert delta(before, after, duration, endpoint="graphql", outcome="refused") == 5
    assert delta(before, after, "fedgate_statement_duration_seconds_count", department="clinic", outcome="ok") == (
        statements
    )
    assert delta(before, after, "fedgate_statement_duration_seconds_sum", department="clinic", outcome="ok") > 0
    assert value(after, "fedgate_statement_errors_total", department="clinic", code="SOURCE_UNAVAILABLE") == 0

    # 15 documents looked up (the two bodies that are not JSON never get that far); the 12 valid ones planned.
    # Each worker parses a document the first time it sees it, then finds it in its cache.
    cache = "fedgate_cache_lookups_total"
    documents = [delta(before, after, cache, cache="document", result=result) for result in ("hit", "miss")]
    assert sum(documents) == 15 and 2 <= documents[1] <= 4
    plans = [delta(before, after, cache, cache="plan", result=result) for result in ("hit", "miss")]
    assert sum(plans) == 12 and 1 <= plans[1] <= 2

    # The state each worker holds, summed (or, for readiness, the least of the two).
    assert value(after, "fedgate_breaker_state", department="clinic", state="closed") == 2
    assert value(after, "fedgate_breaker_state", department="clinic", state="open") == 0
    assert value(after, "fedgate_department_ready", department="council") == 1
    assert value(after, "fedgate_bulkhead_slots", department="clinic") == 2 * 4  # pool_size 4 a worker
    assert value(after, "fedgate_bulkhead_in_flight", department="clinic") == 0
    assert value(after, "fedgate_pool_max_connections", department="clinic") == 8
    in_use = value(at_rest, "fedgate_pool_connections", department="clinic", state="in_use")
    assert in_use == 0  # SQLite opens its whole pool (4 a worker), and nothing is running now

    _only_bounded_labels(after)
    assert not directory.exists()  # the server removed the workers' metrics when it stopped


def _only_bounded_labels(samples: Samples) -> None:
    assert label_values(samples, "department") == {"clinic", "council"}
    assert label_values(samples, "endpoint") == {"graphql"}
    assert label_values(samples, "outcome") <= {"ok", "partial", "refused", "failed", "error"}
    assert label_values(samples, "state") <= {"closed", "open", "half_open", "disabled", "in_use", "idle"}
    assert label_values(samples, "cache") <= {"token", "introspection", "document", "plan", "schema"}
    codes = label_values(samples, "code")
    assert codes and all(code == "none" or code.isupper() for code in codes), codes
    assert not any(MARKER in name or MARKER in str(labels) for name, labels in samples)


def test_a_killed_worker_leaves_its_counts_and_takes_its_state_away(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    config = write_config(sqlite_clinic, tmp_path)
    with running_fedgate(config, "--workers", "2") as (port, process), httpx.Client() as http:
        url = f"http://127.0.0.1:{port}"
        victim, survivor = _workers(process.pid, 2)
        wait_for(url, lambda s: value(s, "fedgate_workers") == 2, what="the two workers")
        for _ in range(10):
            assert http.post(f"{url}/graphql", json={"query": QUERY}).status_code == 200
        counted = scrape(url)
        sent = value(counted, "fedgate_requests_total", endpoint="graphql", outcome="ok", code="none")
        assert sent == 10

        directory = _multiprocess_directory(survivor)
        assert list(directory.glob(f"gauge_live*_{victim}.db"))  # the victim's live gauges, before it dies

        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in (pids := worker_pids(process.pid)) or len(pids) != 2:
            assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
            time.sleep(0.2)
        assert survivor in pids
        while list(directory.glob(f"gauge_live*_{victim}.db")):
            assert time.monotonic() < deadline, "the dead worker's live gauges were not removed"
            time.sleep(0.2)
        # Once the replacement has started, its slots join the survivor's: 4 + 4.
        later = wait_for(url, lambda s: value(s, "fedgate_bulkhead_slots", department="clinic") == 8)
    assert value(later, "fedgate_workers") == 2
    assert value(later, "fedgate_breaker_state", department="clinic", state="closed") == 2
    assert value(later, "fedgate_bulkhead_slots", department="clinic") == 8
    # Counters never go backwards: the dead worker's requests still count (plus these scrapes' nothing).
    assert value(later, "fedgate_requests_total", endpoint="graphql", outcome="ok", code="none") == sent
