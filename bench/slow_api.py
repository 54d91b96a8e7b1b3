"""A REST department for benchmarks: ``GET /items`` answers 100 rows after a fixed delay (``FEDGATE_BENCH_DELAY``
seconds, default 0.05), as a remote API does. Run by :mod:`bench.fanout` as its own process:

    python -m uvicorn bench.slow_api:app --port 8765
"""

from __future__ import annotations

import asyncio
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DELAY = float(os.environ.get("FEDGATE_BENCH_DELAY", "0.05"))
ROWS = [{"id": number, "label": f"item {number}"} for number in range(1, 101)]


async def items(request: Request) -> JSONResponse:
    await asyncio.sleep(DELAY)
    return JSONResponse({"data": ROWS})


app = Starlette(routes=[Route("/items", items)])
