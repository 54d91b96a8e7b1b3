"""A REST department for :mod:`bench.hostile_dependencies`: ``GET /items`` answers 100 rows; ``GET /bomb``
answers a gzip bomb (``FEDGATE_BENCH_BOMB_MIB`` MiB of spaces, default 128, compressed about a thousand to one). Run as
its own process:

    python -m uvicorn bench.hostile_api:app --port 8766
"""

from __future__ import annotations

import os
import zlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MIB = 1024 * 1024
ROWS = [{"id": number, "label": f"item {number}"} for number in range(1, 101)]


def _bomb(mebibytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9, zlib.Z_RLE)
    block = b" " * MIB
    return b"".join(compressor.compress(block) for _ in range(mebibytes)) + compressor.flush()


BOMB = _bomb(int(os.environ.get("FEDGATE_BENCH_BOMB_MIB", "128")))


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"data": ROWS})


async def bomb(request: Request) -> Response:
    return Response(BOMB, media_type="application/json", headers={"content-encoding": "gzip"})


app = Starlette(routes=[Route("/items", items), Route("/bomb", bomb)])
