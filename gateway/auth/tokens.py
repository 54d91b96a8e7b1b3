"""Verifying bearer JWTs (RFC 7519, following RFC 8725 and, per issuer, RFC 9068) into principals.

In order, each step failing closed:

1. size: a token longer than ``auth.max_token_bytes`` is refused before any decoding;
2. shape: three base64url segments, a JSON object header and payload, parsed by
   :mod:`gateway.auth.strict_json` (a member name given twice makes the token invalid);
3. issuer: the (unverified) ``iss`` selects a configured issuer, else the token is refused;
4. header: ``alg`` must be in the issuer's allow-list (never ``none``, never HMAC); a ``crit`` header is
   refused (fedgate understands no extensions); ``typ`` must be ``at+jwt`` for RFC 9068 issuers;
   ``jwk``, ``jku``, ``x5u`` and ``x5c`` are ignored: keys come only from the issuer's JWKS, and ``kid``
   is only a look-up key into it;
5. signature: joserfc verifies it with that key, for that one algorithm;
6. claims: authlib's joserfc-based claims classes validate ``iss``, ``aud``, ``exp``, ``nbf`` and
   ``iat`` (with leeway) and, for RFC 9068 issuers, ``sub``, ``client_id``, ``iat`` and ``jti``;
7. principal: subject, client, scopes and the configured attributes are read from the claims.

Error descriptions are fixed phrases that echo nothing from the token.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from typing import Any

from authlib.oauth2.claims import ClaimsOption, JWTClaims
from authlib.oauth2.rfc9068.claims import JWTAccessTokenClaims
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError

from gateway.auth import strict_json
from gateway.auth.config import ClaimMapping, IssuerSettings
from gateway.auth.jwks import JwksCache
from gateway.errors import InvalidTokenError
from gateway.principal import Principal

MAX_HEADER_BYTES = 2048


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _segment(text: str, limit: int) -> dict[str, Any]:
    if len(text) > limit:
        raise InvalidTokenError("the token is malformed")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = strict_json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("the token is malformed") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError("the token is malformed")
    return value


class JwtVerifier:
    """Verifies JWTs from the configured issuers."""

    def __init__(self, issuers: Mapping[str, tuple[IssuerSettings, JwksCache]], max_token_bytes: int) -> None:
        self.issuers = issuers
        self.max_token_bytes = max_token_bytes

    async def verify(self, token: str) -> Principal:
        if len(token) > self.max_token_bytes:
            raise InvalidTokenError("the token is too large")
        header_part, payload_part, _ = token.split(".")
        header = _segment(header_part, MAX_HEADER_BYTES)
        unverified = _segment(payload_part, self.max_token_bytes)
        claimed_issuer = unverified.get("iss")
        entry = self.issuers.get(claimed_issuer) if isinstance(claimed_issuer, str) else None
        if entry is None:
            raise InvalidTokenError("the token's issuer is not trusted")
        issuer, keys = entry
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in issuer.algorithms:
            raise InvalidTokenError("the token's signing algorithm is not accepted")
        if "crit" in header:
            raise InvalidTokenError("the token uses critical extensions fedgate does not support")
        if issuer.profile == "rfc9068" and str(header.get("typ", "")).lower() not in {"at+jwt", "application/at+jwt"}:
            raise InvalidTokenError("the token is not a JWT access token (typ at+jwt)")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("the token is malformed")
        key = await keys.key(kid, algorithm)
        try:
            decoded = jwt.decode(token, key, algorithms=[algorithm], decoder_cls=strict_json.StrictDecoder)
        except JoseError as exc:
            raise InvalidTokenError("the token's signature is invalid") from exc
        claims = _validated_claims(decoded.claims, decoded.header, issuer)
        principal = principal_from_claims(claims, issuer.claims, issuer=issuer.issuer)
        return dataclasses.replace(principal, expires_at=float(claims["exp"]))


def _validated_claims(claims: dict[str, Any], header: dict[str, Any], issuer: IssuerSettings) -> JWTClaims:
    options: dict[str, ClaimsOption] = {
        "iss": {"essential": True, "value": issuer.issuer},
        "aud": {"essential": True, "values": list(issuer.audiences)},
        "exp": {"essential": True},
        issuer.claims.subject: {"essential": True},
    }
    claims_class: type[JWTClaims] = JWTClaims
    if issuer.profile == "rfc9068":
        claims_class = JWTAccessTokenClaims
        options.update({name: {"essential": True} for name in ("sub", "client_id", "iat", "jti")})
    validated = claims_class(claims, header, options)
    try:
        validated.validate(leeway=issuer.leeway_seconds)
    except ExpiredTokenError as exc:
        raise InvalidTokenError("the token has expired") from exc
    except MissingClaimError as exc:
        raise InvalidTokenError("the token lacks a required claim") from exc
    except InvalidClaimError as exc:
        raise InvalidTokenError(_claim_problem(exc)) from exc
    except JoseError as exc:
        raise InvalidTokenError("the token's claims are invalid") from exc
    return validated


_CLAIM_PROBLEMS = {
    "aud": "the token is not meant for this service",
    "iss": "the token's issuer is not trusted",
    "nbf": "the token is not valid yet",
    "iat": "the token was issued in the future",
}


def _claim_problem(error: InvalidClaimError) -> str:
    return _CLAIM_PROBLEMS.get(str(getattr(error, "claim", "")), "the token's claims are invalid")


def principal_from_claims(claims: Mapping[str, Any], mapping: ClaimMapping, *, issuer: str | None) -> Principal:
    """The principal a verified claim set describes; wrongly typed claims make the token invalid."""
    subject = claims.get(mapping.subject)
    if not isinstance(subject, str) or not subject:
        raise InvalidTokenError("the token lacks a required claim")
    client = next((claims[name] for name in mapping.client if isinstance(claims.get(name), str)), None)
    raw_scopes = claims.get(mapping.scopes)
    if raw_scopes is None:
        scopes: list[str] = []
    elif isinstance(raw_scopes, str):  # RFC 8693 §4.2 'scope': space-delimited
        scopes = raw_scopes.split()
    elif mapping.scopes == "scp" and isinstance(raw_scopes, list) and all(isinstance(s, str) for s in raw_scopes):
        scopes = raw_scopes
    else:
        raise InvalidTokenError("the token's scopes are malformed")
    attributes = {name: claims[claim] for name, claim in mapping.attributes.items() if claim in claims}
    return Principal(
        subject=subject,
        scopes=frozenset(scopes),
        client_id=client,
        issuer=issuer,
        attributes=attributes,
        authenticated=True,
        bound_purpose=mapping.purpose.read(claims) if mapping.purpose is not None else None,
    )
