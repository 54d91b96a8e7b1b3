"""Group commit: the events of concurrent requests made durable together, each request awaiting its own.

A request hands its event to :meth:`AuditWriter.record` and waits until the event is committed: no
response leaves before its record is durable. One background task takes every event queued (waiting up to
``audit.batch_wait_ms`` for more once one arrives, at most ``audit.batch_max_events``), appends them in one
transaction and wakes their requests. While a commit is in flight the next batch gathers, so under load
a transaction carries many events and costs each request little. A store that commits the appends waiting
together itself (``concurrent_appends``: SQLite, on its thread) is handed each request's event at once, and
the request waits on the store's own future: one hop through the event loop fewer than through a batch's
task. If the store cannot make a batch durable,
each of its requests gets :class:`~gateway.errors.AuditUnavailableError` (HTTP 503) and nothing it read
is disclosed. A checkpoint is signed in the same transaction when ``checkpoint_every_events`` have been
written since the last, or by a timer every ``checkpoint_every_seconds`` when events were written since;
each is also sent to the checkpoint sink, if one is configured. The people and agreements of the events
committed are indexed in bulk (:meth:`~gateway.audit.store.AuditStore.index`) once ``index_every_events``
are waiting, or by a timer every ``index_every_seconds``. Events written, batch sizes, commit times,
failures and the queue are metrics (``fedgate_audit_*``, :mod:`gateway.metrics`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog

from gateway.audit.chain import Checkpoint, StoredEvent, checkpoint_payload
from gateway.audit.keys import Signer
from gateway.audit.settings import AuditSettings
from gateway.audit.store import AuditStore, Entry
from gateway.errors import AuditUnavailableError
from gateway.metrics import (
    AUDIT_COMMIT_DURATION,
    AUDIT_EVENTS,
    AUDIT_QUEUE,
    AUDIT_WRITE_FAILURES,
)
from gateway.tasks import cancel_and_wait

log = structlog.get_logger("fedgate.audit")


#: How every audit time is written: UTC, microseconds, ``Z`` (so text order is time order).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_text() -> str:
    """Now, as :data:`TIME_FORMAT` (written by ``isoformat``, which is quicker than ``strftime``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str) -> str:
    """An ISO 8601 date or time (UTC unless it says otherwise) as :data:`TIME_FORMAT`; ``ValueError`` if it
    is not one."""
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime(TIME_FORMAT)


@dataclass
class Checkpoints:
    """When a checkpoint is due, and signing it."""

    signer: Signer
    every_events: int
    every_seconds: float
    #: Signed since last drained (a transaction that then failed never stored them).
    fresh: list[Checkpoint] = field(default_factory=list)

    def fork(self) -> Checkpoints:
        """The same policy, holding only what is signed through it (one per append: appends may overlap)."""
        return Checkpoints(self.signer, self.every_events, self.every_seconds)

    def drain(self) -> list[Checkpoint]:
        taken, self.fresh = self.fresh, []
        return taken

    def due(self, head_seq: int, last: Checkpoint | None) -> bool:
        if last is None:
            return head_seq >= self.every_events or self._old(None)
        if head_seq - last.seq >= self.every_events:
            return True
        return head_seq > last.seq and self._old(last)

    def _old(self, last: Checkpoint | None) -> bool:
        if last is None:
            return False
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(last.time)  # TIME_FORMAT is ISO 8601 (UTC, Z)
        return age.total_seconds() >= self.every_seconds

    def withdraw(self, checkpoint: Checkpoint) -> None:
        self.fresh.remove(checkpoint)

    def sign(self, seq: int, head: str) -> Checkpoint:
        at = now_text()
        checkpoint = Checkpoint(seq, head, at, self.signer.sign(checkpoint_payload(seq, head, at)), self.signer.key_id)
        self.fresh.append(checkpoint)
        return checkpoint


class _Timed(Checkpoints):
    """The timer's view: a checkpoint is due whenever events were written since the last one."""

    def due(self, head_seq: int, last: Checkpoint | None) -> bool:
        return last is None or head_seq > last.seq


@dataclass
class _Pending:
    entry: Entry
    done: asyncio.Future[StoredEvent]


