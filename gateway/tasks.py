"""Stopping background tasks, one way everywhere: cancel them, then wait until each has ended."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` is skipped: a task never started) and wait until every one has ended (what a
    task raises while ending is not raised here: it is stopping)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
