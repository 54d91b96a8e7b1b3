"""Every Prometheus metric fedgate exports, declared once (``docs/observability.md`` explains each).

Labels take values from small fixed sets only: department names (from the catalog), outcomes, states,
cache names and stable error codes (:func:`code_label`: anything else is ``OTHER``). No label ever carries a
value a caller sent or a department returned, so the metrics hold no personal data and their series stay few.

Under ``fedgate serve --workers N`` each worker writes its values to files in a directory the server
creates (:mod:`gateway.metrics_processes`) and any worker answers a scrape with the whole server's
(:mod:`gateway.metrics_export`): counters and histograms add up over the workers (those of a worker that
died included); each gauge says how its workers' values combine (``multiprocess_mode``), and the gauges
of a worker that died are dropped.
"""

from __future__ import annotations

import enum
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

from gateway.errors import error_codes

#: The ``code`` of a request or statement that had no error.
NO_ERROR = "none"
#: The ``code`` of an error whose code fedgate does not know (never expected; keeps the label set closed).
OTHER = "OTHER"


class Outcome(enum.StrEnum):
    """How a GraphQL request ended."""

    #: Answered with data and no errors.
    OK = "ok"
    #: Answered with data and errors: some paths are null (a department failed, a field was forbidden).
    PARTIAL = "partial"
    #: Refused before execution for the caller's reasons (credentials, purpose, document, limits): HTTP 4xx.
    REFUSED = "refused"
    #: Failed for fedgate's or the departments' reasons: HTTP 5xx, a ``@strict`` failure, the audit unavailable.
    FAILED = "failed"


@cache
def _known_codes() -> frozenset[str]:
    return frozenset(error_codes())


def code_label(code: str | None) -> str:
    """``code`` as a label value: a stable error code, :data:`NO_ERROR`, or :data:`OTHER`."""
    if code is None:
        return NO_ERROR
    return code if code in _known_codes() else OTHER


_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- requests ---------------------------------------------------------------------------------------------

REQUESTS = Counter(
    "fedgate_requests",
    "GraphQL requests answered, by endpoint (graphql, audit), outcome (ok, partial, refused, failed) and the "
    "first error's code (none when there was none).",
    ["endpoint", "outcome", "code"],
)
REQUEST_DURATION = Histogram(
    "fedgate_request_duration_seconds",
    "Time from a GraphQL request's arrival to its answer, by endpoint and outcome.",
    ["endpoint", "outcome"],
    buckets=_LATENCY,
)

# --- departments ------------------------------------------------------------------------------------------

STATEMENT_DURATION = Histogram(
    "fedgate_statement_duration_seconds",
    "Time a department's source took to answer one statement (from leaving the bulkhead to the rows or the "
    "error), by department and outcome (ok, error).",
    ["department", "outcome"],
    buckets=_FAST,
)
STATEMENT_ERRORS = Counter(
    "fedgate_statement_errors",
    "Statements for a department that failed, by department and error code (SOURCE_CIRCUIT_OPEN: refused by "
    "the breaker without calling the source).",
    ["department", "code"],
)
BREAKER_STATE = Gauge(
    "fedgate_breaker_state",
    "Worker processes whose circuit breaker for the department is in this state (closed, open, half_open, "
    "disabled); with one worker, 1 for its state and 0 for the others.",
    ["department", "state"],
    multiprocess_mode="livesum",
)
BREAKER_TRANSITIONS = Counter(
    "fedgate_breaker_transitions",
    "Times a circuit breaker entered a state, by department (or 'identity provider': the introspection "
    "endpoint's breaker) and the state entered.",
    ["department", "state"],
)
DEPARTMENT_READY = Gauge(
    "fedgate_department_ready",
    "1 when every worker finds the department ready (its health checks pass and its breaker is not open, as "
    "in /readyz), else 0.",
    ["department"],
    multiprocess_mode="livemin",
)
HEALTH_CHECKS = Counter(
    "fedgate_health_checks",
    "Background health checks of a department's source, by department and result (none: it answered; "
    "otherwise the error code).",
    ["department", "code"],
)
BULKHEAD_SLOTS = Gauge(
    "fedgate_bulkhead_slots",
    "Statements a department may have in flight at once (its bulkhead: source.max_concurrency), summed over "
    "the workers.",
    ["department"],
    multiprocess_mode="livesum",
)
BULKHEAD_IN_FLIGHT = Gauge(
    "fedgate_bulkhead_in_flight",
    "Statements holding one of the department's bulkhead slots now.",
    ["department"],
    multiprocess_mode="livesum",
)
BULKHEAD_QUEUED = Gauge(
    "fedgate_bulkhead_queued",
    "Statements waiting for one of the department's bulkhead slots now.",
    ["department"],
    multiprocess_mode="livesum",
)
POOL_CONNECTIONS = Gauge(
    "fedgate_pool_connections",
    "Connections open to a department's database, by state (in_use, idle); only for sources whose adapter "
    "can tell (PostgreSQL, MariaDB/MySQL, SQLite).",
    ["department", "state"],
    multiprocess_mode="livesum",
)
POOL_MAX_CONNECTIONS = Gauge(
    "fedgate_pool_max_connections",
    "Most connections a department's pools may open (source.pool_size), summed over the workers.",
    ["department"],
    multiprocess_mode="livesum",
)

