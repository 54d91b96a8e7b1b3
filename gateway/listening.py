"""Listening sockets, bound before anything is served, and who holds a port that is taken.

Every server fedgate runs (the gateway, the dev issuer, the demo's housing API) binds its socket here
first and hands it to uvicorn, so a busy port stops start-up at once with one line naming the port and
the process that holds it, instead of a server that logs an error and serves nothing.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from gateway.errors import StartupError

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}$")


def listening_host(value: str) -> str:
    """An IP address (``127.0.0.1``, ``0.0.0.0``, ``::``) or a host name: what a socket can be bound to."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOST_NAME.match(value) or value.rsplit(".", 1)[-1].isdigit():
            raise ValueError("not an IP address (127.0.0.1, 0.0.0.0, ::1, without brackets) or a host name") from None
    return value


#: An address to listen on (``server.host``, ``dev_issuer.host``).
ListeningHost = Annotated[str, AfterValidator(listening_host)]


def listen(host: str, port: int, *, what: str) -> socket.socket:
    """A socket listening on ``host:port`` for ``what`` ("the gateway"); :class:`StartupError` if it cannot."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, reuse_port=False, backlog=2048)
    except OSError as exc:
        raise StartupError(_why(exc, host, port, what)) from exc
    sock.set_inheritable(True)  # worker processes share it
    return sock


def busy_now(host: str, port: int, *, what: str) -> str | None:
    """Try ``host:port`` the way :func:`listen` will, and let it go at once: ``None`` if ``what`` could listen
    there; the reason if the port is in use at this moment (a state of the machine, which may change before
    start-up); :class:`StartupError` for what will not change (an address that is not this machine's, a port
    this user may not open)."""
    try:
        listen(host, port, what=what).close()
    except StartupError as error:
        cause = error.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            return error.message
        raise
    return None


def ensure_free(host: str, port: int, *, what: str) -> None:
    """Refuse a busy ``port`` before starting something (a child process) that would bind it itself."""
    listen(host, port, what=what).close()


def _why(error: OSError, host: str, port: int, what: str) -> str:
    if error.errno == errno.EADDRINUSE:
        holder = port_holder(port)
        held = f" by {holder}" if holder else ""
        in_use = f"port {port} on {host} is already in use{held}"
        return f"{in_use}, so {what} cannot start there: stop it or choose another port"
    if error.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges this user does not have, so {what} cannot start there"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine, so {what} cannot listen on it"
    return f"{what} cannot listen on {host}:{port}: {error.strerror or error}"


def port_holder(port: int) -> str | None:
    """``pid 123 (python -m demo.housing_api ...)`` for the process listening on ``port``, when this user may
    see it (Linux ``/proc``); ``None`` otherwise."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return f"pid {entry.name} ({_command(entry)})"
    return None


def _listening_inodes(port: int) -> set[str]:
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _command(process: Path) -> str:
    try:
        words = (process / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "unknown"
    text = " ".join(word.decode(errors="replace") for word in words)
    return text if len(text) <= 80 else text[:77] + "..."
