"""Reloading the policy file and the agreements folder into a running gateway, without a restart.

Three triggers, one mechanism (:meth:`PolicyReloader.reload`): ``SIGHUP``, a change to the files
(``agreements.watch``, with watchfiles), and ``POST /admin/reload`` by a caller holding
``agreements.admin_scope``. A file that does not validate is refused with every problem (file, line, key
path and reason) logged and returned; the running version stays. A new version takes effect for the next
request: plans, schemas and access are keyed by the policy's and the agreements' versions, so nothing made
under the old ones is used again. Each worker process reloads itself (the file watch and ``SIGHUP`` reach
every worker; ``POST /admin/reload`` reaches the one that answers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from watchfiles import awatch

from gateway.errors import ConfigError
from gateway.policy.store import Policy, policy_from_settings
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.tasks import cancel_and_wait
from schema.catalog import Catalog

log = structlog.get_logger("fedgate.reload")


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: the versions now in force and, when refused, why."""

    reloaded: bool
    policy_version: str | None
    agreements_version: str | None
    problems: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "reloaded" if self.reloaded else "refused",
            "policy_version": self.policy_version,
            "agreements_version": self.agreements_version,
            "problems": list(self.problems),
        }


class PolicyReloader:
    """Loads the policy and agreements the settings name and, if they validate, puts them in force."""

    def __init__(self, gateway: Gateway, settings: Settings, catalog: Catalog) -> None:
        self.gateway = gateway
        self.settings = settings
        self.catalog = catalog

    def reload(self, trigger: str) -> ReloadOutcome:
        running = self.gateway.policy
        try:  # the master secret is the one the process started with (it is not reloaded)
            policy = policy_from_settings(self.settings, self.catalog, running.secrets if running else None)
        except ConfigError as error:
            problems = tuple(str(issue) for issue in error.issues)
            log.warning("policy_reload_refused", trigger=trigger, problems=list(problems))
            return self._outcome(self.gateway.policy, reloaded=False, problems=problems)
        if policy is None:
            return self._outcome(None, reloaded=False)
        self.gateway.use_policy(policy)
        outcome = self._outcome(policy, reloaded=True)
        log.info(
            "policy_reloaded",
            trigger=trigger,
            policy_version=outcome.policy_version,
            agreements_version=outcome.agreements_version,
        )
        return outcome

    @staticmethod
    def _outcome(policy: Policy | None, *, reloaded: bool, problems: tuple[str, ...] = ()) -> ReloadOutcome:
        agreements = policy.agreements if policy is not None else None
        return ReloadOutcome(
            reloaded,
            policy.version if policy is not None else None,
            agreements.version if agreements is not None else None,
            problems,
        )

    def watched(self) -> list[Path]:
        """The files and folders whose changes reload (the policy file and the agreements folder)."""
        paths = [self.settings.policy.path, self.settings.agreements.path]
        return [path for path in paths if path is not None and path.exists()]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Reload on ``SIGHUP`` and, with ``agreements.watch``, on file changes, while the block runs."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        stop = asyncio.Event()
        watcher = (
            asyncio.create_task(self._watch(stop), name="fedgate-policy-watch")
            if self.settings.agreements.watch and self.watched()
            else None
        )
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            stop.set()
            await cancel_and_wait(watcher)

    async def _watch(self, stop: asyncio.Event) -> None:
        async for _changes in awatch(*self.watched(), stop_event=stop, debounce=200, recursive=True):
            self.reload("file change")
