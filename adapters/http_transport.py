"""The HTTP side of REST and GraphQL sources: a pooled client, capped streamed responses, mapped errors.

* one ``httpx.AsyncClient`` per source, with ``pool_size`` connections, TLS verified (against
  ``ca_file`` when set), no redirects followed (a redirect could carry credentials elsewhere), proxies
  and ``.netrc`` from the environment ignored;
* each response is streamed, inflated incrementally by :func:`adapters.http_body.read_body`, and
  abandoned as soon as it exceeds ``max_response_bytes`` (after decompression, never more held):
  ``SOURCE_RESPONSE_TOO_LARGE``, never a truncated answer; a body that does not inflate, or uses a
  coding fedgate did not ask for, is ``SOURCE_BAD_RESPONSE``;
* statuses: 401/403 → ``SOURCE_AUTH_FAILED``; 429 → ``SOURCE_RESOURCE_EXHAUSTED`` and 5xx →
  ``SOURCE_UNAVAILABLE`` (both retryable); other 4xx → ``SOURCE_QUERY_FAILED``; anything else but 2xx →
  ``SOURCE_BAD_RESPONSE``; connection failures → ``SOURCE_UNAVAILABLE``; timeouts → ``SOURCE_TIMEOUT``; a
  body that is not JSON → ``SOURCE_BAD_RESPONSE``;
* every failure is logged with the department, endpoint path, status and error class, never a body,
  a query string (it holds values) or a header.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from adapters.errors import (
    SourceAuthError,
    SourceError,
    SourceQueryError,
    SourceResourceExhaustedError,
    SourceResponseError,
    SourceResponseTooLargeError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from adapters.http_body import ACCEPT_ENCODING, read_body
from adapters.http_values import loads
from schema.http_sources import HttpSource

log = structlog.get_logger("fedgate.adapters.http")

QueryParams = list[tuple[str, str]]


def tls_verify(source: HttpSource) -> ssl.SSLContext | bool:
    """The TLS verification setting: the system's trust store, or only ``ca_file``'s authorities.

    Raises ``OSError`` or ``ssl.SSLError`` when ``ca_file`` cannot be read.
    """
    if source.ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(source.resolve_path(source.ca_file)))


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """A successful response: its parsed JSON body, final URL and ``Link`` relations."""

    body: Any
    url: httpx.URL
    links: Mapping[str, str]


class HttpTransport:
    """Requests to one department's API, each within a time budget and the source's caps."""

    def __init__(self, department: str, source: HttpSource, verify: ssl.SSLContext | bool) -> None:
        self.department = department
        self.source = source
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        #: Requests in flight to this API at once, over every fetch (the source's concurrency).
        self._slots = asyncio.Semaphore(source.concurrency)

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._verify,
                follow_redirects=False,
                trust_env=False,
                headers={"accept": "application/json", **self.source.headers, "accept-encoding": ACCEPT_ENCODING},
                limits=httpx.Limits(
                    max_connections=self.source.pool_size, max_keepalive_connections=self.source.pool_size
                ),
            )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        timeout: float,
        endpoint: str,
        params: QueryParams | None = None,
        json: Any = None,
        authorization: str | None = None,
    ) -> JsonResponse:
        """Send one request and return its JSON body; every failure is a mapped :class:`SourceError`."""
        if self._client is None:
            await self.open()
        assert self._client is not None
        headers = {"authorization": authorization} if authorization else {}
        async with self._slots:
            try:
                async with self._client.stream(
                    method,
                    url,
                    params=None if params is None else tuple(params),
                    json=json,
                    headers=headers,
                    timeout=httpx.Timeout(max(timeout, 0.001)),
                ) as response:
                    self._check_status(response, endpoint)
                    body = await self._read(response, endpoint)
                    final_url = response.url
                    links = {rel: str(link.get("url", "")) for rel, link in response.links.items() if rel}
            except SourceError:
                raise
            except httpx.TimeoutException as exc:
                self._log(endpoint, None, exc, "SOURCE_TIMEOUT")
                raise SourceTimeoutError(
                    self.department, f"department '{self.department}' did not answer within {timeout:.3g} s"
                ) from exc
            except httpx.TransportError as exc:
                self._log(endpoint, None, exc, "SOURCE_UNAVAILABLE")
                raise self.unavailable() from exc
            except httpx.HTTPError as exc:  # a malformed URL or header from the API (a next link)
                self._log(endpoint, None, exc, "SOURCE_BAD_RESPONSE")
                raise self.bad_response("an unusable response") from exc
        try:
            document = loads(body)
        except (ValueError, RecursionError) as exc:
            self._log(endpoint, 200, exc, "SOURCE_BAD_RESPONSE")
            raise self.bad_response("a body that is not JSON") from exc
        return JsonResponse(document, final_url, links)

    def _check_status(self, response: httpx.Response, endpoint: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        error: SourceError
        if status in (401, 403):
            error = SourceAuthError(self.department, f"department '{self.department}' refused fedgate's credential")
        elif status == 429:  # too many requests: the API limits fedgate's rate
            error = SourceResourceExhaustedError(
                self.department, f"department '{self.department}' is limiting fedgate's requests"
            )
        elif status >= 500:
            error = self.unavailable()
        elif 400 <= status < 500:
            error = SourceQueryError(self.department, f"department '{self.department}' rejected the request")
        else:
            error = self.bad_response(f"an unexpected HTTP status {status}")
        self._log(endpoint, status, None, error.code)
        raise error

    async def _read(self, response: httpx.Response, endpoint: str) -> bytes:
        cap = self.source.max_response_bytes

        def too_large() -> SourceError:
            self._log(endpoint, response.status_code, None, "SOURCE_RESPONSE_TOO_LARGE")
            return self.too_large(f"a response over {cap} bytes")

        return await read_body(response, cap, too_large)

    def unavailable(self) -> SourceUnavailableError:
        return SourceUnavailableError(self.department, f"department '{self.department}' is unavailable")

    def bad_response(self, what: str) -> SourceResponseError:
        return SourceResponseError(self.department, f"department '{self.department}' answered with {what}")

    def too_large(self, what: str) -> SourceResponseTooLargeError:
        return SourceResponseTooLargeError(
            self.department, f"department '{self.department}' answered with {what}; the query was refused"
        )

    def _log(self, endpoint: str, status: int | None, exc: BaseException | None, code: str) -> None:
        log.warning(
            "http_source_error",
            department=self.department,
            endpoint=endpoint,
            status=status,
            error=type(exc).__name__ if exc is not None else None,
            mapped=code,
        )
