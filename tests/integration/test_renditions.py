"""The responsive set end to end on the stack's default configuration: renditions per size and format, placeholder,
download by size/format/Accept, srcset, completion events on the stack's bus. The webhook and the backfill after a
configuration change have a stack of their own: test_webhook_and_backfill.py."""

from __future__ import annotations

import io
import json
import time

import jwt
import pytest
import requests
import thumbhash
from PIL import Image

from tests import corpus, images

from .conftest import Client

CONTENT_TYPES = {"avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png"}
PIL_FORMATS = {"avif": "AVIF", "webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}
BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"  # Chrome's, for images


def fetch(client: Client, image_id: str, headers: dict | None = None, **params) -> requests.Response:
    return client.http.get(
        f"{client.stack.api}/download", params={"imageId": image_id, **params}, headers=headers or {}, timeout=30
    )


@pytest.fixture(scope="module")
def photo(client):
    """A 12 MP camera JPEG stored sideways (EXIF orientation 6): upright it is 3000x4000."""
    data = images.jpeg_with_orientation(6, width=4000, height=3000)
    image_id = client.upload(data, "image/jpeg")
    return image_id, client.wait(image_id), data


def test_a_photo_gets_every_size_and_format_upright_and_never_upscaled(client, photo):
    image_id, body, _ = photo
    assert body["status"] == "PROCESSED"
    got = [(r["size"], r["format"], r["width"], r["height"]) for r in body["renditions"]]
    expected = [
        (size, fmt, round(3000 * box / 4000), box)
        for size, box in ((200, 200), (400, 400), (800, 800), (1600, 1600))
        for fmt in ("avif", "webp", "jpeg")
    ]
    assert got == expected
    for rendition in body["renditions"]:
        resp = fetch(client, image_id, size=rendition["size"], format=rendition["format"])
        assert resp.status_code == 200, resp.text
        obj = requests.get(resp.json()["downloadUrl"], timeout=30)
        assert obj.status_code == 200 and obj.headers["Content-Type"] == CONTENT_TYPES[rendition["format"]]
        assert len(obj.content) == rendition["bytes"]
        with Image.open(io.BytesIO(obj.content)) as im:
            assert im.format == PIL_FORMATS[rendition["format"]]
            assert im.size == (rendition["width"], rendition["height"])
            assert not im.getexif()  # no metadata (the EXIF orientation was applied, then dropped)
    # the seed's default download is unchanged: the 800-px JPEG, which is the set's own 800/jpeg object
    default = requests.get(client.download(image_id).json()["downloadUrl"], timeout=30)
    assert body["processed"]["width"] == 600 and body["processed"]["format"] == "JPEG"
    assert len(default.content) == body["processed"]["bytes"] == body["renditions"][8]["bytes"]


def test_the_placeholder_is_a_thumbhash_of_the_picture(client, photo):
    _, body, data = photo
    placeholder = body["placeholder"]
    import base64

    hashed = base64.b64decode(placeholder["thumbhash"])
    assert 0.7 < thumbhash.thumb_hash_to_approximate_aspect_ratio(hashed) < 0.8  # upright 3000x4000
    with Image.open(io.BytesIO(data)) as im:
        mean = im.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    color = tuple(int(placeholder["color"][i : i + 2], 16) for i in (1, 3, 5))
    assert all(abs(a - b) <= 24 for a, b in zip(color, mean, strict=True)), (color, mean)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (BROWSER_ACCEPT, "avif"),
        ("image/webp,image/*,*/*;q=0.8", "webp"),  # Safari 14-15, older Chrome
        ("image/avif;q=0,image/webp", "webp"),
        ("*/*", "jpeg"),
        (None, "jpeg"),
    ],
)
def test_format_auto_follows_the_accept_header(client, photo, accept, expected):
    image_id, _, _ = photo
    resp = fetch(client, image_id, headers={"Accept": accept} if accept else {}, size=400, format="auto")
    assert resp.status_code == 200, resp.text
    assert resp.json()["format"] == expected and resp.json()["width"] == 300
    assert "Accept" in resp.headers.get("Vary", "")
    without_size = fetch(client, image_id, headers={"Accept": accept} if accept else {}, format="auto")
    assert without_size.json()["size"] == 800  # the default size's box


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"size": 300, "format": "jpeg"}, 404, "NO_SUCH_RENDITION"),
        ({"size": 400, "format": "png"}, 404, "NO_SUCH_RENDITION"),  # an opaque photo has JPEGs, not PNGs
        ({"size": 400, "format": "gif"}, 400, "INVALID_FORMAT"),
        ({"size": "big", "format": "jpeg"}, 400, "INVALID_SIZE"),
        ({"size": -1}, 400, "INVALID_SIZE"),
    ],
)
def test_a_rendition_that_does_not_exist_is_a_clear_error(client, photo, params, status, code):
    resp = fetch(client, photo[0], **params)
    assert resp.status_code == status and resp.json()["error"]["code"] == code, resp.text


