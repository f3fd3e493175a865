"""EnableCdn: download URLs and srcsets name the CloudFront distribution (unsigned; they do not expire) instead of
presigned S3 URLs. The distribution itself is checked statically (tests/unit/test_template.py): the local cloud has
no CloudFront."""

from __future__ import annotations

import dataclasses

import pytest
from image_pipeline import api, keys
from image_pipeline.auth import Caller
from image_pipeline.config import Settings
from image_pipeline.records import ImageRepository

ALICE = Caller("alice")

IMAGE_ID = "0a4fe3a1-ce40-4537-abc8-14417c4c92ac"


@pytest.fixture
def processed(aws_env):
    repo = ImageRepository(aws_env["table"])
    repo.create_pending(IMAGE_ID, keys.upload_key(IMAGE_ID), None, None, "alice", 10)
    repo.claim(IMAGE_ID, keys.upload_key(IMAGE_ID), "e", "arn:run")
    renditions = [
        {
            "size": 400,
            "width": 400,
            "height": 300,
            "format": fmt,
            "bytes": 9,
            "key": keys.set_rendition_key(IMAGE_ID, 400, ext),
        }
        for fmt, ext in (("avif", "avif"), ("jpeg", "jpg"))
    ]
    default = {"key": keys.set_rendition_key(IMAGE_ID, 400, "jpg"), "bytes": 9, "width": 400, "height": 300}
    repo.mark_processed(IMAGE_ID, "arn:run", {"processed": {**default, "format": "JPEG"}, "renditions": renditions})
    return aws_env["s3"], repo


def test_with_a_cdn_urls_name_the_distribution_and_do_not_expire(processed):
    s3, repo = processed
    settings = dataclasses.replace(Settings.from_env(), cdn_domain="d111111abcdef8.cloudfront.net")
    got = api.download(s3, repo, settings, ALICE, IMAGE_ID)
    assert got["downloadUrl"] == f"https://d111111abcdef8.cloudfront.net/renditions/{IMAGE_ID}/400.jpg"
    assert got["expiresIn"] is None
    avif = api.download(s3, repo, settings, ALICE, IMAGE_ID, size="400", format="avif")
    assert avif["downloadUrl"] == f"https://d111111abcdef8.cloudfront.net/renditions/{IMAGE_ID}/400.avif"
    picture = api.srcset(s3, repo, settings, ALICE, IMAGE_ID)
    urls = [picture["fallback"]["src"], *(s["srcset"] for s in picture["sources"])]
    assert all(u.startswith("https://d111111abcdef8.cloudfront.net/renditions/") for u in urls), urls
    assert "Signature" not in str(picture) and picture["expiresIn"] is None


def test_without_a_cdn_urls_are_presigned_and_expire(processed):
    s3, repo = processed
    settings = Settings.from_env()
    got = api.download(s3, repo, settings, ALICE, IMAGE_ID)
    assert "Signature=" in got["downloadUrl"] and got["expiresIn"] == settings.url_expiry_seconds
