"""How fedgate authenticates to a department's HTTP API (REST or GraphQL sources).

fedgate never forwards the caller's own token to a department. A source either uses a **service
credential** of fedgate's own (a static bearer token, HTTP basic, or OAuth 2.0 client credentials), or
asks an authorisation server for a **token exchange** (RFC 8693): the caller's token goes to the
authorisation server only, and the department receives a new token narrowed to its own audience.

Secrets are read from environment variables named here (``*_env``), held as
:class:`~pydantic.SecretStr`, and never printed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, model_validator

from schema.models import StrictModel
from schema.sources import HTTP_URL, SecretEnv, secret_from_env


class NoCredential(StrictModel):
    """The API needs no credential (a public or network-restricted endpoint)."""

    kind: Literal["none"]


class BearerCredential(StrictModel):
    """A static service token sent as ``Authorization: Bearer``."""

    kind: Literal["bearer"]
    token_env: SecretEnv = Field(description="Environment variable holding the token.")
    _token: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read(self, info: ValidationInfo) -> Any:
        self._token = secret_from_env(self.token_env, info)
        return self

    @property
    def token(self) -> SecretStr | None:
        return self._token


class BasicCredential(StrictModel):
    """HTTP basic authentication with a service account."""

    kind: Literal["basic"]
    username: str = Field(min_length=1)
    password_env: SecretEnv = Field(description="Environment variable holding the password.")
    _password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read(self, info: ValidationInfo) -> Any:
        self._password = secret_from_env(self.password_env, info)
        return self

    @property
    def password(self) -> SecretStr | None:
        return self._password


class _TokenEndpointClient(StrictModel):
    """A confidential client of an OAuth 2.0 authorisation server (what both token grants share)."""

    token_url: str = Field(pattern=HTTP_URL, description="The authorisation server's token endpoint.")
    client_id: str = Field(min_length=1)
    client_secret_env: SecretEnv = Field(description="Environment variable holding the client secret.")
    client_auth: Literal["client_secret_basic", "client_secret_post"] = Field(
        "client_secret_basic", description="How fedgate authenticates to the token endpoint (RFC 6749 §2.3.1)."
    )
    scope: str | None = Field(None, description="Scopes to ask for, space-separated.")
    audience: str | None = Field(
        None, min_length=1, description="The audience the token is for, sent as the ``audience`` parameter."
    )
    _secret: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read(self, info: ValidationInfo) -> Any:
        self._secret = secret_from_env(self.client_secret_env, info)
        return self

    @property
    def client_secret(self) -> SecretStr | None:
        return self._secret


class ClientCredentials(_TokenEndpointClient):
    """OAuth 2.0 client credentials (RFC 6749 §4.4): fedgate's own token for the API, cached until expiry."""

    kind: Literal["client_credentials"]


class TokenExchange(_TokenEndpointClient):
    """OAuth 2.0 token exchange (RFC 8693): the caller's token is exchanged for one narrowed to ``audience``.

    The department sees who is asking (the exchanged token's subject) without ever receiving the
    token the caller sent to fedgate. Exchanged tokens are cached per caller token until they expire.
    """

    kind: Literal["token_exchange"]
    audience: str = Field(min_length=1, description="The department API's audience; required.")


Credential = Annotated[
    NoCredential | BearerCredential | BasicCredential | ClientCredentials | TokenExchange,
    Field(discriminator="kind"),
]
