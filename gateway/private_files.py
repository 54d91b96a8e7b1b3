"""Files fedgate generates on first run and keeps private: the policy secret and the dev issuer's state.

Each is read with a bound on its size (a path pointing at a device or a huge file is refused, not read),
written with mode 0600 so that no half-written file is ever seen, and, when it does not exist yet, checked
for whether it *could* be created, so that ``fedgate check`` (which writes nothing) finds what start-up
would trip on. Problems are raised as :class:`ValueError` whose message is a reason to show an operator
(it names the path, never the content); the configuration loader places it at the setting's key.
"""

from __future__ import annotations

import os
from pathlib import Path


def exists(path: Path) -> bool:
    """Whether something is at ``path`` (a dangling symbolic link counts: it is not ours to replace)."""
    return path.exists() or path.is_symlink()


def read_private(path: Path, *, limit: int) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes; ValueError with a reason otherwise."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file")
    if exists(path) and not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    try:
        with path.open("rb") as handle:
            content = handle.read(limit + 1)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    if len(content) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes: not the file fedgate wrote")
    return content


def creation_problem(path: Path) -> str | None:
    """Why ``path`` could not be created by this user (None if it could): its nearest existing ancestor must be
    a folder this user can write to and enter, and nothing in between may be a file."""
    ancestor = path.parent
    while not exists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot create {path}: {ancestor} is not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot create {path}: this user may not write to {ancestor}"
    return None


def create_private(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` (mode 0600, parent folders made) unless something is there already;
    whether it was written. Atomic and exclusive: a concurrent reader sees no file or the whole file, and of
    two processes creating it at once, one wins and the other reads what it wrote."""
    return _write(path, content, replace=False)


def replace_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` (mode 0600, parent folders made), atomically replacing what was there."""
    _write(path, content, replace=True)


def _write(path: Path, content: bytes, *, replace: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(partial, path)
            return True
        try:
            os.link(partial, path)
        except FileExistsError:
            return False
        return True
    finally:
        partial.unlink(missing_ok=True)
