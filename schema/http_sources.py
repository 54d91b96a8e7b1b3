"""Departments reached over HTTP: a REST API or another GraphQL endpoint.

Neither can run SQL, so fedgate pushes down what the API declares it can filter on (see
:mod:`schema.endpoints`), fetches the matching rows, and evaluates everything else itself: the
remaining filters, the policy's row filters and masks, ordering and pages. Responses are streamed and
capped; a response over the cap fails the query rather than being truncated into a wrong answer.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from schema.credentials import Credential, NoCredential
from schema.models import FileRelative
from schema.sources import HTTP_URL, SourceSettings

_FORBIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "host", "content-length"})
#: Set by fedgate itself: it asks only for the content codings it inflates within the response cap.
_FEDGATE_HEADERS = frozenset({"accept-encoding"})


class HttpSource(SourceSettings, FileRelative):
    """What REST and GraphQL sources share: credential, TLS, caps and static headers."""

    credential: Credential = Field(
        default_factory=lambda: NoCredential(kind="none"), description="How fedgate authenticates to the API."
    )
    max_response_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=1024**3, description="Largest response body accepted (per HTTP response)."
    )
    max_rows: int = Field(
        20_000, ge=1, le=10_000_000, description="Most rows one query may fetch over all pages; more fails the query."
    )
    max_pages: int = Field(100, ge=1, le=100_000, description="Most pages one query may follow.")
    ca_file: str | None = Field(None, description="CA bundle to verify the API's TLS certificate (PEM).")
    headers: dict[str, str] = Field(default_factory=dict, description="Static, non-secret request headers.")

    @field_validator("headers")
    @classmethod
    def _no_credentials_in_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if name.lower() in _FORBIDDEN_HEADERS:
                raise ValueError(f"header '{name}' cannot be set here; credentials go under 'credential'")
            if name.lower() in _FEDGATE_HEADERS:
                raise ValueError(f"header '{name}' is set by fedgate (the codings it reads within its caps)")
        return headers


def _no_userinfo(url: str) -> str:
    """A URL without ``user:password@`` (secrets never live in the catalog)."""
    if "@" in urlsplit(url).netloc:
        raise ValueError("credentials cannot be part of the URL; use 'credential' with an environment variable")
    return url


class RestSource(HttpSource):
    """A department's REST API; each table maps to an endpoint (``tables[].rest``)."""

    kind: Literal["rest"]
    base_url: str = Field(pattern=HTTP_URL, description="The API's base URL; endpoint paths are relative to it.")

    @field_validator("base_url")
    @classmethod
    def _plain_base(cls, url: str) -> str:
        if urlsplit(url).query:
            raise ValueError("the base URL cannot have a query string; filters and pages are added per endpoint")
        return _no_userinfo(url)


class GraphQLSource(HttpSource):
    """Another GraphQL endpoint; each table maps to a root list field (``tables[].graphql``)."""

    kind: Literal["graphql"]
    url: str = Field(pattern=HTTP_URL, description="The GraphQL endpoint (POST, application/json).")

    @field_validator("url")
    @classmethod
    def _plain_url(cls, url: str) -> str:
        return _no_userinfo(url)
