"""Every HTTP response body fedgate reads from the network, read within a cap on its *inflated* size.

One reader for every caller: the departments' REST and GraphQL APIs, their token endpoints, and the
identity providers' JWKS, discovery and introspection endpoints. httpx's own decoding inflates each
network chunk whole before anyone can count it, so a compressed answer of a few hundred kilobytes (a
"gzip bomb") costs tens of megabytes per chunk before a size check sees it. Instead the raw stream is
read (``aiter_raw``) and inflated here, incrementally, each step allowed at most the room left under the
cap (``zlib``'s ``max_length``): fedgate never holds more than ``cap`` inflated bytes plus one network
chunk, and stops as soon as the body passes the cap.

* Codings: ``gzip`` (``x-gzip``), ``deflate`` (zlib-wrapped, or raw as some servers send it) and
  ``identity``. Only ``gzip, deflate`` is advertised (:data:`ACCEPT_ENCODING`, sent by every client);
  any other coding, or codings stacked on one another, is refused as undecodable.
* The raw bytes count against the cap too (a declared ``Content-Length`` over it is refused before
  reading), so an endless stream of empty compressed blocks is stopped as well.
* Over the cap: the caller's ``too_large()`` error is raised (``SOURCE_RESPONSE_TOO_LARGE`` for a
  department, ``AUTH_UNAVAILABLE`` for an identity provider...). A body that does not inflate:
  :class:`httpx.DecodingError`, which every caller already maps with httpx's other errors.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import httpx

#: The content codings :func:`read_body` inflates: the ``Accept-Encoding`` every fedgate client sends.
ACCEPT_ENCODING = "gzip, deflate"

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class _Inflater:
    """One content coding, inflated a piece at a time, never beyond the room it is given."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._zlib = zlib.decompressobj(wbits)
        self._started = False

    def inflate(self, data: bytes, body: bytearray, cap: int) -> bool:
        """Inflate ``data`` onto ``body``; False as soon as ``body`` would pass ``cap`` (it then holds at
        most ``cap + 1`` bytes)."""
        while data and not self._zlib.eof:
            room = cap - len(body) + 1
            try:
                piece = self._zlib.decompress(data, room)
            except zlib.error as exc:
                if self._started or self._wbits != _ZLIB:
                    raise httpx.DecodingError("the response body does not inflate") from exc
                # 'deflate' sent raw, without its zlib wrapper, as some servers do (httpx reads it too).
                self._wbits, self._zlib = _RAW_DEFLATE, zlib.decompressobj(_RAW_DEFLATE)
                continue
            self._started = True
            body += piece
            if len(body) > cap:
                return False
            # Output stopped short of the room: zlib has consumed what it could. Anything left is input
            # it has not read yet (the room ran out earlier) or, after the end of the stream, ignored.
            data = self._zlib.unconsumed_tail
        return True


def _inflater(response: httpx.Response) -> _Inflater | None:
    """The inflater for the response's ``Content-Encoding`` (None: identity); undecodable codings refused."""
    codings = [
        coding.strip().lower()
        for coding in response.headers.get_list("content-encoding", split_commas=True)
        if coding.strip().lower() not in ("", "identity")
    ]
    if not codings:
        return None
    if len(codings) > 1:
        raise httpx.DecodingError("the response stacks several content codings")
    if codings[0] in ("gzip", "x-gzip"):
        return _Inflater(_GZIP)
    if codings[0] == "deflate":
        return _Inflater(_ZLIB)
    raise httpx.DecodingError("the response uses a content coding fedgate did not ask for")


async def read_body(response: httpx.Response, cap: int, too_large: Callable[[], BaseException]) -> bytes:
    """The body of a streamed ``response``, inflated, at most ``cap`` bytes; ``too_large()`` is raised the
    moment it would pass the cap, raw or inflated. Undecodable bodies raise :class:`httpx.DecodingError`."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large()
    inflater = _inflater(response)
    body = bytearray()
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > cap:
            raise too_large()
        if inflater is None:
            body += chunk
        elif not inflater.inflate(chunk, body, cap):
            raise too_large()
    return bytes(body)
