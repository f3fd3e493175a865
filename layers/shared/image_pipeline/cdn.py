"""CloudFront signed URLs of the renditions (EnableCdn): the distribution serves a rendition only with a URL signed by
the stack's key (its key group trusts only that key), valid as long as a presigned S3 URL would be.

The private key is an RSA key in PEM that the operator keeps in Secrets Manager under ``{stack}-cdn-signing-key``
(docs/security.md); the function reads it once, at its first signed URL. Signing is botocore's CloudFrontSigner
(a canned policy: the URL and its expiry) with an RSA-SHA1 signature, what CloudFront's signed URLs use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from image_pipeline.errors import ConfigError


class UrlSigner:
    """Signed URLs of ``https://{domain}/{key}`` with the key of ``key_pair_id`` (the CloudFront public key's id)."""

    def __init__(self, domain: str, key_pair_id: str, private_key_pem: bytes, lifetime_seconds: int) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("the CDN signing key must be an RSA private key (PEM)")
        self.domain, self.lifetime = domain, lifetime_seconds
        self._signer = CloudFrontSigner(
            key_pair_id, lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1())
        )  # noqa: S303 - CloudFront's algorithm

    def url(self, path: str, now: dt.datetime | None = None) -> str:
        expires = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=self.lifetime)
        return self._signer.generate_presigned_url(f"https://{self.domain}/{path}", date_less_than=expires)


def lazy_signer(
    domain: str, key_pair_id: str, read_key: Callable[[], bytes], lifetime_seconds: int
) -> Callable[[str], str]:
    """A function of a rendition's key to its signed URL; the private key is read (``read_key``) at the first call."""
    made: list[UrlSigner] = []

    def sign(path: str) -> str:
        if not made:
            made.append(UrlSigner(domain, key_pair_id, read_key(), lifetime_seconds))
        return made[0].url(path)

    return sign
