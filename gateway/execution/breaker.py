"""A circuit breaker per department: stop calling a source that keeps failing, and notice when it is back.

The identity provider's introspection endpoint has one of its own (:mod:`gateway.auth.introspection`):
it gives its verdicts with :meth:`CircuitBreaker.unhealthy` and :meth:`CircuitBreaker.succeeded`, and
maps an open breaker to ``AUTH_UNAVAILABLE``.

::

    closed ── `failures` consecutive unhealthy failures ──▶ open ── cool-down over ──▶ half-open
      ▲                                                      ▲                            │
      │                                                      └── the probe fails ─────────┤
      └──────────────────────────── the probe gets an answer ────────────────────────────┘

* **closed**: every call goes through. An *unhealthy* failure (see :func:`counts_as_failure`) adds one to
  the count; any answer from the source, even a refusal of the query, resets it; other failures
  (credentials) leave it as it is.
* **open**: calls fail at once with :class:`~gateway.errors.SourceCircuitOpenError` (``retryAfter`` =
  the cool-down left) without touching the source, its pool or its bulkhead.
* **half-open**: after the cool-down, exactly one call, a real statement of a real request, is let
  through as the probe; every other call still fails fast. An answer closes the breaker; an unhealthy
  failure opens it again with the cool-down doubled (``reset_seconds`` · 2ⁿ, capped at
  ``max_reset_seconds``). A probe abandoned without a verdict (the caller went away, a bug) frees the
  slot for the next call.

* **re-admitted**: an active health check (:mod:`gateway.execution.health_checks`) that sees the source
  come back closes an open or half-open breaker at once (:meth:`CircuitBreaker.readmit`), as a passing
  active check un-ejects a host in Envoy. The back-off is kept until a statement gets an answer: a
  re-admission the statements prove premature (they fail again) reopens with the cool-down doubled.

Outcomes are tied to the state they were admitted in (a *generation*): a call admitted before the
breaker opened cannot, by finishing late, close it or count towards opening it again. Transitions
happen on calls and health checks (the breaker has no timers of its own) and are logged:
``breaker_opened``, ``breaker_half_open``, ``breaker_closed`` (``by``: ``probe`` or ``health_check``),
and counted (``fedgate_breaker_transitions_total``). The clock is injectable, for tests.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from gateway.errors import (
    SourceCircuitOpenError,
    SourceError,
    SourceQueryError,
    SourceResponseError,
    SourceResponseTooLargeError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from gateway.metrics import BREAKER_TRANSITIONS
from schema.sources import BreakerSettings

log = structlog.get_logger("fedgate.breaker")

Clock = Callable[[], float]


class BreakerState(enum.StrEnum):
    """Where a breaker is in its cycle (``disabled``: configured off, every call goes through)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DISABLED = "disabled"


def counts_as_failure(error: SourceError) -> bool:
    """Whether ``error`` says the *source* is unhealthy, as opposed to the query or the caller.

    Counted: unreachable (``SOURCE_UNAVAILABLE``, and its kinds ``SOURCE_TERMINATED``: the session ended by
    an administrator or a shutdown, ``SOURCE_RESOURCE_EXHAUSTED``: out of connections, memory or disk), no
    answer in time (``SOURCE_TIMEOUT``) and an answer fedgate cannot read (``SOURCE_BAD_RESPONSE``: an error
    page, a truncated body). Not counted: the source refused this query (``SOURCE_QUERY_FAILED``) or its
    answer was over a cap (``SOURCE_RESPONSE_TOO_LARGE``), which say nothing about its health; an operator
    cancelled this one statement (``SOURCE_CANCELLED``); and credential failures (``SOURCE_AUTH_FAILED``),
    which can be one caller's token in a token exchange: a breaker is shared by every caller, so nothing
    one caller can provoke may open it.
    """
    if isinstance(error, SourceCircuitOpenError):
        return False
    if isinstance(error, SourceResponseTooLargeError):
        return False
    return isinstance(error, SourceUnavailableError | SourceTimeoutError | SourceResponseError)


def source_answered(error: SourceError) -> bool:
    """Whether ``error`` is the source's own answer (a refusal of the query, an answer over a cap): it is up."""
    return isinstance(error, SourceQueryError | SourceResponseTooLargeError)


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call the source once. ``probe`` marks the single trial call of a half-open breaker."""

    generation: int
    probe: bool = False


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker's state for ``/readyz``: ``retry_after`` is the cool-down left while open."""

    state: BreakerState
    consecutive_failures: int
    retry_after: float | None = None


