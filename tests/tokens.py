"""A token issuer of the tests' own (an RSA key and its JWKS served on 127.0.0.1), and the forgeries an attacker
would try: unsigned tokens, HMAC keyed with the public key, another key, another audience, expired ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.local_http import Handler, serving

AUDIENCE = "test-client"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An OIDC issuer whose JWKS is served at ``jwks_url`` while it is started (``with Issuer() as issuer``)."""

    def __init__(self, issuer: str = "https://issuer.test", audience: str = AUDIENCE) -> None:
        self.issuer, self.audience = issuer, audience
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        self.fetches = 0
        self.url = ""

    def __enter__(self) -> Issuer:
        issuer = self

        class Keys(Handler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                issuer.fetches += 1
                self.json(200, issuer.jwks)

        self._serving = serving(Keys)
        self.url = self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(*exc)

    @property
    def jwks_url(self) -> str:
        assert self.url, "start the issuer first"
        return f"{self.url}/.well-known/jwks.json"

    def claims(self, sub: str, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub, "aud": self.audience, "iat": now, "exp": now + 3600}
        claims.update({"token_use": "id", "cognito:username": sub})
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, sub: str, admin: bool = False, **extra: Any) -> str:
        """A valid ID token of ``sub`` (in the ``admin`` group if asked); ``extra`` claims override the defaults."""
        if admin:
            extra.setdefault("cognito:groups", ["admin"])
        return jwt.encode(self.claims(sub, **extra), self.key, algorithm="RS256", headers={"kid": self.kid})

    # ---- forgeries

    def unsigned(self, sub: str) -> str:
        """``alg: none``: a token with no signature at all."""
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": self.kid}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(sub)).encode())}."

    def hmac_with_public_key(self, sub: str) -> str:
        """HS256 keyed with the issuer's public key (PEM): the classic algorithm-confusion forgery."""
        pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self.kid}).encode())
        payload = _b64(json.dumps(self.claims(sub)).encode())
        signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def signed_by_another_key(self, sub: str, same_kid: bool = True) -> str:
        """Right claims, signed by a key that is not the issuer's (with the issuer's kid, or an unknown one)."""
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = self.kid if same_kid else uuid.uuid4().hex
        return jwt.encode(self.claims(sub), other, algorithm="RS256", headers={"kid": kid})

    def expired(self, sub: str) -> str:
        now = int(time.time())
        return self.token(sub, iat=now - 7200, exp=now - 3600)

    def for_another_audience(self, sub: str) -> str:
        return self.token(sub, aud="another-client")


FORGERIES = (
    "wrong-signature",
    "unknown-kid",
    "alg-none",
    "hs256-with-public-key",
    "expired",
    "another-audience",
    "tampered-sub",
    "not-a-jwt",
)


def forgeries(issuer: Issuer, sub: str) -> dict[str, str]:
    """Every token the API must refuse, by name."""
    return {
        "wrong-signature": issuer.signed_by_another_key(sub),
        "unknown-kid": issuer.signed_by_another_key(sub, same_kid=False),
        "alg-none": issuer.unsigned(sub),
        "hs256-with-public-key": issuer.hmac_with_public_key(sub),
        "expired": issuer.expired(sub),
        "another-audience": issuer.for_another_audience(sub),
        "tampered-sub": _tampered(issuer.token(sub), "someone-else"),
        "not-a-jwt": "not-a-token",
    }


def _tampered(token: str, sub: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = sub
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
