"""Compressed answers that inflate far beyond their size ("zip bombs"), for the tests of the response caps."""

from __future__ import annotations

import functools
import zlib

from starlette.responses import Response

MIB = 1024 * 1024
#: zlib's ``wbits`` per content coding ('raw-deflate': deflate without its zlib wrapper, as some servers send).
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS}


@functools.cache
def compressed(data: bytes, coding: str = "gzip") -> bytes:
    """``data`` compressed in ``coding``."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, WBITS[coding])
    return compressor.compress(data) + compressor.flush()


@functools.cache
def bomb(inflated: int, coding: str = "gzip") -> bytes:
    """About ``inflated`` bytes of spaces (JSON whitespace), compressed about a thousand to one."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, WBITS[coding], 9, zlib.Z_RLE)  # as small, three times faster
    block = b" " * MIB
    parts = [compressor.compress(block) for _ in range(max(1, inflated // MIB))]
    return b"".join(parts) + compressor.flush()


def bomb_response(inflated: int = 128 * MIB, coding: str = "gzip") -> Response:
    """A JSON response whose body is a bomb, declared as the compressed size it is on the wire."""
    wire = "deflate" if coding == "raw-deflate" else coding
    return Response(bomb(inflated, coding), media_type="application/json", headers={"content-encoding": wire})