class CircuitBreaker:
    """One department's breaker (or the identity provider's: ``department`` is then the name its log lines
    carry). Not thread-safe: it lives on the event loop, and never awaits."""

    def __init__(
        self, department: str, settings: BreakerSettings, *, probe_timeout: float = 5.0, clock: Clock = time.monotonic
    ) -> None:
        self.department = department
        self.settings = settings
        #: How long a probe may take: the retry hint given while one is in flight.
        self.probe_timeout = probe_timeout
        self.clock = clock
        self._state = BreakerState.CLOSED if settings.enabled else BreakerState.DISABLED
        self._generation = 0
        self._failures = 0
        #: Consecutive times the breaker opened without closing in between (drives the back-off).
        self._opened = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down is over reads as half-open)."""
        if self._state is BreakerState.OPEN and self.clock() >= self._open_until:
            return BreakerState.HALF_OPEN
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        state = self.state
        retry_after = self._open_until - self.clock() if state is BreakerState.OPEN else None
        return BreakerSnapshot(state, self._failures, retry_after)

    def cool_down(self, opened: int) -> float:
        """The cool-down after the breaker opened ``opened`` times in a row: doubling, capped."""
        base, cap = self.settings.reset_seconds, self.settings.max_reset_seconds
        return float(min(cap, base * 2 ** min(opened - 1, 32)))

    def check(self) -> None:
        """Raise :class:`SourceCircuitOpenError` if a call now would be refused; changes nothing.

        Called before waiting for a bulkhead slot, so a refused call never queues.
        """
        state = self.state
        if state is BreakerState.OPEN:
            raise SourceCircuitOpenError(self.department, self._open_until - self.clock())
        if self._state is BreakerState.HALF_OPEN and self._probing:
            raise SourceCircuitOpenError(self.department, self.probe_timeout)

    def admit(self) -> Permit:
        """Leave for one call, or :class:`SourceCircuitOpenError`. Every permit must end in exactly one of
        :meth:`succeeded`, :meth:`failed` or :meth:`abandoned`."""
        self.check()
        if self._state is BreakerState.OPEN:  # the cool-down is over: this call is the probe
            self._transition(BreakerState.HALF_OPEN)
            log.info("breaker_half_open", department=self.department)
        if self._state is BreakerState.HALF_OPEN:
            self._probing = True
            return Permit(self._generation, probe=True)
        return Permit(self._generation)

    def succeeded(self, permit: Permit) -> None:
        """The source answered."""
        if permit.generation != self._generation or self._state is BreakerState.DISABLED:
            return
        if permit.probe:
            self._close("probe")
        else:
            self._failures = 0
            self._opened = 0  # after a re-admission, the first answer proves it: forget the back-off

    def readmit(self) -> bool:
        """An active health check saw the source come back: close an open or half-open breaker now, without
        waiting out the cool-down (a probe in flight no longer decides). Returns whether it closed.

        The back-off is kept until a statement gets an answer, so that if the statements fail again (the
        check passes where they do not) the breaker reopens with the cool-down doubled.
        """
        if self._state not in (BreakerState.OPEN, BreakerState.HALF_OPEN):
            return False
        opened = self._opened
        self._close("health_check")
        self._opened = opened
        return True

    def failed(self, permit: Permit, error: SourceError) -> None:
        """The call failed with ``error``. Only unhealthy failures count (:func:`counts_as_failure`); a
        refusal from the source is an answer; anything else (credentials) is no verdict either way."""
        if source_answered(error):
            self.succeeded(permit)
            return
        if not counts_as_failure(error):
            self.abandoned(permit)
            return
        self.unhealthy(permit, error.code)

    def unhealthy(self, permit: Permit, code: str) -> None:
        """The call found the dependency unhealthy (``code`` says how, for the log): count it, and open
        the breaker at the threshold or when it was the probe. :meth:`failed` classifies a source's
        errors and calls this; a dependency that is not a department (the identity provider) calls it
        with its own verdict."""
        if permit.generation != self._generation or self._state is BreakerState.DISABLED:
            return
        self._failures += 1
        if permit.probe or self._failures >= self.settings.failures:
            self._open(code)

    def abandoned(self, permit: Permit) -> None:
        """The call ended without a verdict (cancelled, or a fault in fedgate): free the probe slot."""
        if permit.probe and permit.generation == self._generation:
            self._probing = False

    def _open(self, code: str) -> None:
        reopened = self._state is BreakerState.HALF_OPEN
        self._opened += 1
        cool_down = self.cool_down(self._opened)
        self._open_until = self.clock() + cool_down
        failures = self._failures
        self._transition(BreakerState.OPEN)
        log.warning(
            "breaker_opened",
            department=self.department,
            failures=failures,
            code=code,
            cool_down_seconds=round(cool_down, 3),
            probe_failed=reopened,
        )

    def _close(self, by: str) -> None:
        self._opened = 0
        self._transition(BreakerState.CLOSED)
        log.info("breaker_closed", department=self.department, by=by)

    def _transition(self, state: BreakerState) -> None:
        BREAKER_TRANSITIONS.labels(self.department, state.value).inc()
        self._state = state
        self._generation += 1
        self._probing = False
        if state is not BreakerState.OPEN:
            self._failures = 0
