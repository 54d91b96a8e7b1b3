"""The one reader of every HTTP body fedgate takes from the network, against a real server on loopback:
bodies inflate incrementally, and no more than the cap is ever held, however they are compressed."""

from __future__ import annotations

import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from adapters.http_body import ACCEPT_ENCODING, read_body
from tests.support.bombs import MIB, bomb, bomb_response, compressed
from tests.support.servers import serving

#: A gzip member's header, then deflate's empty, non-final stored block (RFC 1951 §3.2.4): inflates to nothing.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
EMPTY_STORED_BLOCK = b"\x00\x00\x00\xff\xff"
DOCUMENT = json.dumps({"keys": [{"kid": f"key-{n}", "n": "x" * 200} for n in range(50)]}).encode()


class Over(Exception):
    """The caller's error for a body over the cap."""


def _over() -> Over:
    return Over()


def _app() -> Starlette:
    async def answer(request: Request) -> Response:
        kind = request.path_params["kind"]
        coding = request.query_params.get("coding", "gzip")
        wire = "deflate" if coding == "raw-deflate" else coding
        if kind == "bomb":
            return bomb_response(64 * MIB, coding)
        if kind == "document":
            body = DOCUMENT if coding == "identity" else compressed(DOCUMENT, coding)
            return Response(body, media_type="application/json", headers={"content-encoding": wire})
        if kind == "exactly":  # inflates to exactly the size asked for
            size = int(request.query_params["size"])
            return Response(compressed(b" " * size), headers={"content-encoding": "gzip"})
        if kind == "empty-blocks":  # endless empty stored deflate blocks: kilobytes on the wire, nothing inflated

            async def blocks() -> AsyncIterator[bytes]:
                yield GZIP_HEADER
                for _ in range(100):
                    yield EMPTY_STORED_BLOCK * 1000

            return StreamingResponse(blocks(), headers={"content-encoding": "gzip"})
        if kind == "pieces":  # no Content-Length: read as it comes
            size = int(request.query_params["size"])

            async def pieces() -> AsyncIterator[bytes]:
                for _ in range(size // 1000):
                    yield b" " * 1000

            return StreamingResponse(pieces())
        if kind == "declared":
            return Response(b" " * 4096)
        if kind == "coded":
            return Response(compressed(DOCUMENT), headers={"content-encoding": request.query_params["as"]})
        if kind == "garbage":
            return Response(b"\x1f\x8b\x08\x00" + b"\xff" * 200, headers={"content-encoding": "gzip"})
        return Response(request.headers.get("accept-encoding", ""))

    return Starlette(routes=[Route("/{kind}", answer)])


@pytest.fixture
async def server() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with serving(_app()) as url, httpx.AsyncClient(headers={"accept-encoding": ACCEPT_ENCODING}) as client:
        yield client, url


async def _read(server: tuple[httpx.AsyncClient, str], path: str, cap: int) -> bytes:
    client, url = server
    async with client.stream("GET", f"{url}{path}") as response:
        return await read_body(response, cap, _over)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
async def test_a_bomb_is_refused_holding_no_more_than_the_cap(
    server: tuple[httpx.AsyncClient, str], coding: str
) -> None:
    """64 MiB inflated from 64 KiB on the wire: refused at 1 MiB, and the read never held much more."""
    tracemalloc.start()
    try:
        with pytest.raises(Over):
            await _read(server, f"/bomb?coding={coding}", MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB while reading a bomb capped at 1 MiB"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "identity"])
async def test_bodies_under_the_cap_arrive_whole(server: tuple[httpx.AsyncClient, str], coding: str) -> None:
    assert await _read(server, f"/document?coding={coding}", MIB) == DOCUMENT


async def test_the_cap_is_on_the_inflated_size_to_the_byte(server: tuple[httpx.AsyncClient, str]) -> None:
    assert await _read(server, "/exactly?size=50000", 50_000) == b" " * 50_000
    with pytest.raises(Over):
        await _read(server, "/exactly?size=50001", 50_000)


async def test_the_raw_stream_counts_too(server: tuple[httpx.AsyncClient, str]) -> None:
    """Megabytes of empty compressed blocks inflate to almost nothing, and are refused all the same."""
    with pytest.raises(Over):
        await _read(server, "/empty-blocks", 64 * 1024)
    gzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert gzip.decompress(GZIP_HEADER + EMPTY_STORED_BLOCK * 1000) == b"" and not gzip.eof  # valid, and empty


async def test_streamed_and_declared_lengths(server: tuple[httpx.AsyncClient, str]) -> None:
    assert await _read(server, "/pieces?size=20000", 20_000) == b" " * 20_000
    with pytest.raises(Over):
        await _read(server, "/pieces?size=21000", 20_000)
    with pytest.raises(Over):  # a Content-Length over the cap: refused before reading
        await _read(server, "/declared", 4095)
    assert await _read(server, "/declared", 4096) == b" " * 4096


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "gzip, deflate"])
async def test_codings_not_asked_for_or_stacked_are_refused(server: tuple[httpx.AsyncClient, str], coding: str) -> None:
    with pytest.raises(httpx.DecodingError):
        await _read(server, f"/coded?as={coding}", MIB)


async def test_identity_is_no_coding_and_garbage_does_not_inflate(server: tuple[httpx.AsyncClient, str]) -> None:
    assert await _read(server, "/coded?as=gzip,%20identity", MIB) == DOCUMENT
    with pytest.raises(httpx.DecodingError):
        await _read(server, "/garbage", MIB)


async def test_only_the_codings_it_reads_are_asked_for(server: tuple[httpx.AsyncClient, str]) -> None:
    assert ACCEPT_ENCODING == "gzip, deflate"
    assert await _read(server, "/echo", MIB) == b"gzip, deflate"


def test_the_bombs_are_bombs() -> None:
    """The fixtures are what the tests say: a thousand to one."""
    assert len(bomb(64 * MIB)) < 96 * 1024
    assert len(zlib.decompress(bomb(64 * MIB), 16 + zlib.MAX_WBITS)) == 64 * MIB
