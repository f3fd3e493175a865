"""Crops-only runs (moto, the workflow's four steps called in turn): a focal point re-renders the crops and nothing
else; a profile added renders only it; a profile removed is pruned; the set stays on the version that made it."""

from __future__ import annotations

import io
import json

import pytest
from image_pipeline import contracts, keys, purge, workflow
from image_pipeline.config import Settings
from image_pipeline.errors import ImageNotOwnedError, RenditionIntegrityError
from image_pipeline.records import ImageRepository
from PIL import Image

from tests import images
from tests.unit.test_crops import subject_pixels

IMAGE_ID = "7d3c1a0e-5b2f-4c1d-8e9a-0f1e2d3c4b5a"


@pytest.fixture
def pipeline(aws_env, monkeypatch):
    """A wide scene with its subject near the right edge, uploaded; run(arn, scope, profiles) runs the four steps."""
    monkeypatch.setenv("RENDITION_FORMATS", "webp,jpeg")
    monkeypatch.setenv("RENDITION_SIZES", "200,400")
    s3, repo = aws_env["s3"], ImageRepository(aws_env["table"])
    scene, subject = images.wide_scene_with_subject()
    key = keys.upload_key(IMAGE_ID)
    bucket = Settings.from_env().original_bucket
    etag = s3.put_object(Bucket=bucket, Key=key, Body=images.encode(scene, "JPEG", quality=92))["ETag"].strip('"')
    repo.create_pending(IMAGE_ID, key, None, "image/jpeg", "alice", 1)

    def run(arn: str, scope: str, profiles: str) -> tuple[dict, dict, list[str]]:
        monkeypatch.setenv("RENDITION_PROFILES", profiles)
        settings = Settings.from_env()
        event = contracts.reprocess_event(bucket, key, etag, scope)
        if arn == "arn:upload":
            event.pop("reprocess")
        image = workflow.validate(s3, repo, settings, event, arn)
        resized = workflow.resize(s3, settings, image)
        stored = workflow.store(s3, settings, image, resized)
        _, retired = workflow.mark_processed(s3, repo, settings, image, stored, arn)
        return image, repo.get(IMAGE_ID), retired

    return s3, repo, run, (subject[0] / scene.width, subject[1] / scene.height)


def crop_keys(record: dict) -> dict[str, list[str]]:
    return {name: [r["key"] for r in rs] for name, rs in record["profiles"].items()}


def decoded(s3, key: str) -> Image.Image:
    return Image.open(io.BytesIO(s3.get_object(Bucket="processed-test", Key=key)["Body"].read()))


def test_a_focal_point_re_renders_only_the_crops_and_centres_them_on_it(pipeline):
    s3, repo, run, subject = pipeline
    profiles = "square:400x400:centre,card:1200x630:attention"
    _, first, _ = run("arn:upload", contracts.SCOPE_ALL, profiles)
    square = first["profiles"]["square"][0]["key"]
    assert subject_pixels(decoded(s3, square)) == 0  # the centre crop misses the subject near the edge

    # WHEN the owner sets a focal point on the subject, and a crops-only run follows (what PATCH starts)
    repo.set_focal_point(IMAGE_ID, "alice", subject)
    image, second, retired = run("arn:focus", contracts.SCOPE_CROPS, profiles)

    # THEN only the crops were rendered, at the new version, centred on the subject; the set is untouched
    assert image["scope"] == contracts.SCOPE_CROPS and image["crops"]["render"] == ["square", "card"]
    assert second["renditions"] == first["renditions"] and second["processed"] == first["processed"]
    assert second["placeholder"] == first["placeholder"]
    version = keys.version_of("arn:focus")
    assert all(f"/{version}/" in k for ks in crop_keys(second).values() for k in ks)
    assert subject_pixels(decoded(s3, second["profiles"]["square"][0]["key"])) > 1000
    for rendition in [r for rs in second["profiles"].values() for r in rs]:  # each decodes at its declared box
        im = decoded(s3, rendition["key"])
        assert (im.width, im.height, im.format.lower()) == (
            rendition["width"],
            rendition["height"],
            rendition["format"],
        )
    # the old crops are retired (deleted after the grace period), never the set's keys
    assert sorted(retired) == sorted(k for ks in crop_keys(first).values() for k in ks)
    assert float(second["focalRendered"]["x"]) == pytest.approx(subject[0])


