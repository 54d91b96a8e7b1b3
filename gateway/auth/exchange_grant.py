"""OAuth 2.0 token exchange (RFC 8693) for the dev issuer, as an authlib grant.

authlib has no token-exchange grant of its own (``authlib.oauth2.rfc8693`` is empty), so this one
extends its ``BaseGrant`` and ``TokenEndpointMixin`` like the built-in grants. A client allowed to
exchange (``exchange_audiences`` in its dev-issuer settings; fedgate itself, for departments configured
with ``credential: {kind: token_exchange}``) posts the caller's access token and gets back a new one:

* the subject token must be one this issuer signed (RS256, ``typ: at+jwt``), for its own audience,
  unexpired: anything else is ``invalid_request`` (RFC 8693 §2.2.2);
* ``audience`` is required and must be one the client may ask for, else ``invalid_target``; ``resource``
  and ``actor_token`` are not supported;
* the new token keeps the subject's ``sub``, is for the requested audience only, carries the requested
  scope (which must lie within the client's scopes; all of them when none is requested),
  ``client_id`` of the exchanging client and ``act: {"sub": <that client>}`` (RFC 8693 §4.1), and
  never outlives the subject token.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError, OAuth2Error, UnauthorizedClientError
from authlib.oauth2.rfc6749.grants import BaseGrant
from authlib.oauth2.rfc6749.grants.base import TokenEndpointMixin
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc9068.claims import JWTAccessTokenClaims
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a type name
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a type name


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8693 §2.2.2: the requested audience is not one the client may have a token for."""

    error = "invalid_target"


class ExchangeSubject:
    """The party a token is exchanged for: the subject token's ``sub``, the audience asked for, and when
    the subject token expires (the new token must not outlive it)."""

    def __init__(self, subject: str, audience: str, expires_at: int) -> None:
        self.subject = subject
        self.audience = audience
        self.expires_at = expires_at

    def get_user_id(self) -> str:
        return self.subject


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` at the token endpoint.

    The server must provide ``subject_token_key`` (the key its access tokens are signed with),
    ``issuer`` and ``audience`` (its own tokens' ``iss`` and ``aud``) as attributes.
    """

    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'")
        self.request.client = client
        form = self.request.form
        for name in ("actor_token", "resource"):
            if form.get(name):
                raise InvalidRequestError(f"'{name}' is not supported")
        subject_token = form.get("subject_token")
        if not subject_token:
            raise InvalidRequestError("'subject_token' is required")
        if form.get("subject_token_type") not in {ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE}:
            raise InvalidRequestError("'subject_token_type' must name an access token")
        requested = form.get("requested_token_type")
        if requested and requested != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError("only access tokens are issued")
        audience = form.get("audience")
        if not audience:
            raise InvalidRequestError("'audience' is required")
        if not client.may_exchange_for(audience):
            raise InvalidTargetError("the client may not obtain tokens for this audience")
        scope = self.request.payload.scope
        if scope and client.get_allowed_scope(scope) != " ".join(scope.split()):
            raise InvalidScopeError()
        claims = self._verified_subject(subject_token)
        self.request.user = ExchangeSubject(str(claims["sub"]), audience, int(claims["exp"]))

    def _verified_subject(self, token: str) -> dict[str, Any]:
        """The subject token's claims, if this issuer signed it for its own audience and it is current."""
        key: RSAKey = self.server.subject_token_key
        try:
            decoded = jwt.decode(token, key, algorithms=["RS256"])
        except (JoseError, ValueError) as exc:
            raise InvalidRequestError("the subject token is invalid") from exc
        if str(decoded.header.get("typ", "")).lower() not in {"at+jwt", "application/at+jwt"}:
            raise InvalidRequestError("the subject token is not an access token")
        options = {
            "iss": {"essential": True, "value": self.server.issuer},
            "aud": {"essential": True, "value": self.server.audience},
            "exp": {"essential": True},
            **{name: {"essential": True} for name in ("sub", "client_id", "iat", "jti")},
        }
        claims = JWTAccessTokenClaims(decoded.claims, decoded.header, options)
        try:
            claims.validate(leeway=0)
        except JoseError as exc:
            raise InvalidRequestError("the subject token is invalid") from exc
        return dict(decoded.claims)

    @hooked  # type: ignore[untyped-decorator]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        subject: ExchangeSubject = self.request.user
        scope = self.client.get_allowed_scope(self.request.payload.scope)
        remaining = subject.expires_at - int(time.time())
        token = self.generate_token(user=subject, scope=scope, include_refresh_token=False)
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        token["expires_in"] = min(int(token.get("expires_in", remaining)), remaining)
        log.debug("token exchanged for client %s", self.client.get_client_id())
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
