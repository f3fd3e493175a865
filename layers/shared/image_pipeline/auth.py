"""Who is calling: the bearer token of a request, verified against its issuer's public keys (PyJWT).

The token is an OpenID Connect ID token (Cognito's, or any issuer's the stack is configured for) or a Cognito access
token. It is accepted only when:
- its signature verifies with a key of the issuer's JWKS, found by the token's ``kid``, with an asymmetric algorithm
  (``alg: none``, HMAC keyed with a public key and unknown ``kid``s are refused);
- ``iss`` is the configured issuer, and the audience (``aud``, or a Cognito access token's ``client_id``) the
  configured one;
- ``exp`` and ``nbf`` hold, with LEEWAY_SECONDS of clock skew;
- ``token_use``, where the issuer sets it (Cognito), is ``id`` or ``access``.
Errors are ApiError(401, code) with a code the client can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from image_pipeline.errors import ApiError

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
LEEWAY_SECONDS = 30
JWKS_KEEP_SECONDS = 3600  # keys are read again after an hour, or at once for a kid not seen (a rotation)
_COGNITO_HOST = re.compile(r"cognito-idp\.[a-z0-9-]+\.amazonaws\.com")
_BEARER = re.compile(r"Bearer\s+([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    """A verified caller: ``sub`` is the owner id of what it creates."""

    sub: str
    admin: bool = False
    username: str | None = None


def jwks_url(issuer: str, configured: str | None = None, aws_endpoint_url: str | None = None) -> str:
    """Where the issuer's keys are: ``configured`` if given, else the OIDC convention (``{issuer}/.well-known/
    jwks.json``). A Cognito issuer is an AWS endpoint, so where AWS_ENDPOINT_URL sends every AWS call (a local
    cloud), its keys are read there too, as the SDK would."""
    if configured:
        return configured
    url = f"{issuer.rstrip('/')}/.well-known/jwks.json"
    parts = urlsplit(url)
    if aws_endpoint_url and _COGNITO_HOST.fullmatch(parts.hostname or ""):
        return f"{aws_endpoint_url.rstrip('/')}{parts.path}"
    return url


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


class TokenVerifier:
    """Verifies bearer tokens of one issuer; its keys are fetched once and kept (PyJWKClient's cache)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        keys_url: str,
        admin_claim: str = "cognito:groups",
        admin_value: str = "admin",
        timeout: float = 5.0,
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self.admin_claim, self.admin_value = admin_claim, admin_value
        self.keys = jwt.PyJWKClient(keys_url, cache_jwk_set=True, lifespan=JWKS_KEEP_SECONDS, timeout=timeout)

    def caller(self, authorization: str | None) -> Caller:
        """The caller the ``Authorization`` header proves, or ApiError 401."""
        if not authorization:
            raise _unauthorized("UNAUTHORIZED", "sign in: send Authorization: Bearer <token>")
        match = _BEARER.fullmatch(authorization)
        if match is None:
            raise _unauthorized("INVALID_TOKEN", "the Authorization header is not a bearer token")
        claims = self.claims(match.group(1))
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _unauthorized("INVALID_TOKEN", "the token names no subject")
        username = claims.get("cognito:username") or claims.get("username")  # for logs and the page; never a key
        return Caller(sub, self._is_admin(claims), username if isinstance(username, str) else None)

    def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("INVALID_TOKEN", "the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise _unauthorized("INVALID_TOKEN", "the token's algorithm is not accepted")
        try:
            key = self.keys.get_signing_key(str(header.get("kid")))
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError):  # unreachable, or no usable key published
            raise ApiError(
                503, "SERVICE_UNAVAILABLE", "the token issuer's keys cannot be read, retry shortly"
            ) from None
        except jwt.PyJWKClientError:
            raise _unauthorized("INVALID_TOKEN", "the token was not signed by a key of the issuer") from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("TOKEN_EXPIRED", "the token has expired: sign in again") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("INVALID_TOKEN", "the token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("INVALID_TOKEN", "the token is of another issuer") from None
        except jwt.PyJWTError:
            raise _unauthorized("INVALID_TOKEN", "the token's signature or claims are not valid") from None
        self._check_use_and_audience(claims)
        return claims

    def _check_use_and_audience(self, claims: dict[str, Any]) -> None:
        use = claims.get("token_use")
        if use is not None and use not in ("id", "access"):
            raise _unauthorized("INVALID_TOKEN", "the token is neither an ID nor an access token")
        if use == "access":  # Cognito's access tokens name the app client in client_id and have no aud
            audiences = [claims.get("client_id")]
        else:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise _unauthorized("INVALID_TOKEN", "the token was issued for another audience")

    def _is_admin(self, claims: dict[str, Any]) -> bool:
        value = claims.get(self.admin_claim)
        if isinstance(value, str):
            return value == self.admin_value or self.admin_value in value.split()
        return isinstance(value, list) and self.admin_value in value
