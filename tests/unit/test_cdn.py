"""EnableCdn: download URLs and srcsets name the CloudFront distribution, signed with the stack's key (a canned
policy) and expiring as presigned S3 URLs do. The distribution itself is checked statically
(tests/unit/test_template.py): the local cloud has no CloudFront; the signatures are checked here against the public
key, as CloudFront checks them."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from image_pipeline import api, cdn, keys
from image_pipeline.auth import Caller
from image_pipeline.config import Settings
from image_pipeline.errors import ConfigError

from .conftest import claimed

ALICE = Caller("alice")

IMAGE_ID = "0a4fe3a1-ce40-4537-abc8-14417c4c92ac"


@pytest.fixture
def processed(aws_env):
    repo = claimed(aws_env, IMAGE_ID)
    renditions = [
        {
            "size": 400,
            "width": 400,
            "height": 300,
            "format": fmt,
            "bytes": 9,
            "key": keys.rendition_key(IMAGE_ID, "v1", 400, ext),
        }
        for fmt, ext in (("avif", "avif"), ("jpeg", "jpg"))
    ]
    default = {"key": keys.rendition_key(IMAGE_ID, "v1", 400, "jpg"), "bytes": 9, "width": 400, "height": 300}
    repo.mark_processed(IMAGE_ID, "arn:run", {"processed": {**default, "format": "JPEG"}, "renditions": renditions})
    return aws_env["s3"], repo


def _b64(text: str) -> bytes:
    """CloudFront's URL-safe base64 ("-" "_" "~" for "+" "=" "/") decoded."""
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def signed_ok(url: str, public_key, now: float) -> bool:
    """What CloudFront checks of a canned-policy signed URL: the signature over the policy of this URL and its
    expiry, by the key pair it names, and that it has not expired."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    resource = f"{parts.scheme}://{parts.netloc}{parts.path}"
    expires = int(query["Expires"][0])
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()
    try:
        public_key.verify(_b64(query["Signature"][0]), policy, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    except InvalidSignature:
        return False
    return query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"] and expires > now


def test_with_a_cdn_urls_name_the_distribution_are_signed_and_expire(processed):
    # GIVEN a stack with the CDN: its signing key (the private half in Secrets Manager)
    s3, repo = processed
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    reads = []
    settings = dataclasses.replace(Settings.from_env(), cdn_domain="d111111abcdef8.cloudfront.net")
    sign = cdn.lazy_signer(settings.cdn_domain, "K2JCJMDEHXQW5F", lambda: reads.append(1) or pem, 300)
    # WHEN a download URL and a srcset are asked for
    got = api.download(s3, repo, settings, ALICE, IMAGE_ID, cdn=sign)
    avif = api.download(s3, repo, settings, ALICE, IMAGE_ID, size="400", format="avif", cdn=sign)
    picture = api.srcset(s3, repo, settings, ALICE, IMAGE_ID, cdn=sign)
    # THEN each names the distribution, carries a signature CloudFront accepts, and expires as a presigned URL does
    prefix = f"https://d111111abcdef8.cloudfront.net/renditions/{IMAGE_ID}/v1/"
    assert got["downloadUrl"].startswith(prefix + "400.jpg?") and avif["downloadUrl"].startswith(prefix + "400.avif?")
    urls = [
        picture["fallback"]["src"],
        *(u.rsplit(" ", 1)[0] for s in picture["sources"] for u in s["srcset"].split(", ")),
    ]
    now = time.time()
    for url in [got["downloadUrl"], avif["downloadUrl"], *urls]:
        assert url.startswith(prefix) and signed_ok(url, key.public_key(), now), url
        assert now + 290 < int(parse_qs(urlsplit(url).query)["Expires"][0]) <= now + 301
    assert got["expiresIn"] == picture["expiresIn"] == settings.url_expiry_seconds
    assert reads == [1]  # the private key is read once
    # AND a URL altered, or signed by another key, is refused
    forged = got["downloadUrl"].replace("400.jpg", "1600.jpg")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not signed_ok(forged, key.public_key(), now)
    assert not signed_ok(got["downloadUrl"], other.public_key(), now)


def test_with_a_cdn_but_no_signer_no_unsigned_url_is_handed_out(processed):
    s3, repo = processed
    settings = dataclasses.replace(Settings.from_env(), cdn_domain="d111111abcdef8.cloudfront.net")
    with pytest.raises(ConfigError):
        api.download(s3, repo, settings, ALICE, IMAGE_ID)


def test_without_a_cdn_urls_are_presigned_and_expire(processed):
    s3, repo = processed
    settings = Settings.from_env()
    got = api.download(s3, repo, settings, ALICE, IMAGE_ID)
    assert "Signature=" in got["downloadUrl"] and got["expiresIn"] == settings.url_expiry_seconds
