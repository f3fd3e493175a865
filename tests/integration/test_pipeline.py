"""The product through its HTTP API on the local cloud: real images in, renditions out."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from botocore.exceptions import ClientError
from PIL import Image

from tests import images
from tests.conftest import load_event

from .conftest import (
    executions_for,
    expected_renditions,
    object_created_event,
    reconciler_paused,
    stored_renditions,
    wait_executions_done,
)


def fetch_rendition(client, image_id: str) -> tuple[requests.Response, Image.Image]:
    resp = client.download(image_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["expiresIn"] > 0
    got = requests.get(resp.json()["downloadUrl"])
    assert got.status_code == 200
    return got, Image.open(io.BytesIO(got.content))


def test_large_jpeg_is_resized_stored_and_downloadable(client, aws, stack):
    image_id = client.upload(images.jpeg(4000, 3000), "image/jpeg")

    record = client.wait(image_id)

    assert record["status"] == "PROCESSED", record
    assert record["original"] == {
        "key": f"uploads/{image_id}",
        "bytes": record["original"]["bytes"],
        "format": "JPEG",
        "width": 4000,
        "height": 3000,
    }
    assert record["processed"]["width"] == 800 and record["processed"]["height"] == 600
    assert image_id in record["processed"]["key"] and record["error"] is None
    got, im = fetch_rendition(client, image_id)
    assert im.format == "JPEG" and im.size == (800, 600)
    assert got.headers["Content-Type"] == "image/jpeg"
    head = aws("s3").head_object(Bucket=stack.processed_bucket, Key=record["processed"]["key"], ChecksumMode="ENABLED")
    assert head["CacheControl"] == "public, max-age=31536000, immutable"  # a versioned key: its bytes never change
    assert head["ContentLength"] == record["processed"]["bytes"]
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(got.content).digest()).decode()


def test_s3_refuses_a_rendition_whose_body_is_not_the_checksum_sent(aws, stack):
    """What Store's single PUT per rendition (and Resize's of the staged set) relies on: the local cloud's S3, like AWS, verifies ChecksumSHA256
    before it stores anything (BadDigest), so a rendition is stored whole and as encoded, or not at all."""
    s3, key = aws("s3"), "renditions/00000000-0000-4000-8000-000000000000/200.jpg"
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=stack.processed_bucket, Key=key, Body=b"these bytes", ChecksumSHA256=wrong)
    assert refused.value.response["Error"]["Code"] in {"BadDigest", "InvalidRequest"}, refused.value.response
    assert s3.list_objects_v2(Bucket=stack.processed_bucket, Prefix=key).get("KeyCount", 0) == 0


def test_small_image_is_not_upscaled(client):
    record = client.wait(client.upload(images.jpeg(320, 200), "image/jpeg"))
    assert record["status"] == "PROCESSED"
    assert (record["processed"]["width"], record["processed"]["height"]) == (320, 200)


def test_exif_orientation_is_applied_and_metadata_stripped(client):
    image_id = client.upload(images.jpeg_with_orientation(6, 1200, 900, gps=True), "image/jpeg")
    assert client.wait(image_id)["status"] == "PROCESSED"
    _, im = fetch_rendition(client, image_id)
    assert im.size == (600, 800)  # stored 1200x900 sideways, upright 900x1200
    assert im.getpixel((im.width - 5, 5))[0] > 200  # the red corner turned to the top right
    assert not im.getexif()


def test_png_alpha_is_kept(client):
    image_id = client.upload(images.png_rgba(1600, 800), "image/png")
    assert client.wait(image_id)["status"] == "PROCESSED"
    got, im = fetch_rendition(client, image_id)
    assert got.headers["Content-Type"] == "image/png"
    assert im.mode == "RGBA" and im.size == (800, 400)
    assert im.getpixel((10, 10))[3] == 255 and im.getpixel((790, 10))[3] == 0


def test_animated_gif_gives_a_valid_rendition(client):
    image_id = client.upload(images.gif_animated(1000, 600, 5), "image/gif")
    record = client.wait(image_id)
    assert record["status"] == "PROCESSED", record
    assert record["original"]["format"] == "GIF"
    _, im = fetch_rendition(client, image_id)
    assert im.format == "PNG" and im.size == (800, 480)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY_FILE"),
        (images.TEXT_AS_JPEG, "UNSUPPORTED_FORMAT"),
        (images.truncated_jpeg(), "CORRUPT_IMAGE"),
        (images.png_bomb(10_000), "TOO_MANY_PIXELS"),
        (images.png_header_claiming(60_000, 60_000), "TOO_MANY_PIXELS"),
    ],
    ids=["empty", "text-renamed-jpg", "truncated-jpeg", "decompression-bomb", "header-60000x60000"],
)
def test_bad_input_ends_rejected_with_its_code_and_writes_nothing(client, aws, stack, data, code):
    if data:
        image_id = client.upload(data, "image/jpeg")
    else:  # no upload URL admits 0 bytes (the size is signed and must be positive): an empty object put directly
        image_id = client.request_upload(size=1).json()["imageId"]
        aws("s3").put_object(Bucket=stack.original_bucket, Key=f"uploads/{image_id}", Body=b"")

    record = client.wait(image_id)

    assert record["status"] == "REJECTED", record
    assert record["error"]["code"] == code and record["error"]["message"]
    assert "could be decompression bomb" not in record["error"]["message"]  # our limit, not Pillow's backstop
    assert record["processed"] is None
    s3 = aws("s3")
    assert s3.list_objects_v2(Bucket=stack.processed_bucket, Prefix=f"renditions/{image_id}").get("KeyCount", 0) == 0
    resp = client.download(image_id)
    assert resp.status_code == 422
    assert resp.json()["status"] == "REJECTED" and resp.json()["error"]["code"] == code
    # the original is kept, untouched
    assert s3.head_object(Bucket=stack.original_bucket, Key=f"uploads/{image_id}")["ContentLength"] == len(data)


def test_duplicate_event_changes_nothing(client, aws, stack):
    # GIVEN a processed image
    image_id = client.upload(images.jpeg(1200, 900), "image/jpeg")
    before = client.wait(image_id)
    assert before["status"] == "PROCESSED"
    sfn = aws("stepfunctions")
    wait_executions_done(sfn, stack.state_machine)
    original_run = executions_for(sfn, stack.state_machine, f"uploads/{image_id}")[0]

    # WHEN the same S3 event is delivered again, three times at once
    arns = [
        sfn.start_execution(stateMachineArn=stack.state_machine, input=original_run["input"])["executionArn"]
        for _ in range(3)
    ]
    wait_executions_done(sfn, stack.state_machine)

    # THEN every duplicate ends as a no-op, the record did not change at all, one rendition exists
    for arn in arns:
        ex = sfn.describe_execution(executionArn=arn)
        assert ex["status"] == "SUCCEEDED"
        names = [
            e.get("stateEnteredEventDetails", {}).get("name")
            for e in sfn.get_execution_history(executionArn=arn)["events"]
        ]
        assert "Skip duplicate" in names and "Resize image" not in names
    assert client.image(image_id).json() == before
    assert stored_renditions(aws("s3"), stack, image_id) == expected_renditions(before)


def test_concurrent_duplicate_deliveries_process_once(client, aws, stack):
    # GIVEN an upload URL (PENDING image) and the object's event, delivered 4 times at once with the real one
    s3, sfn = aws("s3"), aws("stepfunctions")
    image_id = client.upload(images.jpeg(1600, 1200), "image/jpeg")
    event = object_created_event(s3, stack, image_id)
    for _ in range(4):
        sfn.start_execution(stateMachineArn=stack.state_machine, input=json.dumps(event))

    record = client.wait(image_id)
    wait_executions_done(sfn, stack.state_machine)

    assert record["status"] == "PROCESSED"
    runs = executions_for(sfn, stack.state_machine, f"uploads/{image_id}")
    assert all(r["status"] == "SUCCEEDED" for r in runs)
    assert stored_renditions(s3, stack, image_id) == expected_renditions(record)


def test_object_put_straight_into_the_bucket_is_processed(admin, aws, stack):  # no owner: an admin's to see
    from image_pipeline import keys

    s3 = aws("s3")
    key = "samples/direct-put.jpg"
    put = s3.put_object(Bucket=stack.original_bucket, Key=key, Body=images.jpeg(1000, 1000), ContentType="image/jpeg")
    image_id = keys.image_id_for(stack.original_bucket, key, put["ETag"])

    record = admin.wait(image_id)

    assert record["status"] == "PROCESSED" and record["original"]["key"] == key
    assert record["processed"]["width"] == 800 and record["processed"]["height"] == 800


def test_manual_start_execution_reprocesses_an_image(admin, aws, stack):
    s3, sfn = aws("s3"), aws("stepfunctions")
    key = "samples/photo.jpg"  # the key named by events/image_pipeline_reprocess.json
    # bytes of this run's own (a JPEG comment): a kept local cloud may hold this key's image from an earlier run,
    # rendered under another rendition set (a benchmark's), which an upload of the same bytes would not redo
    body = images.jpeg(2000, 1000, comment=uuid.uuid4().hex)
    put = s3.put_object(Bucket=stack.original_bucket, Key=key, Body=body)
    from image_pipeline import keys

    image_id = keys.image_id_for(stack.original_bucket, key, put["ETag"])
    first = admin.wait(image_id)
    assert first["status"] == "PROCESSED"
    wait_executions_done(sfn, stack.state_machine)
    event = load_event("image_pipeline_reprocess")
    event["detail"]["object"]["etag"] = put["ETag"].strip('"')

    arn = sfn.start_execution(stateMachineArn=stack.state_machine, input=json.dumps(event))["executionArn"]
    wait_executions_done(sfn, stack.state_machine)

    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    again = admin.image(image_id).json()
    assert again["status"] == "PROCESSED" and again["updatedAt"] > first["updatedAt"]
    # a new version: the previous one stays stored (a URL handed out before the switch still works) until the
    # reconciler deletes it after the grace period (test_versions.py)
    assert expected_renditions(again).isdisjoint(expected_renditions(first))
    assert stored_renditions(s3, stack, image_id) == expected_renditions(again) | expected_renditions(first)


def test_twenty_concurrent_uploads_all_end_processed(client):
    data = images.jpeg(2400, 1600)
    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(lambda _: client.upload(data, "image/jpeg"), range(20)))
        records = list(pool.map(lambda i: client.wait(i, timeout=180), ids))
    assert [r["status"] for r in records] == ["PROCESSED"] * 20, [r for r in records if r["status"] != "PROCESSED"]


def test_the_originals_lifecycle_is_deployed_as_the_template_says(aws, stack):
    """The local cloud stores lifecycle rules but never runs them: what it can check is that the deployed bucket has
    them (the transition's parameters are checked statically, tests/unit/test_template.py)."""
    rules = {r["ID"]: r for r in aws("s3").get_bucket_lifecycle_configuration(Bucket=stack.original_bucket)["Rules"]}
    moved = rules["move-originals-to-a-cheaper-class"]
    assert moved["Status"] == "Enabled" and moved["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert rules["expire-rejected-originals"]["Expiration"] == {"Days": 7}


def test_each_image_makes_the_requests_the_cost_model_prices(client, aws, stack, localcloud):
    """What `make cost` counts, as a guard: per image, one PUT per rendition and no COPY, HEAD or LIST; the set
    staged in one object (one PUT, one GET, one DELETE: free); two GETs of the original (validate's ranged read,
    resize); one PutItem and two updates (claim, outcome), which write the in-flight index four units (a put, a key
    change, a delete); one invocation per step.
    Counted by the local cloud's request meter for this stack's buckets, table and functions (its reconciler paused:
    it reads the table and the originals on its own schedule)."""
    sfn = aws("stepfunctions")
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in aws("cloudformation").describe_stack_resources(StackName="image-pipeline")["StackResources"]
        if r["ResourceType"] == "AWS::Lambda::Function"
    }
    with reconciler_paused(aws, stack):
        wait_executions_done(sfn, stack.state_machine)  # nothing of an earlier test still running
        requests.delete(f"{localcloud}/_localcloud/meter").raise_for_status()
        ids = [client.upload(images.jpeg(1600, 1200), "image/jpeg") for _ in range(2)]
        records = [client.wait(image_id) for image_id in ids]
        wait_executions_done(sfn, stack.state_machine)
        counted = requests.get(f"{localcloud}/_localcloud/meter").json()["by_resource"]

    def of(service: str, resource: str) -> dict[str, int]:
        return {
            op: sum(n for name, n in by.items() if resource in name)
            for op, by in counted.get(service, {}).items()
            if any(resource in name for name in by)
        }

    assert all(r["status"] == "PROCESSED" for r in records), records
    renditions = sum(len(expected_renditions(r)) for r in records)
    assert of("s3", stack.processed_bucket) == {"PutObject": renditions}  # no COPY, HEAD, DELETE or LIST
    assert of("s3", stack.original_bucket) == {"PutObject": 2, "GetObject": 4}  # no HEAD
    assert of("s3", stack.work_bucket) == {"PutObject": 2, "GetObject": 2, "DeleteObject": 2}
    table = of("dynamodb", stack.table)
    assert (table["PutItem"], table["UpdateItem"]) == (2, 4)
    assert table["index_write_units:inFlight"] == 2 * 4  # in, PENDING -> PROCESSING, out
    assert "index_write_units:byStatus" not in table
    for step in ("ValidateFunction", "ResizeFunction", "StoreFunction", "MarkProcessedFunction"):
        assert of("lambda", functions[step]) == {"Invoke": 2}, step
