"""Settings of the development authorization server (``dev_issuer`` in ``fedgate.yaml``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.listening import ListeningHost
from gateway.policy.model import ScopeToken
from schema.models import FileRelative, StrictModel


class DevClient(StrictModel):
    """A demo client application: what it may ask for and the claims its tokens carry."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, description="Who this client stands for, e.g. 'Meanwood GP surgery app'.")
    scopes: list[ScopeToken] = Field(min_length=1, description="Scopes the client may be granted.")
    claims: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Extra claims in its tokens (organisation, role...)."
    )
    exchange_audiences: list[str] = Field(
        default_factory=list,
        description="Audiences it may obtain tokens for by RFC 8693 token exchange (fedgate's own client).",
    )


class DevIssuerSettings(FileRelative):
    """A small OAuth 2.0 authorization server for the demo and for development. Never for production."""

    enabled: bool = Field(False, description="Must be true to run the dev issuer outside `fedgate demo`.")
    host: ListeningHost = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8001, ge=1, le=65535)
    audience: str = Field("fedgate", description="The 'aud' of the tokens it issues.")
    token_lifetime_seconds: int = Field(900, ge=60, le=86400)
    state_file: str = Field(
        "data/dev-issuer.json", description="Signing keys and client secrets, generated on first run (keep private)."
    )
    clients: list[DevClient] = Field(min_length=1)

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_path(self) -> Path:
        return self.resolve_path(self.state_file)

    def client(self, client_id: str) -> DevClient | None:
        return next((client for client in self.clients if client.id == client_id), None)