class AuditWriter:
    """Appends events to the store in batches; one per process."""

    def __init__(self, store: AuditStore, signer: Signer, settings: AuditSettings) -> None:
        self.store = store
        self.settings = settings
        self.checkpoints = Checkpoints(signer, settings.checkpoint_every_events, settings.checkpoint_every_seconds)
        self._queue: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        #: The last error the store gave (``None`` once a batch commits again): for ``/readyz``.
        self.failure: str | None = None
        self._stopping = False
        #: Signs a checkpoint whenever events were written since the last (the timer's and stop's policy).
        self._timed = _Timed(signer, settings.checkpoint_every_events, settings.checkpoint_every_seconds)
        #: Events this process committed that are not indexed yet (as far as it knows).
        self._unindexed = 0
        #: Set when ``index_every_events`` are waiting.
        self._index_due = asyncio.Event()
        self._deadlines = _Deadlines(settings.write_timeout_seconds)
        #: Checkpoints on their way to the sink.
        self._sinking: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.store.open()
        if self.settings.checkpoint_sink is not None and self.settings.checkpoint_sink.url is not None:
            self._http = httpx.AsyncClient(timeout=5)
        self._tasks = [
            asyncio.create_task(self._commit_loop(), name="fedgate-audit-writer"),
            asyncio.create_task(self._checkpoint_loop(), name="fedgate-audit-checkpoints"),
            asyncio.create_task(self._index_loop(), name="fedgate-audit-index"),
            asyncio.create_task(self._health_loop(), name="fedgate-audit-health"),
        ]

    async def stop(self) -> None:
        """Commit what is queued, sign a checkpoint of the head if events were written since the last (so the
        tail written before a restart is covered too), then close the store."""
        if not self._tasks:  # never started (the store did not open): nothing to commit or sign
            await self.store.close()
            return
        self._stopping = True
        self._arrived.set()
        commit, *others = self._tasks
        await cancel_and_wait(*others)
        try:
            await commit
        except Exception:  # the loop failed: what it left is committed below, or failed
            log.exception("audit_writer_failed")
        self._tasks = []
        if self._queue:
            await self._commit(self._take())
        await self._index()
        try:
            await self.store.checkpoint_if_due(self._timed)
        except AuditUnavailableError as error:
            log.error("audit_checkpoint_failed", reason=error.message)
        await self._sink_all(self._timed.drain())
        if self._sinking:
            await asyncio.wait(self._sinking)
        if self._http is not None:
            await self._http.aclose()
        self._deadlines.close()
        await self.store.close()

    async def record(self, entry: Entry) -> StoredEvent:
        """Make ``entry`` durable; raises :class:`AuditUnavailableError` if it could not be, within
        ``audit.write_timeout_seconds`` (the batch may still commit it later: then it is recorded, but the
        request had its 503 and disclosed nothing)."""
        if self.store.concurrent_appends:
            return await self._hand_over(entry)
        done: asyncio.Future[StoredEvent] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(entry, done))
        self._deadlines.watch(done)
        AUDIT_QUEUE.inc()
        self._arrived.set()
        return await done

    async def _hand_over(self, entry: Entry) -> StoredEvent:
        """``entry`` handed straight to a store that commits the appends waiting together itself: the request
        waits on the store's own future, which the store resolves from its thread (no batch task between)."""
        started = time.perf_counter()
        checkpoints = self.checkpoints.fork()
        AUDIT_QUEUE.inc()
        try:
            appended = self.store.append([entry], checkpoints)
            assert isinstance(appended, asyncio.Future), "a store taking appends concurrently answers with a future"
            self._deadlines.watch(appended)
            stored: StoredEvent = (await appended)[0]
        except _Late:
            raise
        except AuditUnavailableError as error:
            self._failed(1, error)
            raise
        finally:
            AUDIT_QUEUE.dec()
        self._committed(1, started, checkpoints)
        return stored

    def _take(self) -> list[_Pending]:
        batch, self._queue = (
            self._queue[: self.settings.batch_max_events],
            self._queue[self.settings.batch_max_events :],
        )
        if not self._queue and not self._stopping:  # stopping: the loop must see the queue is empty, and end
            self._arrived.clear()
        AUDIT_QUEUE.dec(len(batch))
        return batch

    async def _commit_loop(self) -> None:
        while True:
            await self._arrived.wait()
            if self._stopping and not self._queue:
                return
            if self.settings.batch_wait_ms and len(self._queue) < self.settings.batch_max_events:
                await asyncio.sleep(self.settings.batch_wait_ms / 1000)
            await self._commit(self._take())

    async def _commit(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        checkpoints = self.checkpoints.fork()
        try:
            stored = await self.store.append([pending.entry for pending in batch], checkpoints)
        except AuditUnavailableError as error:
            self._failed(len(batch), error)
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(AuditUnavailableError(error.message))
            return
        for pending, event in zip(batch, stored, strict=True):
            if not pending.done.done():
                pending.done.set_result(event)
        self._committed(len(batch), started, checkpoints)

    def _failed(self, events: int, error: AuditUnavailableError) -> None:
        self.failure = error.message
        AUDIT_WRITE_FAILURES.labels("store").inc(events)
        log.error("audit_write_failed", events=events, reason=error.message)

    def _committed(self, events: int, started: float, checkpoints: Checkpoints) -> None:
        """``events`` are durable: counted, their checkpoints sent to the sink, indexing woken if it is due."""
        self.failure = None
        AUDIT_COMMIT_DURATION.observe(time.perf_counter() - started)
        AUDIT_EVENTS.inc(events)
        signed = checkpoints.drain()
        if signed:  # sent on a task of its own: no request or commit waits for the sink
            task = asyncio.create_task(self._sink_all(signed))
            self._sinking.add(task)
            task.add_done_callback(self._sinking.discard)
        self._unindexed += events
        if self._unindexed >= self.settings.index_every_events:
            self._index_due.set()  # indexed by its own task: the next batch's commit does not wait for it

    async def _index(self) -> None:
        """Index what was committed since the last time; a failure is logged (the next time, or a query,
        indexes it)."""
        waiting, self._unindexed = self._unindexed, 0
        try:
            await self.store.index()
        except AuditUnavailableError as error:
            self._unindexed += waiting
            log.error("audit_index_failed", reason=error.message)

    async def _index_loop(self) -> None:
        """Index once ``index_every_events`` are waiting, or every ``index_every_seconds`` if any are."""
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow a cancellation
                async with asyncio.timeout(self.settings.index_every_seconds):
                    await self._index_due.wait()
            self._index_due.clear()
            if self._unindexed:
                await self._index()

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.checkpoint_every_seconds)
            try:
                await self.store.checkpoint_if_due(self._timed)
            except AuditUnavailableError as error:
                self._timed.drain()
                log.error("audit_checkpoint_failed", reason=error.message)
                continue
            await self._sink_all(self._timed.drain())

    async def _health_loop(self) -> None:
        """Ask the store every ``audit.health_check_seconds`` whether it answers (for ``/readyz``), so a store
        that went away is reported before a request finds out, and one that came back is reported too."""
        while True:
            await asyncio.sleep(self.settings.health_check_seconds)
            try:
                await asyncio.wait_for(self.store.ping(), self.settings.write_timeout_seconds)
            except (AuditUnavailableError, TimeoutError) as error:
                self.failure = (
                    error.message if isinstance(error, AuditUnavailableError) else "the store does not answer"
                )
                continue
            self.failure = None

    async def _sink_all(self, checkpoints: list[Checkpoint]) -> None:
        for checkpoint in checkpoints:
            await self._sink(checkpoint)

    async def _sink(self, checkpoint: Checkpoint) -> None:
        sink = self.settings.checkpoint_sink
        if sink is None:
            return
        line = orjson.dumps(checkpoint.to_dict())
        try:
            if sink.path is not None:
                await asyncio.to_thread(_append_line, sink.path, line)
            elif self._http is not None and sink.url is not None:
                (
                    await self._http.post(sink.url, content=line, headers={"content-type": "application/json"})
                ).raise_for_status()
        except (OSError, httpx.HTTPError) as error:
            log.error("audit_checkpoint_sink_failed", seq=checkpoint.seq, error=type(error).__name__)