def test_an_added_profile_renders_alone_and_a_removed_one_is_pruned(pipeline):
    s3, repo, run, _ = pipeline
    _, first, _ = run("arn:upload", contracts.SCOPE_ALL, "square:400x400:attention")

    # WHEN a profile is added (the backfill's crops-only run)
    image, added, retired = run("arn:add", contracts.SCOPE_CROPS, "square:400x400:attention,card:1200x630:centre")

    # THEN only the card was rendered; the square and the set are kept as they were
    assert (image["crops"]["render"], image["crops"]["keep"]) == (["card"], ["square"])
    assert added["profiles"]["square"] == first["profiles"]["square"] and added["renditions"] == first["renditions"]
    # the scene is 600 px high: the card is the largest crop of its shape, never upscaled
    assert [(r["width"], r["height"]) for r in added["profiles"]["card"]] == [(1143, 600), (1143, 600)]
    assert retired == [] and added["profileSet"] == "card:1200x630:centre,square:400x400:attention/webp,jpeg"

    # WHEN the square is removed from the configuration
    image, pruned, retired = run("arn:prune", contracts.SCOPE_CROPS, "card:1200x630:centre")

    # THEN nothing is decoded or rendered; the square leaves the record and its keys are retired
    assert (image["crops"]["render"], image["crops"]["prune"]) == ([], ["square"])
    assert set(pruned["profiles"]) == {"card"} and pruned["profiles"]["card"] == added["profiles"]["card"]
    assert sorted(retired) == sorted(r["key"] for r in first["profiles"]["square"])


def test_a_crops_only_run_of_an_image_whose_set_changed_renders_the_whole_set(pipeline, monkeypatch):
    s3, repo, run, _ = pipeline
    run("arn:upload", contracts.SCOPE_ALL, "square:400x400:attention")
    monkeypatch.setenv("RENDITION_SIZES", "200,800")
    image, record, _ = run("arn:crops", contracts.SCOPE_CROPS, "square:400x400:attention")
    assert image["scope"] == contracts.SCOPE_ALL
    assert {r["size"] for r in record["renditions"]} == {200, 800}


def stored_keys(s3) -> set[str]:
    listed = s3.list_objects_v2(Bucket="processed-test", Prefix=f"renditions/{IMAGE_ID}/")
    return {o["Key"] for o in listed.get("Contents", [])}


def test_a_late_failure_of_the_run_whose_set_the_record_still_names_deletes_none_of_it(pipeline):
    # GIVEN the upload's run A switched the record, then its Mark processed timed out; meanwhile a crops-only run B
    # (the owner's PATCH) ended: the record names A's set and B's crops
    s3, repo, run, subject = pipeline
    image_a, _, _ = run("arn:upload", contracts.SCOPE_ALL, "square:400x400:centre")
    repo.set_focal_point(IMAGE_ID, "alice", subject)
    _, record, _ = run("arn:focus", contracts.SCOPE_CROPS, "square:400x400:centre")

    # WHEN A's retried Mark processed finds it owns the image no more, and A records its failure
    state = {"image": image_a, "error": {"Error": "ImageNotOwnedError", "Cause": "{}"}}
    with pytest.raises(ImageNotOwnedError):
        workflow.record_failure(s3, repo, Settings.from_env(), state, "arn:upload")

    # THEN every key the record names is still stored
    assert workflow.named_keys(repo.get(IMAGE_ID)) <= stored_keys(s3)