# --- caches -----------------------------------------------------------------------------------------------

CACHE_LOOKUPS = Counter(
    "fedgate_cache_lookups",
    "Look-ups in fedgate's caches, by cache (token: verified JWTs; introspection: introspected tokens; "
    "document: parsed and validated documents; plan: bound plans; schema: per-caller schemas; audit_document: "
    "the audit endpoint's documents) and result (hit, miss).",
    ["cache", "result"],
)


class CacheCounter:
    """The hit and miss counters of one cache (label children bound once: the look-ups are on the hot path)."""

    def __init__(self, name: str) -> None:
        self._hit = CACHE_LOOKUPS.labels(name, "hit")
        self._miss = CACHE_LOOKUPS.labels(name, "miss")

    def hit(self) -> None:
        self._hit.inc()

    def miss(self) -> None:
        self._miss.inc()

    def lookup(self, found: bool) -> None:
        (self._hit if found else self._miss).inc()


# --- the audit --------------------------------------------------------------------------------------------

AUDIT_EVENTS = Counter("fedgate_audit_events", "Audit events made durable in the store.")
AUDIT_BATCH_EVENTS = Histogram(
    "fedgate_audit_batch_events",
    "Events committed together in one transaction (group commit).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
AUDIT_COMMIT_DURATION = Histogram(
    "fedgate_audit_commit_duration_seconds",
    "Time from handing audit events to the store until they were durable (checkpoint signing included): what "
    "their requests waited. One observation per request's event with the SQLite store, per batch with PostgreSQL.",
    buckets=_FAST,
)
AUDIT_WRITE_FAILURES = Counter(
    "fedgate_audit_write_failures",
    "Audit events not made durable, by reason (store: the store refused the batch or was unreachable; "
    "timeout: not committed within audit.write_timeout_seconds). Each is a request answered AUDIT_UNAVAILABLE "
    "or a refusal left unrecorded.",
    ["reason"],
)
AUDIT_QUEUE = Gauge(
    "fedgate_audit_queue_events",
    "Audit events waiting to be committed now.",
    multiprocess_mode="livesum",
)
AUDIT_STORE_AVAILABLE = Gauge(
    "fedgate_audit_store_available",
    "1 when every worker's last write or health check of the audit store succeeded, else 0 (as /readyz's audit).",
    multiprocess_mode="livemin",
)

# --- the server -------------------------------------------------------------------------------------------

WORKERS = Gauge(
    "fedgate_workers",
    "Worker processes serving (1 without --workers).",
    multiprocess_mode="livesum",
)