class _Late(AuditUnavailableError):
    """A request's event was not durable by its deadline (counted as a timeout, not a store failure)."""


class _Deadlines:
    """Gives up on each request whose event is not durable ``seconds`` after it was handed over: one timer,
    armed for the oldest request still waiting, rather than one per request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: Requests in the order they were handed over (each with its deadline), those answered dropped as
        #: the oldest are.
        self._waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, done: asyncio.Future[Any]) -> None:
        """Fail ``done`` with ``AUDIT_UNAVAILABLE`` unless it is done ``seconds`` from now."""
        waiting = self._waiting
        while waiting and waiting[0][1].done():
            waiting.popleft()
        loop = done.get_loop()
        waiting.append((loop.time() + self.seconds, done))
        if self._timer is None:
            self._timer = loop.call_at(waiting[0][0], self._expire)

    def _expire(self) -> None:
        waiting = self._waiting
        loop = asyncio.get_running_loop()
        now = loop.time()
        while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
            done = waiting.popleft()[1]
            if not done.done():
                AUDIT_WRITE_FAILURES.labels("timeout").inc()
                done.set_exception(_Late("the audit store did not record the request in time"))
        self._timer = loop.call_at(waiting[0][0], self._expire) if waiting else None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _append_line(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(line + b"\n")