def test_srcset_lists_each_format_by_width_for_a_picture_element(client, photo):
    image_id, body, _ = photo
    resp = client.http.get(f"{client.stack.api}/images/{image_id}/srcset", timeout=30)
    assert resp.status_code == 200, resp.text
    srcset = resp.json()
    assert [s["type"] for s in srcset["sources"]] == ["image/avif", "image/webp", "image/jpeg"]
    for source in srcset["sources"]:
        candidates = [c.strip().rsplit(" ", 1) for c in source["srcset"].split(",")]
        assert [w for _, w in candidates] == ["150w", "300w", "600w", "1200w"]
        url, _ = candidates[1]
        assert requests.get(url, timeout=30).headers["Content-Type"] == source["type"]
    assert srcset["fallback"]["width"] == 600 and srcset["placeholder"] == body["placeholder"]


def test_a_real_iphone_heic_gets_the_full_set_each_at_its_declared_size_and_format(client):
    image_id = client.upload(corpus.read("iphone.heic"), "image/heic")
    body = client.wait(image_id)
    assert body["status"] == "PROCESSED", body
    assert {(r["size"], r["format"]) for r in body["renditions"]} == {
        (size, fmt) for size in (200, 400, 800, 1600) for fmt in ("avif", "webp", "jpeg")
    }
    for rendition in body["renditions"]:
        url = fetch(client, image_id, size=rendition["size"], format=rendition["format"]).json()["downloadUrl"]
        with Image.open(io.BytesIO(requests.get(url, timeout=30).content)) as im:
            assert (im.format, im.size) == (PIL_FORMATS[rendition["format"]], (rendition["width"], rendition["height"]))


def test_an_image_with_alpha_gets_png_instead_of_jpeg_and_keeps_its_transparency(client):
    image_id = client.upload(images.png_rgba(1000, 500), "image/png")
    body = client.wait(image_id)
    assert {r["format"] for r in body["renditions"]} == {"avif", "webp", "png"}
    for fmt in ("avif", "webp", "png"):
        url = fetch(client, image_id, size=400, format=fmt).json()["downloadUrl"]
        with Image.open(io.BytesIO(requests.get(url, timeout=30).content)) as im:
            assert im.mode == "RGBA" and im.getchannel("A").getextrema()[0] < 255, fmt


def test_a_small_image_is_never_upscaled_but_has_every_format(client):
    image_id = client.upload(images.jpeg(300, 200), "image/jpeg")
    body = client.wait(image_id)
    assert [(r["size"], r["width"]) for r in body["renditions"] if r["format"] == "webp"] == [(200, 200), (400, 300)]


# ---------------------------------------------------------------- completion events


def test_each_terminal_outcome_publishes_exactly_one_event_and_a_duplicate_none(client, stack, aws, bus_events):
    good = client.upload(images.jpeg(900, 600), "image/jpeg")
    bad = client.upload(b"GIF89a but not really a GIF", "image/gif")
    assert client.wait(good)["status"] == "PROCESSED" and client.wait(bad)["status"] == "REJECTED"
    # S3 delivers at least once: the same Object Created event again is a duplicate, and announces nothing
    sfn = aws("stepfunctions")
    first = sfn.list_executions(stateMachineArn=stack.state_machine)["executions"]
    original = next(
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in first
        if good in sfn.describe_execution(executionArn=e["executionArn"])["input"]
    )
    again = sfn.start_execution(stateMachineArn=stack.state_machine, input=json.dumps(original))["executionArn"]
    while sfn.describe_execution(executionArn=again)["status"] == "RUNNING":
        time.sleep(0.2)
    assert sfn.describe_execution(executionArn=again)["status"] == "SUCCEEDED"

    events = bus_events({good, bad})
    by_image = {e["detail"]["imageId"]: e for e in events}
    assert len(events) == 2, [(e["detail-type"], e["detail"]["imageId"]) for e in events]
    assert by_image[good]["detail-type"] == "Image Processed" and by_image[good]["source"] == "image-pipeline"
    assert by_image[good]["detail"]["status"] == "PROCESSED"
    assert by_image[good]["detail"]["renditions"] == client.wait(good)["renditions"]
    owner = jwt.decode(client.token, options={"verify_signature": False})["sub"]  # a consumer routes by it
    assert by_image[good]["detail"]["owner"] == by_image[bad]["detail"]["owner"] == owner
    assert by_image[bad]["detail-type"] == "Image Rejected"
    assert (
        by_image[bad]["detail"]["error"]["code"] == "UNSUPPORTED_FORMAT"
        or by_image[bad]["detail"]["error"]["code"] == "CORRUPT_IMAGE"
    )
