"""What phones, cameras and editors really write, uploaded through the API the way a user does (issue: real-world
inputs). Each of these ended REJECTED, or came out wrong, before."""

from __future__ import annotations

import io
import json

import pytest
import requests
from PIL import Image

from tests import corpus, images
from tests.conftest import STATE_DIR

from .conftest import reconciler_paused

VALID = {
    # name: (bytes, declared content type, rendition format, rendition size)
    "iphone-heic-p3": (lambda: corpus.read("iphone.heic"), "image/heic", "JPEG", (800, 600)),
    "iphone-heic-portrait": (lambda: corpus.read("iphone_portrait.heic"), "image/heic", "JPEG", (600, 800)),
    "camera-hif-irot-10bit": (lambda: corpus.read("camera_rotated_10bit.hif"), "image/heif", "JPEG", (533, 800)),
    "avif-irot-imir": (lambda: corpus.read("rot1mir0.avif"), "image/avif", "JPEG", (640, 427)),
    "avif-alpha": (lambda: corpus.read("transparency.avif"), "image/avif", "PNG", (64, 64)),
    "webp-photo-1MB": (lambda: images.webp_photo(2000, 1500), "image/webp", "WEBP", (800, 600)),
    "jpeg-0.6MB-icc": (lambda: images.jpeg_with_large_icc(1200, 800), "image/jpeg", "JPEG", (800, 533)),
    "jpeg-extended-xmp": (lambda: images.jpeg_with_large_xmp(1200, 800), "image/jpeg", "JPEG", (800, 533)),
    "png-large-itxt": (lambda: images.png_with_large_text(600, 400), "image/png", "PNG", (600, 400)),
    "camera-jpeg-24mp-mpf": (lambda: images.jpeg_with_mpf_previews(6000, 4000), "image/jpeg", "JPEG", (800, 533)),
    "png-gray-trns": (lambda: images.png_trns("L", 200, 100), "image/png", "PNG", (200, 100)),
}


@pytest.mark.parametrize("name", VALID)
def test_real_world_photos_end_processed_upright_and_right(client, name):
    make, content_type, fmt, size = VALID[name]
    image_id = client.upload(make(), content_type)

    record = client.wait(image_id, timeout=120)

    assert record["status"] == "PROCESSED", record
    assert (record["processed"]["width"], record["processed"]["height"]) == size
    got = requests.get(client.download(image_id).json()["downloadUrl"])
    im = Image.open(io.BytesIO(got.content))
    assert im.format == fmt and im.size == size and got.headers["Content-Type"] == Image.MIME[fmt]
    assert not im.getexif() and "icc_profile" not in im.info and "xmp" not in im.info
    if name == "png-gray-trns":
        rgba = im.convert("RGBA")
        assert rgba.getpixel((10, 50))[3] == 0 and rgba.getpixel((190, 50))[3] == 255
    if name == "avif-alpha":
        assert im.mode == "RGBA" and im.getextrema()[3][0] == 0


def test_iphone_display_p3_red_stays_red(client):
    p3 = Image.open(io.BytesIO(images.p3_red(256, 256, "png")))
    data = images.heic(image=p3.convert("RGB"), icc_profile=p3.info["icc_profile"])
    image_id = client.upload(data, "image/heic")
    assert client.wait(image_id)["status"] == "PROCESSED"
    im = Image.open(io.BytesIO(requests.get(client.download(image_id).json()["downloadUrl"]).content))
    r, g, b = im.getpixel((128, 128))
    assert r >= 240 and g <= 25 and b <= 25, (r, g, b)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: corpus.read("200mp.heic"), "TOO_MANY_PIXELS"),  # a real 200 MP phone HEIC, meta box at the end
        (lambda: corpus.read("iphone.heic")[:700_000], "CORRUPT_IMAGE"),  # cut off: never grey-filled
    ],
    ids=["heic-200mp", "heic-truncated"],
)
def test_hostile_heics_are_rejected_and_their_originals_tagged_to_expire(client, aws, stack, make, code):
    image_id = client.upload(make(), "image/heic")
    record = client.wait(image_id, timeout=60)
    assert record["status"] == "REJECTED" and record["error"]["code"] == code, record
    s3 = aws("s3")
    assert s3.list_objects_v2(Bucket=stack.processed_bucket, Prefix=f"renditions/{image_id}").get("KeyCount") == 0
    tags = s3.get_object_tagging(Bucket=stack.original_bucket, Key=f"uploads/{image_id}")["TagSet"]
    assert tags == [{"Key": "image-pipeline-status", "Value": "rejected"}]


def test_a_processed_image_s_original_is_not_tagged(client, aws, stack):
    image_id = client.upload(images.jpeg(400, 300), "image/jpeg")
    assert client.wait(image_id)["status"] == "PROCESSED"
    assert aws("s3").get_object_tagging(Bucket=stack.original_bucket, Key=f"uploads/{image_id}")["TagSet"] == []


def test_a_late_upload_after_the_reconciler_expired_it_is_processed_not_lost(client, aws, stack):
    # GIVEN an upload URL whose record the reconciler declared EXPIRED (S3 checks a presigned URL's expiry when
    # the request starts, so a slow PUT that started in time lands after that)
    data = images.jpeg(1200, 900)
    grant = client.request_upload(contentType="image/jpeg", size=len(data)).json()
    image_id = grant["imageId"]
    reconciler = json.loads((STATE_DIR / "stack-image-pipeline.json").read_text())["ReconcilerFunctionName"]
    with reconciler_paused(aws, stack):  # so that this run is the one that expires it (not the scheduled one)
        aws("dynamodb").update_item(
            TableName=stack.table,
            Key={"imageId": {"S": image_id}},
            UpdateExpression="SET updatedAt = :t, uploadTimestamp = :t",
            ExpressionAttributeValues={":t": {"S": "2000-01-01T00:00:00.000Z"}},
        )
        report = json.loads(aws("lambda").invoke(FunctionName=reconciler, Payload=b"{}")["Payload"].read())
    assert image_id in report["expired"] and client.image(image_id).json()["status"] == "EXPIRED"

    # WHEN the bytes land
    assert requests.put(grant["uploadUrl"], data=data, headers=grant["headers"]).status_code == 200

    # THEN the image is processed like any other, and its record no longer expires
    record = client.wait(image_id)
    assert record["status"] == "PROCESSED" and record["error"] is None, record
    item = aws("dynamodb").get_item(TableName=stack.table, Key={"imageId": {"S": image_id}})["Item"]
    assert "expiresAt" not in item