def test_a_retirement_listed_while_another_run_published_never_deletes_what_the_record_names(pipeline, monkeypatch):
    # GIVEN a reprocess A whose retirement LIST runs just after a crops-only run B (a PATCH) stored its crops
    s3, repo, run, subject = pipeline
    run("arn:upload", contracts.SCOPE_ALL, "square:400x400:centre")
    settings = Settings.from_env()
    bucket, key = settings.original_bucket, keys.upload_key(IMAGE_ID)
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    a = workflow.validate(s3, repo, settings, contracts.reprocess_event(bucket, key, etag), "arn:A")
    a_stored = workflow.store(s3, settings, a, workflow.resize(s3, settings, a))
    listing, b = purge.rendition_keys, {}

    def list_after_b_stored(*args):
        if not b:
            repo.set_focal_point(IMAGE_ID, "alice", subject)
            event = contracts.reprocess_event(bucket, key, etag, contracts.SCOPE_CROPS)
            b["image"] = workflow.validate(s3, repo, settings, event, "arn:B")
            b["stored"] = workflow.store(s3, settings, b["image"], workflow.resize(s3, settings, b["image"]))
        return listing(*args)

    monkeypatch.setattr(purge, "rendition_keys", list_after_b_stored)
    _, retired_by_a = workflow.mark_processed(s3, repo, settings, a, a_stored, "arn:A")
    monkeypatch.setattr(purge, "rendition_keys", listing)
    workflow.mark_processed(s3, repo, settings, b["image"], b["stored"], "arn:B")
    record = repo.get(IMAGE_ID)

    # THEN A retired the upload's renditions, never what B (which owned the image by then) published
    assert not workflow.named_keys(record) & set(retired_by_a)
    assert retired_by_a and all(f"/{keys.version_of('arn:upload')}/" in k for k in retired_by_a)
    workflow.delete_retired(
        s3, settings, now=10**10, named=lambda image_id: workflow.named_keys(repo.get(image_id) or {})
    )
    assert workflow.named_keys(record) <= stored_keys(s3)


def test_the_reconciler_never_deletes_a_retired_key_the_record_names_again(pipeline):
    # GIVEN a marker due now that names one key the record names (however it came to) and one it does not
    s3, repo, run, _ = pipeline
    _, record, _ = run("arn:upload", contracts.SCOPE_ALL, "square:400x400:centre")
    settings = Settings.from_env()
    named, stray = sorted(workflow.named_keys(record))[0], f"renditions/{IMAGE_ID}/0000000000000000/200.jpg"
    s3.put_object(Bucket=settings.processed_bucket, Key=stray, Body=b"old")
    marker = json.dumps({"imageId": IMAGE_ID, "keys": [named, stray]})
    s3.put_object(Bucket=settings.work_bucket, Key=keys.retirement_key(1, IMAGE_ID, "v"), Body=marker)

    # WHEN the reconciler runs, with the record as it is then
    deleted = workflow.delete_retired(s3, settings, now=10, named=lambda i: workflow.named_keys(repo.get(i) or {}))

    # THEN only the key nobody names went
    assert deleted == [stray] and named in stored_keys(s3)


@pytest.mark.parametrize(
    "second", ["square:400x400:centre,card:1200x630:centre", "card:1200x630:centre,square:400x400:centre"]
)
def test_a_crops_only_run_with_nothing_to_render_succeeds_and_changes_no_crop(pipeline, second):
    # a second run at the same point (two PATCHes before the first run claimed), or the profiles reordered
    s3, repo, run, _ = pipeline
    _, first, _ = run("arn:upload", contracts.SCOPE_ALL, "square:400x400:centre,card:1200x630:centre")
    image, record, retired = run("arn:again", contracts.SCOPE_CROPS, second)
    assert (image["crops"]["render"], retired) == ([], [])
    assert record["status"] == "PROCESSED" and "reprocessError" not in record
    assert record["profiles"] == first["profiles"] and record["executionArn"] == "arn:again"


def test_store_publishes_nothing_of_a_crops_only_run_but_the_crops_it_planned(pipeline, monkeypatch):
    s3, repo, run, subject = pipeline
    run("arn:upload", contracts.SCOPE_ALL, "square:400x400:centre,card:1200x630:centre")
    repo.set_focal_point(IMAGE_ID, "alice", subject)
    settings = Settings.from_env()
    bucket, key = settings.original_bucket, keys.upload_key(IMAGE_ID)
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    image = workflow.validate(
        s3, repo, settings, contracts.reprocess_event(bucket, key, etag, contracts.SCOPE_CROPS), "arn:focus"
    )
    resized = workflow.resize(s3, settings, image)
    narrower = {**image, "crops": {**image["crops"], "render": ["square"]}}  # a crop Resize was not asked for
    dropped = {**resized, "parts": [], "staged": {**resized["staged"], "bytes": 0}}  # every crop missing
    for given_image, given in ((narrower, resized), (image, dropped)):
        with pytest.raises(RenditionIntegrityError):
            workflow.store(s3, settings, given_image, given)
    assert stored_keys(s3) == workflow.named_keys(repo.get(IMAGE_ID))  # nothing was published
