"""The housing API as its own process beside the gateway: started, awaited and stopped by ``fedgate demo``.

A separate process on its own port, like a real department's API: stopping it (``kill <pid>``) leaves the
gateway running, and queries then get ``null`` with an error at the housing paths while every other
department still answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.errors import StartupError
from gateway.listening import ensure_free

from .housing_api import TOKEN_ENV


class ServiceError(Exception):
    """The housing API could not be started; the message says why."""


@dataclass
class HousingService:
    """A running housing API process."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout`` seconds); nothing if it has ended."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_housing_api(
    *, host: str, port: int, data: Path, token: str, timeout: float = 20.0, quiet: bool = False
) -> HousingService:
    """Start ``python -m <this package>.housing_api`` serving ``data`` on ``host:port`` with ``token`` in its
    environment, and wait until it answers ``/healthz``. Raises :class:`ServiceError` if it cannot start."""
    try:
        ensure_free(host, port, what="the housing API")
    except StartupError as error:
        raise ServiceError(f"{error.message} (--housing-port)") from None
    module = f"{__package__}.housing_api"
    command = [sys.executable, "-m", module, "--host", host, "--port", str(port), "--data", str(data)]
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        [*command, "--exit-with-parent"], env={**os.environ, TOKEN_ENV: token}, stdout=output, stderr=output
    )
    service = HousingService(process, f"http://{host}:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ServiceError(f"the housing API stopped during start-up (exit code {code}); see its message above")
        try:
            if httpx.get(f"{service.url}/healthz", timeout=1.0).status_code == 200:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    service.stop()
    raise ServiceError(f"the housing API did not answer on {service.url} within {timeout:.0f} seconds")
