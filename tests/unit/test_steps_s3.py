"""The S3 side of the workflow's steps (moto): resize's verified, idempotent single put of each rendition; resize of a
replaced original; validate's ranged reads; pruning renditions of an earlier configuration."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from image_pipeline import workflow
from image_pipeline.config import Settings
from image_pipeline.errors import ImageNotOwnedError, InvalidImageError, RenditionIntegrityError
from image_pipeline.records import ImageRepository

from tests import corpus, images

IMAGE = {"imageId": "3f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a10", "version": "0123456789abcdef"}


def original(s3, settings) -> dict:
    """A 1200x900 JPEG original, validated: what Resize gets."""
    key = f"uploads/{IMAGE['imageId']}"
    put = s3.put_object(Bucket=settings.original_bucket, Key=key, Body=images.jpeg(1200, 900))
    return {**IMAGE, "bucket": settings.original_bucket, "key": key, "etag": put["ETag"].strip('"')}


def keys_in(s3, bucket: str, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


@pytest.fixture
def resized(aws_env):
    """The original, resized: its whole set staged."""
    s3, settings = aws_env["s3"], Settings.from_env()
    image = original(s3, settings)
    return s3, settings, image, workflow.resize(s3, settings, image)


@pytest.fixture
def stored(resized):
    """The staged set, stored."""
    s3, settings, image, result = resized
    return s3, settings, workflow.store(s3, settings, image, result)


def test_resize_stages_the_whole_set_in_one_private_object_and_publishes_nothing(resized):
    s3, settings, image, result = resized
    # 200, 400 and 800 are smaller than 1200; 1600 covers it (rendered at 1200): 4 sizes x 3 formats
    assert [(p["size"], p["format"], p["width"]) for p in result["parts"]] == [
        (size, fmt, width)
        for size, width in ((200, 200), (400, 400), (800, 800), (1600, 1200))
        for fmt in ("avif", "webp", "jpeg")
    ]
    # the default (800 px JPEG for a JPEG) is the set's 800 px JPEG: made and staged once
    assert result["inSet"] == 12 and result["default"] == 8
    assert keys_in(s3, settings.processed_bucket) == []  # Resize writes nowhere clients read
    assert keys_in(s3, settings.work_bucket) == [f"staging/{IMAGE['imageId']}/{image['version']}"]
    body = s3.get_object(Bucket=settings.work_bucket, Key=result["staged"]["key"])["Body"].read()
    assert len(body) == result["staged"]["bytes"] == sum(p["bytes"] for p in result["parts"])
    assert base64.b64encode(hashlib.sha256(body).digest()).decode() == result["staged"]["sha256"]
    for p in result["parts"]:  # each part's own checksum, which Store checks
        part = body[p["offset"] : p["offset"] + p["bytes"]]
        assert base64.b64encode(hashlib.sha256(part).digest()).decode() == p["sha256"]
    assert workflow.resize(s3, settings, image) == result  # a retry stages the same bytes under the same key


def test_store_publishes_the_set_under_immutable_versioned_keys_then_drops_what_was_staged(stored):
    s3, settings, result = stored
    prefix = f"renditions/{IMAGE['imageId']}/{IMAGE['version']}/"
    assert [r["key"] for r in result["renditions"]] == [
        f"{prefix}{size}.{ext}" for size in (200, 400, 800, 1600) for ext in ("avif", "webp", "jpg")
    ]
    assert keys_in(s3, settings.processed_bucket) == sorted(r["key"] for r in result["renditions"])
    assert (result["processed"]["key"], result["processed"]["format"]) == (f"{prefix}800.jpg", "JPEG")
    assert result["version"] == IMAGE["version"] and result["renditionSet"] == settings.rendition_set
    assert result["placeholder"]["color"].startswith("#")
    for rendition in result["renditions"]:
        head = s3.head_object(Bucket=settings.processed_bucket, Key=rendition["key"])
        assert head["ContentLength"] == rendition["bytes"]  # the stored checksum: on the local cloud (test_pipeline)
        assert (
            head["ContentType"]
            == {"avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg"}[rendition["format"]]
        )
        assert head["Metadata"] == {"image-id": IMAGE["imageId"]}
        assert head["CacheControl"] == "public, max-age=31536000, immutable"  # a key's bytes never change
    assert keys_in(s3, settings.work_bucket) == []  # nothing staged outlives the step


def test_a_retry_of_store_after_a_run_that_landed_checks_the_keys_and_gives_the_same_result(resized):
    s3, settings, image, staged = resized
    first = workflow.store(s3, settings, image, staged)
    assert workflow.store(s3, settings, image, staged) == first  # the staged object is gone: HEADs instead
    s3.delete_object(Bucket=settings.processed_bucket, Key=first["renditions"][3]["key"])
    with pytest.raises(RenditionIntegrityError, match="neither the staged renditions nor"):
        workflow.store(s3, settings, image, staged)


def test_staged_bytes_that_are_not_what_resize_put_are_never_published(resized):
    s3, settings, image, staged = resized
    s3.put_object(Bucket=settings.work_bucket, Key=staged["staged"]["key"], Body=b"\0" * staged["staged"]["bytes"])
    with pytest.raises(RenditionIntegrityError, match="not the ones Resize put"):
        workflow.store(s3, settings, image, staged)
    assert keys_in(s3, settings.processed_bucket) == []


class ChecksumOf:
    """The S3 client, answering PUTs with another checksum than the one sent (what a broken store would say)."""

    def __init__(self, s3) -> None:
        self.s3 = s3

    def __getattr__(self, name):
        return getattr(self.s3, name)

    def put_object(self, **kwargs):
        return {**self.s3.put_object(**kwargs), "ChecksumSHA256": "bm90IHRoaXM="}


def test_a_rendition_stored_with_another_checksum_is_an_integrity_error(resized):
    s3, settings, image, staged = resized
    with pytest.raises(RenditionIntegrityError):
        workflow.store(ChecksumOf(s3), settings, image, staged)
    with pytest.raises(RenditionIntegrityError):
        workflow.resize(ChecksumOf(s3), settings, image)


def test_resize_of_a_replaced_original_is_a_named_failure(aws_env):
    s3, settings = aws_env["s3"], Settings.from_env()
    key = f"uploads/{IMAGE['imageId']}"
    first = s3.put_object(Bucket=settings.original_bucket, Key=key, Body=images.jpeg(64, 48))
    s3.put_object(Bucket=settings.original_bucket, Key=key, Body=images.jpeg(48, 64))  # the same URL, used again
    image = {**IMAGE, "bucket": settings.original_bucket, "key": key, "etag": first["ETag"].strip('"')}
    with pytest.raises(workflow.OriginalReplacedError, match="replaced by another upload"):
        workflow.resize(s3, settings, image)


class CountingS3:
    """The S3 client, counting the ranges validate asks for."""

    def __init__(self, s3) -> None:
        self.s3, self.ranges = s3, []

    def get_object(self, **kwargs):
        self.ranges.append(kwargs.get("Range"))
        return self.s3.get_object(**kwargs)


@pytest.mark.parametrize(
    ("make", "gets"),
    [
        (lambda: images.jpeg(4000, 3000), 1),  # a normal photo: one small ranged GET
        (images.jpeg_with_large_icc, 2),  # 0.6 MB of ICC before the frame header
        (lambda: images.webp_photo(1600, 1200), 2),  # ~0.7 MB: Pillow reads a WebP whole
        (lambda: corpus.read("xiaomi.heic"), 1),  # the size is in the meta box at the start (ispe)
    ],
    ids=["jpeg", "jpeg-large-icc", "webp-1MB", "xiaomi-heic"],
)
def test_validate_reads_on_while_the_header_is_incomplete(aws_env, make, gets):
    s3, settings = CountingS3(aws_env["s3"]), Settings.from_env()
    data = make()
    aws_env["s3"].put_object(Bucket=settings.original_bucket, Key="uploads/x", Body=data)
    info, size, etag = workflow.probe_object(s3, settings.original_bucket, "uploads/x", settings)
    assert info.width > 0 and len(s3.ranges) == gets, s3.ranges
    assert size == len(data) and etag == hashlib.md5(data).hexdigest()  # from the first ranged GET: no HEAD
    assert s3.ranges[0] == "bytes=0-262143"
    ends = [int(r.rsplit("-", 1)[1]) for r in s3.ranges]
    assert all(b > a for a, b in zip(ends, ends[1:], strict=False))  # each read continues the last one


def test_validate_finds_a_heif_meta_box_at_the_end_and_refuses_200_megapixels(aws_env, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(25 * 1024 * 1024))
    s3, settings = CountingS3(aws_env["s3"]), Settings.from_env()
    data = corpus.read("200mp.heic")  # mdat first: the meta box is in the last 46 KB of 2.4 MB
    aws_env["s3"].put_object(Bucket=settings.original_bucket, Key="uploads/big", Body=data)
    with pytest.raises(InvalidImageError) as err:
        workflow.probe_object(s3, settings.original_bucket, "uploads/big", settings)
    assert err.value.code == "TOO_MANY_PIXELS" and len(s3.ranges) == 3  # 256 KiB, 1 MiB, the rest


@pytest.mark.parametrize(("body", "code"), [(b"", "EMPTY_FILE"), (b"\xff\xd8" + b"\0" * 300_000, "TOO_LARGE")])
def test_validate_knows_the_size_from_its_first_ranged_get(aws_env, monkeypatch, body, code):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "300000")
    s3, settings = CountingS3(aws_env["s3"]), Settings.from_env()
    aws_env["s3"].put_object(Bucket=settings.original_bucket, Key="uploads/e", Body=body)
    with pytest.raises(InvalidImageError) as err:
        workflow.probe_object(s3, settings.original_bucket, "uploads/e", settings)
    assert err.value.code == code and s3.ranges == ["bytes=0-262143"]  # one read, not the whole object


def test_validate_refuses_heic_when_it_is_turned_off(aws_env, monkeypatch):
    monkeypatch.setenv("ACCEPT_HEIC", "false")
    s3, settings = aws_env["s3"], Settings.from_env()
    data = corpus.read("xiaomi.heic")
    s3.put_object(Bucket=settings.original_bucket, Key="uploads/h", Body=data)
    with pytest.raises(InvalidImageError) as err:
        workflow.probe_object(s3, settings.original_bucket, "uploads/h", settings)
    assert err.value.code == "UNSUPPORTED_FORMAT"


@pytest.fixture
def failing(aws_env):

    s3, settings, repo = aws_env["s3"], Settings.from_env(), ImageRepository(aws_env["table"])
    s3.put_object(Bucket=settings.original_bucket, Key="uploads/bad", Body=b"not an image")
    event = {"detail": {"bucket": {"name": settings.original_bucket}, "object": {"key": "uploads/bad", "etag": "e"}}}
    image_id = workflow.keys.image_id_for(settings.original_bucket, "uploads/bad", "e")
    return s3, settings, repo, event, image_id


def tags(s3, settings) -> list[dict]:
    return s3.get_object_tagging(Bucket=settings.original_bucket, Key="uploads/bad")["TagSet"]


def test_a_rejected_original_is_tagged_to_expire_and_a_failed_one_is_kept(failing):
    s3, settings, repo, event, image_id = failing
    repo.claim(image_id, "uploads/bad", "e", "arn:x")
    rejected = {**event, "error": {"Error": "InvalidImageError", "Cause": '{"errorMessage": "UNSUPPORTED_FORMAT: no"}'}}
    assert workflow.record_failure(s3, repo, settings, rejected, "arn:x")["status"] == "REJECTED"
    assert tags(s3, settings) == [workflow.REJECTED_TAG]

    s3.delete_object_tagging(Bucket=settings.original_bucket, Key="uploads/bad")
    repo.claim(image_id, "uploads/bad", "e", "arn:y", reprocess=True)
    failed = {"image": {"imageId": image_id, "bucket": settings.original_bucket, "key": "uploads/bad"}}
    failed["error"] = {"Error": "States.Timeout", "Cause": "took too long"}
    assert workflow.record_failure(s3, repo, settings, failed, "arn:y")["status"] == "FAILED"
    assert tags(s3, settings) == []  # kept for reprocessing


def test_an_execution_that_does_not_own_the_image_tags_nothing(failing):
    s3, settings, repo, event, image_id = failing
    repo.create_pending(image_id, "uploads/bad", None, None, "alice", 10)
    rejected = {**event, "error": {"Error": "InvalidImageError", "Cause": '{"errorMessage": "CORRUPT_IMAGE: x"}'}}
    with pytest.raises(ImageNotOwnedError):
        workflow.record_failure(s3, repo, settings, rejected, "arn:not-the-owner")
    assert tags(s3, settings) == [] and repo.get(image_id)["status"] == "PENDING"


def test_a_reprocess_retires_the_previous_version_and_the_reconciler_deletes_it_after_the_grace(stored, monkeypatch):
    s3, settings, first = stored
    other = "renditions/3f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a11/v/800.jpg"  # another image's
    legacy = f"renditions/{IMAGE['imageId']}.jpg"  # the layout before versions
    for key in (other, legacy):
        s3.put_object(Bucket=settings.processed_bucket, Key=key, Body=b"x")

    # the configuration changes to 300 px AVIF only: re-rendered as a new version, the record names the new set
    monkeypatch.setenv("RENDITION_SIZES", "300")
    monkeypatch.setenv("RENDITION_FORMATS", "avif")
    narrow = Settings.from_env()
    image = {**IMAGE, "version": "fedcba9876543210", "bucket": settings.original_bucket}
    image["key"] = f"uploads/{IMAGE['imageId']}"
    image["etag"] = s3.head_object(Bucket=image["bucket"], Key=image["key"])["ETag"].strip('"')
    second = workflow.store(s3, narrow, image, workflow.resize(s3, narrow, image))
    retired = workflow.retire_renditions(s3, narrow, IMAGE["imageId"], second, now=1_000_000)

    old = sorted([legacy, *(r["key"] for r in first["renditions"])])  # the whole old set, default included
    assert sorted(retired) == old
    assert keys_in(s3, settings.work_bucket) == [
        f"retired/{1_000_000 + 300 + 60:010d}/{IMAGE['imageId']}/fedcba9876543210.json"
    ]
    # within the grace period a URL handed out before the switch still works: nothing is deleted
    assert workflow.delete_retired(s3, narrow, now=1_000_000 + 359) == []
    current = [second["processed"]["key"], second["renditions"][0]["key"]]  # 800 px JPEG (outside the set), 300 AVIF
    assert len(keys_in(s3, settings.processed_bucket)) == len(old) + 1 + len(current)
    assert sorted(workflow.delete_retired(s3, narrow, now=1_000_000 + 360)) == old
    assert keys_in(s3, settings.processed_bucket) == sorted([other, *current])
    assert keys_in(s3, settings.work_bucket) == []


def test_a_failed_execution_leaves_nothing_staged_and_nothing_of_its_version(resized, aws_env):
    s3, settings, image, staged = resized
    repo = ImageRepository(aws_env["table"])
    repo.claim(image["imageId"], image["key"], "e", "arn:run")
    # Store published one rendition, then failed for good
    part = staged["parts"][0]
    key = workflow.keys.rendition_key(image["imageId"], image["version"], part["size"], part["format"])
    s3.put_object(Bucket=settings.processed_bucket, Key=key, Body=b"partial")
    state = {"image": image, "error": {"Error": "TransientAWSError", "Cause": "{}"}}
    assert workflow.record_failure(s3, repo, settings, state, "arn:run")["status"] == "FAILED"
    assert keys_in(s3, settings.work_bucket) == [] and keys_in(s3, settings.processed_bucket) == []


class CountingLists:
    """The S3 client, counting the LIST requests."""

    def __init__(self, s3) -> None:
        self.s3, self.lists = s3, 0

    def __getattr__(self, name):
        if name in ("list_objects_v2", "get_paginator"):
            self.lists += 1
        return getattr(self.s3, name)


def test_mark_processed_lists_the_renditions_only_once_another_execution_owned_the_image(stored, aws_env):
    s3, settings, result = stored
    repo, image_id = ImageRepository(aws_env["table"]), IMAGE["imageId"]
    counting = CountingLists(s3)
    repo.claim(image_id, f"uploads/{image_id}", "e", "arn:first")
    detail, pruned = workflow.mark_processed(counting, repo, settings, IMAGE, result, "arn:first")
    assert detail["status"] == "PROCESSED" and len(detail["renditions"]) == 12
    assert (pruned, counting.lists) == ([], 0)  # the first execution: the record names all it wrote

    stale = f"renditions/{image_id}/0000000000000000/100.webp"  # e.g. an earlier version
    s3.put_object(Bucket=settings.processed_bucket, Key=stale, Body=b"old")
    repo.claim(image_id, f"uploads/{image_id}", "e", "arn:second", reprocess=True)
    detail, pruned = workflow.mark_processed(counting, repo, settings, IMAGE, result, "arn:second")
    assert pruned == [stale] and counting.lists == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "html"),  # a Content-Type and extension of Resize's choosing
        ("size", 123),  # a size the configuration does not have
        ("offset", 1),  # parts that do not lie end to end
        ("bytes", 0),
    ],
)
def test_store_publishes_nothing_resize_described_beyond_the_configuration(resized, field, value):
    s3, settings, image, staged = resized
    tampered = {**staged, "parts": [{**staged["parts"][0], field: value}, *staged["parts"][1:]]}
    with pytest.raises(RenditionIntegrityError):
        workflow.store(s3, settings, image, tampered)
    assert keys_in(s3, settings.processed_bucket) == []


def test_store_reads_only_its_own_executions_staged_object(resized):
    s3, settings, image, staged = resized
    # Resize's answer names another execution's staged object: Store takes its own key from the image, not the answer
    elsewhere = {**staged, "staged": {**staged["staged"], "key": "staging/another/0000000000000000"}}
    s3.copy_object(
        Bucket=settings.work_bucket,
        Key="staging/another/0000000000000000",
        CopySource={"Bucket": settings.work_bucket, "Key": staged["staged"]["key"]},
    )
    result = workflow.store(s3, settings, image, elsewhere)
    assert result["version"] == image["version"]
    assert keys_in(s3, settings.work_bucket) == ["staging/another/0000000000000000"]  # not deleted


def test_one_staged_part_changed_is_never_published(resized):
    s3, settings, image, staged = resized
    body = bytearray(s3.get_object(Bucket=settings.work_bucket, Key=staged["staged"]["key"])["Body"].read())
    body[staged["parts"][5]["offset"]] ^= 0xFF  # one byte of one rendition
    forged = base64.b64encode(hashlib.sha256(body).digest()).decode()  # and a whole-object checksum to match
    s3.put_object(Bucket=settings.work_bucket, Key=staged["staged"]["key"], Body=bytes(body))
    with pytest.raises(RenditionIntegrityError, match="not the ones Resize encoded"):
        workflow.store(s3, settings, image, {**staged, "staged": {**staged["staged"], "sha256": forged}})


def test_a_failure_after_the_switch_never_discards_the_version_the_record_names(stored, aws_env):
    """Mark processed switched the record to this execution's version, then failed (retiring); meanwhile another
    execution claimed the image to reprocess it and serves this version until it switches: Record failure of the
    first must not delete it."""
    s3, settings, result = stored
    repo, image_id = ImageRepository(aws_env["table"]), IMAGE["imageId"]
    repo.claim(image_id, f"uploads/{image_id}", "e", "arn:first")
    repo.mark_processed(image_id, "arn:first", result)
    repo.claim(image_id, f"uploads/{image_id}", "e", "arn:second", reprocess=True)
    state = {"image": {**IMAGE, "bucket": settings.original_bucket, "key": f"uploads/{image_id}"}}
    state["error"] = {"Error": "TransientAWSError", "Cause": "{}"}
    with pytest.raises(ImageNotOwnedError):
        workflow.record_failure(s3, repo, settings, state, "arn:first")
    assert keys_in(s3, settings.processed_bucket) == sorted(r["key"] for r in result["renditions"])


def test_an_execution_that_owned_the_image_cannot_claim_it_again_to_reprocess(aws_env):
    repo, image_id = ImageRepository(aws_env["table"]), IMAGE["imageId"]
    repo.claim(image_id, "uploads/x", "e", "arn:first")
    repo.mark_processed(image_id, "arn:first", {"processed": {"key": "k"}})
    assert repo.claim(image_id, "uploads/x", "e", "arn:second", reprocess=True).claimed
    repo.mark_processed(image_id, "arn:second", {"processed": {"key": "k2"}})
    # a late (or repeated) first step of the first execution: it would switch back to a version since retired
    assert not repo.claim(image_id, "uploads/x", "e", "arn:first", reprocess=True).claimed


def test_a_bad_marker_is_dropped_and_never_stops_the_others(aws_env):
    s3, settings = aws_env["s3"], Settings.from_env()
    mine, other = IMAGE["imageId"], "3f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a11"
    for key in (f"renditions/{mine}/v/1.jpg", f"renditions/{other}/v/1.jpg"):
        s3.put_object(Bucket=settings.processed_bucket, Key=key, Body=b"x")
    put = lambda key, body: s3.put_object(Bucket=settings.work_bucket, Key=key, Body=body)  # noqa: E731
    put("retired/", b"")  # a console's "folder"
    put("retired/0000000001/x/v.json", b"not json")
    put("retired/0000000002/x/v.json", json.dumps({"imageId": "", "keys": [f"renditions/{other}/v/1.jpg"]}))
    put("retired/0000000003/x/v.json", json.dumps({"imageId": mine, "keys": [f"renditions/{other}/v/1.jpg"]}))
    put("retired/0000000004/x/v.json", json.dumps({"imageId": mine, "keys": [f"renditions/{mine}/v/1.jpg"]}))
    assert workflow.delete_retired(s3, settings, now=10) == [f"renditions/{mine}/v/1.jpg"]
    assert keys_in(s3, settings.processed_bucket) == [f"renditions/{other}/v/1.jpg"]  # never another image's
    assert keys_in(s3, settings.work_bucket) == []


def test_profiles_are_staged_checked_and_published_under_their_names(aws_env, monkeypatch):
    monkeypatch.setenv("RENDITION_PROFILES", "square:400x400:attention,card:1200x630:centre")
    monkeypatch.setenv("RENDITION_FORMATS", "webp,jpeg")
    s3, settings = aws_env["s3"], Settings.from_env()
    image = original(s3, settings)
    resized = workflow.resize(s3, settings, image)
    stored = workflow.store(s3, settings, image, resized)
    prefix = f"renditions/{IMAGE['imageId']}/{IMAGE['version']}/"
    assert {
        name: [(r["format"], r["width"], r["height"], r["key"]) for r in rs] for name, rs in stored["profiles"].items()
    } == {
        "square": [("webp", 400, 400, f"{prefix}square.webp"), ("jpeg", 400, 400, f"{prefix}square.jpg")],
        "card": [("webp", 1200, 630, f"{prefix}card.webp"), ("jpeg", 1200, 630, f"{prefix}card.jpg")],
    }
    assert all(r["size"] for r in stored["renditions"])  # the set is the set: no crop in it
    assert settings.profile_set == "card:1200x630:centre,square:400x400:attention/webp,jpeg"  # by name
    head = s3.head_object(Bucket=settings.processed_bucket, Key=f"{prefix}card.webp")
    assert head["ContentType"] == "image/webp" and head["CacheControl"].endswith("immutable")
    # a profile the configuration does not have is never published
    other = {**resized, "parts": [{**p, "profile": "banner"} if p["profile"] else p for p in resized["parts"]]}
    with pytest.raises(RenditionIntegrityError):
        workflow.store(s3, settings, {**image, "version": "0000000000000001"}, other)
