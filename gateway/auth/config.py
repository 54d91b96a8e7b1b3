"""Authentication settings: the ``auth`` section of ``fedgate.yaml``.

auth:
  enabled: true
  issuers:
    - issuer: https://login.example.nhs.uk/realms/fedgate
      audiences: [fedgate]
      algorithms: [RS256, PS256, ES256, EdDSA]
      claims: {attributes: {org_code: organisation, role: role}}
  introspection:
    endpoint: https://idp.example.gov.uk/oauth2/introspect
    client_id: fedgate
    client_secret_env: FEDGATE_INTROSPECTION_SECRET
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, HttpUrl, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator

from gateway.policy.purposes import PurposeClaim
from gateway.principal import BUILTIN_ATTRIBUTES
from schema.models import StrictModel
from schema.sources import BreakerSettings, SecretEnv, secret_from_env

#: The signature algorithms fedgate can accept; an issuer narrows them. Never ``none``, never HMAC: a
#: resource server holds only public keys (RFC 8725 §3.1, §3.2).

#: ``Ed25519`` is EdDSA's fully-specified name (RFC 9864); ``EdDSA`` stays for identity providers that use it.
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]
DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "PS256", "ES256", "EdDSA", "Ed25519")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _over_https(url: str, what: str) -> str:
    """``url``, if it is https, or plain http to this machine (a test or the demo's issuer); else ValueError:
    keys, tokens and client secrets are never fetched or sent where a network could read or change them."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname or "")):
        return url
    raise ValueError(f"{what} must be an https URL (plain http only to this machine: localhost, 127.0.0.1, ::1)")


class ClaimMapping(StrictModel):
    """Which claims say who the caller is and what they may do."""

    subject: str = Field("sub", description="Claim holding the principal's subject.")
    client: list[str] = Field(
        default_factory=lambda: ["client_id", "azp"], description="Claims naming the client, in order."
    )
    scopes: Literal["scope", "scp"] = Field("scope", description="'scope' (space-delimited string) or 'scp' (array).")
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Principal attribute → claim name (e.g. org_code: organisation)."
    )
    purpose: PurposeClaim | None = Field(
        None, description="Where the issuer's tokens bind the purpose of use (a string claim or IHE IUA's Coding)."
    )


class IssuerSettings(StrictModel):
    """One trusted token issuer (an identity provider)."""

    issuer: str = Field(min_length=1, description="Exact 'iss' value; also the base for OIDC discovery.")
    audiences: list[str] = Field(min_length=1, description="Accepted 'aud' values; the token must name one.")
    jwks_uri: HttpUrl | None = Field(
        None, description="Where the signing keys are; discovered from the issuer if absent."
    )
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS), min_length=1)
    profile: Literal["jwt", "rfc9068"] = Field(
        "jwt", description="rfc9068: require typ at+jwt and the RFC 9068 claims (client_id, iat, jti, sub)."
    )
    leeway_seconds: int = Field(30, ge=0, le=600, description="Clock skew allowed for exp, nbf and iat.")
    claims: ClaimMapping = Field(default_factory=ClaimMapping)

    @field_validator("jwks_uri")
    @classmethod
    def _keys_over_https(cls, uri: HttpUrl | None) -> HttpUrl | None:
        if uri is not None:
            _over_https(str(uri), "jwks_uri (where the signing keys come from)")
        return uri

    @model_validator(mode="after")
    def _discoverable(self) -> IssuerSettings:
        if self.jwks_uri is None:
            parts = urlsplit(self.issuer)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    "issuer is not a URL, so its keys cannot be discovered (<issuer>/.well-known/"
                    "openid-configuration): set jwks_uri"
                )
            _over_https(self.issuer, "without jwks_uri, the issuer (where discovery finds the keys)")
        return self


class IntrospectionSettings(StrictModel):
    """RFC 7662 token introspection, for opaque (non-JWT) tokens."""

    endpoint: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret_env: SecretEnv = Field(description="Environment variable holding the client secret.")
    issuer: str | None = Field(None, description="If set, the response's 'iss' must equal it.")
    audiences: list[str] = Field(default_factory=list, description="If set, the response's 'aud' must name one.")
    cache_seconds: int = Field(
        300, ge=0, le=3600, description="Longest a result is reused (never past the token's exp)."
    )
    claims: ClaimMapping = Field(default_factory=ClaimMapping)
    breaker: BreakerSettings = Field(
        default_factory=BreakerSettings,
        description="When to stop calling a failing introspection endpoint (requests then get 503 at once).",
    )
    _secret: SecretStr | None = PrivateAttr(default=None)

    @field_validator("endpoint")
    @classmethod
    def _sent_over_https(cls, endpoint: HttpUrl) -> HttpUrl:
        _over_https(str(endpoint), "the introspection endpoint (it is sent tokens and the client secret)")
        return endpoint

    @model_validator(mode="after")
    def _read_secret(self, info: ValidationInfo) -> IntrospectionSettings:
        self._secret = secret_from_env(self.client_secret_env, info)
        return self

    @property
    def client_secret(self) -> SecretStr | None:
        return self._secret


class AuthSettings(StrictModel):
    """Authentication of every request to /graphql."""

    enabled: bool = Field(True, description="false: no authentication, everything visible (development only).")
    realm: str = Field("fedgate", pattern=r'^[^"\\]+$', description="Realm named in WWW-Authenticate challenges.")
    issuers: list[IssuerSettings] = Field(default_factory=list)
    introspection: IntrospectionSettings | None = None
    max_token_bytes: int = Field(8192, ge=256, le=65536, description="Longer tokens are refused before decoding.")
    http_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Longest a JWKS, discovery or introspection call may take, start to end."
    )
    max_response_bytes: int = Field(
        512 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest JWKS, discovery or introspection response (after decompression); larger: 503.",
    )
    jwks_refresh_seconds: int = Field(
        600, ge=30, le=86400, description="Keys are re-fetched this often, in the background."
    )
    jwks_min_refresh_interval_seconds: int = Field(
        30, ge=1, le=3600, description="At most one re-fetch per interval when a token names an unknown key."
    )
    unknown_kid_wait_seconds: float = Field(
        2.0,
        gt=0,
        le=30,
        description="Longest a request naming an unknown key waits for the keys to be fetched; then 503.",
    )
    token_cache_seconds: int = Field(
        60, ge=0, le=3600, description="A verified JWT is trusted again without re-verification this long (0: never)."
    )
    token_cache_size: int = Field(10_000, ge=1, le=1_000_000, description="Most verified JWTs remembered.")

    @field_validator("issuers")
    @classmethod
    def _each_issuer_once(cls, issuers: list[IssuerSettings]) -> list[IssuerSettings]:
        seen: set[str] = set()
        for issuer in issuers:
            if issuer.issuer in seen:
                raise ValueError(f"issuer {issuer.issuer} is listed twice: merge its audiences and settings")
            seen.add(issuer.issuer)
        return issuers

    def principal_attributes(self) -> frozenset[str]:
        """Every attribute a principal can carry: the built-in ones and those any issuer's claims map."""
        mappings = [issuer.claims for issuer in self.issuers]
        if self.introspection is not None:
            mappings.append(self.introspection.claims)
        return BUILTIN_ATTRIBUTES.union(*(mapping.attributes for mapping in mappings))
