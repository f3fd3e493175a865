"""The backfill's manifest: which images it lists, and one manifest written across calls (moto)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from image_pipeline import backfill
from image_pipeline.config import Settings, parse_profiles
from image_pipeline.errors import ManifestTooLargeError
from image_pipeline.records import ImageRepository

from .conftest import load_event, load_handler

WORK = "work-test"
SETTINGS = Settings(
    table_name="images",
    original_bucket="o",
    processed_bucket="p",
    work_bucket=WORK,
    rendition_sizes=(200, 400),
    rendition_formats=("webp", "jpeg"),
)
CURRENT = SETTINGS.rendition_set  # "200,400/webp,jpeg/800"
BEFORE = "2026-12-07T12:00:00.000Z"


@pytest.fixture
def repo(aws_env):
    aws_env["s3"].create_bucket(Bucket=WORK)
    return ImageRepository(aws_env["table"])


def put(repo, image_id: str, uploaded: str, status: str = "PROCESSED", rendition_set: str | None = "old/set/800"):
    item = {
        "imageId": image_id,
        "status": status,
        "uploadTimestamp": uploaded,
        "updatedAt": uploaded,
        "gallery": "images",
        "originalKey": f"uploads/{image_id}",
        "etag": f"etag-{image_id}",
    }
    if rendition_set is not None:
        item["renditionSet"] = rendition_set
    repo.table.put_item(Item=item)


def stale_library(repo, n: int) -> list[str]:
    """``n`` PROCESSED images of another set, uploaded a minute apart before BEFORE (oldest first)."""
    ids = [f"img-{i:03d}" for i in range(n)]
    for i, image_id in enumerate(ids):
        put(repo, image_id, f"2026-12-07T10:{i:02d}:00.000Z")
    return ids


def read_manifest(s3, listed: dict) -> list[dict]:
    return json.loads(s3.get_object(Bucket=listed["bucket"], Key=listed["key"])["Body"].read())


def test_the_manifest_lists_only_processed_images_of_another_set_uploaded_before_the_run(repo, aws_env):
    # GIVEN images of every kind the walk must tell apart
    put(repo, "other-set", "2026-12-07T10:00:00.000Z")
    put(repo, "no-set-recorded", "2026-12-07T10:01:00.000Z", rendition_set=None)  # made before sets were recorded
    put(repo, "current-set", "2026-12-07T10:02:00.000Z", rendition_set=CURRENT)
    put(repo, "rejected", "2026-12-07T10:03:00.000Z", status="REJECTED")
    put(repo, "in-flight", "2026-12-07T10:04:00.000Z", status="PROCESSING")
    put(repo, "uploaded-after-the-start", "2026-12-07T12:00:01.000Z")
    repo.table.put_item(Item={"imageId": "deleted", "status": "DELETED", "uploadTimestamp": "2026-12-07T10:05:00Z"})
    put(repo, "failed-to-this-set", "2026-12-07T10:06:00.000Z")  # a reprocess to this set failed: kept, not listed
    repo.table.update_item(
        Key={"imageId": "failed-to-this-set"},
        UpdateExpression="SET reprocessError = :e",
        ExpressionAttributeValues={":e": {"code": "CORRUPT_IMAGE", "message": "m", "renditionSet": CURRENT}},
    )
    put(repo, "failed-to-another-set", "2026-12-07T10:07:00.000Z")  # an earlier configuration's failure: listed
    repo.table.update_item(
        Key={"imageId": "failed-to-another-set"},
        UpdateExpression="SET reprocessError = :e",
        ExpressionAttributeValues={":e": {"code": "TIMEOUT", "message": "m", "renditionSet": "older/set/800"}},
    )

    # WHEN the manifest is written in one call
    listed = backfill.write_manifest(repo, aws_env["s3"], WORK, "run-1", BEFORE, SETTINGS)

    # THEN it names the three stale images, oldest first, with what the pipeline's reprocess event needs
    assert listed == {
        "bucket": WORK,
        "key": "backfill/run-1/manifest.json",
        "resultsPrefix": "backfill/run-1/results",
        "count": 3,
        "done": True,
        "next": None,
    }
    assert read_manifest(aws_env["s3"], listed) == [
        {"imageId": "other-set", "key": "uploads/other-set", "etag": "etag-other-set", "scope": "all"},
        {
            "imageId": "no-set-recorded",
            "key": "uploads/no-set-recorded",
            "etag": "etag-no-set-recorded",
            "scope": "all",
        },
        {
            "imageId": "failed-to-another-set",
            "key": "uploads/failed-to-another-set",
            "etag": "etag-failed-to-another-set",
            "scope": "all",
        },
    ]
    head = aws_env["s3"].head_object(Bucket=WORK, Key=listed["key"])
    assert head["ContentType"] == "application/json"


def test_nothing_to_re_render_is_an_empty_array(repo, aws_env):
    put(repo, "current-set", "2026-12-07T10:02:00.000Z", rendition_set=CURRENT)
    listed = backfill.write_manifest(repo, aws_env["s3"], WORK, "run-2", BEFORE, SETTINGS)
    assert listed["done"] and listed["count"] == 0 and read_manifest(aws_env["s3"], listed) == []


def test_a_library_larger_than_a_call_is_listed_across_calls_into_one_manifest(repo, aws_env):
    # GIVEN 7 stale images, and calls that each have time for one page of 2 entries
    ids = stale_library(repo, 7)

    # WHEN the state machine calls again with what each call returned, until done
    calls, state = [], None
    while not (state or {}).get("done"):
        state = backfill.write_manifest(
            repo, aws_env["s3"], WORK, "run-3", BEFORE, SETTINGS, state, time_left=lambda: 0, page_size=2
        )
        calls.append(state)

    # THEN four calls (3 cut short by time, the last reaching the index's end) made one valid JSON array of all 7,
    # in upload order; a part cut short was padded to S3's least part size (moto refuses smaller ones as S3 does)
    assert [c["done"] for c in calls] == [False, False, False, True]
    assert [c["count"] for c in calls] == [2, 4, 6, 7]
    assert [len(c["next"]["parts"]) for c in calls[:-1]] == [1, 2, 3]
    assert len({c["next"]["uploadId"] for c in calls[:-1]}) == 1 and calls[-1]["next"] is None
    assert [item["imageId"] for item in read_manifest(aws_env["s3"], state)] == ids
    size = aws_env["s3"].head_object(Bucket=WORK, Key=state["key"])["ContentLength"]
    assert size >= 3 * backfill.MIN_PART_BYTES
    json.dumps(calls[0])  # what a call returns travels through Step Functions as JSON


def test_a_retried_call_lists_no_image_twice(repo, aws_env):
    # GIVEN a first call cut short after one page
    ids = stale_library(repo, 5)
    first = backfill.write_manifest(
        repo, aws_env["s3"], WORK, "run-4", BEFORE, SETTINGS, time_left=lambda: 0, page_size=2
    )
    # WHEN the second call runs twice from the same state (its first attempt's result was lost: the task is retried)
    backfill.write_manifest(
        repo, aws_env["s3"], WORK, "run-4", BEFORE, SETTINGS, first, time_left=lambda: 0, page_size=2
    )
    state = first
    while not state["done"]:
        state = backfill.write_manifest(repo, aws_env["s3"], WORK, "run-4", BEFORE, SETTINGS, state, page_size=2)
    # THEN the manifest holds each image once: the retry uploaded the same part numbers again
    assert [item["imageId"] for item in read_manifest(aws_env["s3"], state)] == ids
    assert state["count"] == 5


def test_a_manifest_past_its_part_bound_fails_loudly(repo, aws_env, monkeypatch):
    stale_library(repo, 3)
    monkeypatch.setattr(backfill, "MAX_PARTS", 1)
    first = backfill.write_manifest(
        repo, aws_env["s3"], WORK, "run-5", BEFORE, SETTINGS, time_left=lambda: 0, page_size=1
    )
    with pytest.raises(ManifestTooLargeError):
        backfill.write_manifest(repo, aws_env["s3"], WORK, "run-5", BEFORE, SETTINGS, first, page_size=1)


def test_the_handler_lists_with_the_functions_rendition_set(repo, aws_env, lambda_context, monkeypatch):
    # GIVEN the configured set (RENDITION_* and MAX_DIMENSION, as the pipeline records it) and one image of another
    monkeypatch.setenv("WORK_BUCKET", WORK)
    monkeypatch.setenv("RENDITION_SIZES", "400,200")  # recorded sorted: the handler compares with what is recorded
    monkeypatch.setenv("RENDITION_FORMATS", "webp,jpeg")
    put(repo, "current-set", "2026-12-07T10:00:00.000Z", rendition_set=CURRENT)
    put(repo, "other-set", "2026-12-07T10:01:00.000Z")
    app = load_handler("backfill_manifest")

    # WHEN the state machine's first call arrives (events/backfill_manifest.json)
    listed = app.lambda_handler(load_event("backfill_manifest"), lambda_context)

    # THEN only the other set's image is listed, under the run's name
    assert listed["done"] and listed["count"] == 1
    assert listed["key"] == f"backfill/{load_event('backfill_manifest')['run']}/manifest.json"
    assert [item["imageId"] for item in read_manifest(aws_env["s3"], listed)] == ["other-set"]


def test_changed_crops_list_the_images_for_their_crops_only(repo, aws_env):
    # GIVEN RenditionProfiles now square and card, and images of the current set whose crops are of another time
    profiles = parse_profiles("square:400x400:attention,card:1200x630:centre")
    settings = Settings(**{**SETTINGS.__dict__, "rendition_profiles": profiles})
    put(repo, "no-crops-yet", "2026-12-07T10:00:00.000Z", rendition_set=CURRENT)
    put(repo, "square-only", "2026-12-07T10:01:00.000Z", rendition_set=CURRENT)
    put(repo, "current-crops", "2026-12-07T10:02:00.000Z", rendition_set=CURRENT)
    put(repo, "old-set", "2026-12-07T10:03:00.000Z")  # the set changed too: rendered whole
    for image_id, profile_set in (
        ("square-only", "square:400x400:attention/webp,jpeg"),
        ("current-crops", settings.profile_set),
    ):
        repo.table.update_item(
            Key={"imageId": image_id},
            UpdateExpression="SET profileSet = :p",
            ExpressionAttributeValues={":p": profile_set},
        )

    put(repo, "focus-not-rendered", "2026-12-07T10:04:00.000Z", rendition_set=CURRENT)  # its PATCH's run never ran
    put(repo, "focus-rendered", "2026-12-07T10:05:00.000Z", rendition_set=CURRENT)
    point = {"x": Decimal("0.25"), "y": Decimal("0.5")}
    for image_id, rendered in (
        ("focus-not-rendered", {"x": Decimal("0.75"), "y": Decimal("0.5")}),
        ("focus-rendered", point),
    ):
        repo.table.update_item(
            Key={"imageId": image_id},
            UpdateExpression="SET profileSet = :p, focalPoint = :f, focalRendered = :r",
            ExpressionAttributeValues={":p": settings.profile_set, ":f": point, ":r": rendered},
        )

    # WHEN the manifest is written; and again once the profiles are removed from the configuration
    listed = read_manifest(aws_env["s3"], backfill.write_manifest(repo, aws_env["s3"], WORK, "run-6", BEFORE, settings))
    pruned = read_manifest(aws_env["s3"], backfill.write_manifest(repo, aws_env["s3"], WORK, "run-7", BEFORE, SETTINGS))

    # THEN the images of the current set are listed for their crops only; the one with current crops is not listed
    assert [(i["imageId"], i["scope"]) for i in listed] == [
        ("no-crops-yet", "crops"),
        ("square-only", "crops"),
        ("old-set", "all"),
        ("focus-not-rendered", "crops"),
    ]
    # and without profiles, the images that have crops are listed to prune them
    assert [(i["imageId"], i["scope"]) for i in pruned] == [
        ("square-only", "crops"),
        ("current-crops", "crops"),
        ("old-set", "all"),
        ("focus-not-rendered", "crops"),
        ("focus-rendered", "crops"),
    ]
