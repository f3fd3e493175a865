"""The API handler end to end on API Gateway events, against moto."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.unit.conftest import load_event, load_handler, signed_in


@pytest.fixture
def api(aws_env):
    return load_handler("api")


@pytest.fixture(autouse=True)
def alice(issuer):
    """Every call() is alice's unless it says otherwise."""
    global ALICE_TOKEN
    ALICE_TOKEN = issuer.token("alice")


ALICE_TOKEN = ""
SIGNED_IN = object()


def call(api, event: dict, context, token: str | None | object = SIGNED_IN) -> tuple[int, dict]:
    resp = api.lambda_handler(signed_in(event, ALICE_TOKEN if token is SIGNED_IN else token), context)
    return resp["statusCode"], json.loads(resp["body"])


def upload_event(body) -> dict:
    event = load_event("api_upload")
    event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    return event


def test_upload_issues_a_presigned_put_and_a_pending_record(api, aws_env, lambda_context):
    status, body = call(api, load_event("api_upload"), lambda_context)

    assert status == 201
    assert set(body) == {"imageId", "uploadUrl", "method", "headers", "expiresIn", "maxBytes"}
    assert body["method"] == "PUT" and body["headers"]["Content-Type"] == "image/jpeg"
    assert body["headers"]["If-None-Match"] == "*"  # single use: S3 refuses a second PUT to the key
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(body["uploadUrl"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    signed = set(query["X-Amz-SignedHeaders"][0].split(";"))
    assert signed >= {"content-length", "content-type", "host", "if-none-match"}
    assert f"uploads/{body['imageId']}" in body["uploadUrl"]
    assert aws_env["table"].get_item(Key={"imageId": body["imageId"]})["Item"]["status"] == "PENDING"


def test_upload_with_only_a_size_signs_the_length(api, lambda_context):
    status, body = call(api, upload_event({"size": 1234}), lambda_context)
    assert status == 201 and body["headers"] == {"Content-Length": "1234", "If-None-Match": "*"}
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(body["uploadUrl"]).query)
    assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")


@pytest.mark.parametrize("content_type", ["image/heic", "image/heif", "image/avif", "IMAGE/HEIC"])
def test_upload_accepts_phone_formats(api, lambda_context, content_type):
    status, body = call(api, upload_event({"size": 10, "contentType": content_type}), lambda_context)
    assert status == 201 and body["headers"]["Content-Type"] == content_type.lower()


def test_heic_can_be_turned_off(aws_env, monkeypatch, lambda_context):
    monkeypatch.setenv("ACCEPT_HEIC", "false")
    api = load_handler("api")
    status, body = call(api, upload_event({"size": 10, "contentType": "image/heic"}), lambda_context)
    assert status == 400 and body["error"]["code"] == "UNSUPPORTED_CONTENT_TYPE"
    assert call(api, upload_event({"size": 10, "contentType": "image/avif"}), lambda_context)[0] == 201


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "INVALID_JSON"),
        ("[" * 50_000 + "]" * 50_000, "INVALID_JSON"),  # deeply nested: json.loads raises RecursionError
        ([1, 2], "INVALID_REQUEST"),
        (None, "MISSING_SIZE"),
        ({"contentType": "image/jpeg"}, "MISSING_SIZE"),
        ({"contentType": "text/html", "size": 10}, "UNSUPPORTED_CONTENT_TYPE"),
        ({"contentType": "image/svg+xml", "size": 10}, "UNSUPPORTED_CONTENT_TYPE"),
        ({"size": 10**9}, "TOO_LARGE"),
        ({"size": -1}, "INVALID_REQUEST"),
        ({"size": "12"}, "INVALID_REQUEST"),
        ({"filename": "x" * 300, "size": 10}, "INVALID_REQUEST"),
    ],
)
def test_upload_refuses_bad_requests_with_a_code(api, aws_env, lambda_context, body, code):
    status, resp = call(api, upload_event(body), lambda_context)
    assert status == 400 and resp["error"]["code"] == code and resp["error"]["message"]
    assert aws_env["table"].scan()["Count"] == 0


def test_get_image_reports_status(api, lambda_context):
    _, created = call(api, load_event("api_upload"), lambda_context)
    event = load_event("api_get_image")
    event["path"] = f"/images/{created['imageId']}"
    event["pathParameters"] = {"imageId": created["imageId"]}
    status, body = call(api, event, lambda_context)
    assert status == 200 and body["status"] == "PENDING" and body["imageId"] == created["imageId"]


@pytest.mark.parametrize(
    ("image_id", "status", "code"),
    [
        ("not-a-uuid", 400, "INVALID_IMAGE_ID"),
        ("2a321b24-8f83-49ed-ad4b-626e2ec02201\n", 400, "INVALID_IMAGE_ID"),
        ("2a321b24-8f83-49ed-ad4b-626e2ec02201", 404, "NOT_FOUND"),
    ],
)
def test_get_image_errors(api, lambda_context, image_id, status, code):
    event = load_event("api_get_image")
    event["path"], event["pathParameters"] = f"/images/{image_id}", {"imageId": image_id}
    got, body = call(api, event, lambda_context)
    assert got == status and body["error"]["code"] == code


def test_download_of_a_pending_image_is_409(api, lambda_context):
    _, created = call(api, load_event("api_upload"), lambda_context)
    event = load_event("api_download")
    event["queryStringParameters"] = {"imageId": created["imageId"]}
    event["multiValueQueryStringParameters"] = {"imageId": [created["imageId"]]}
    status, body = call(api, event, lambda_context)
    assert status == 409 and body["status"] == "PENDING" and body["error"]["code"] == "NOT_READY"


def test_download_without_id_is_400(api, lambda_context):
    event = load_event("api_download")
    event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
    status, body = call(api, event, lambda_context)
    assert status == 400 and body["error"]["code"] == "MISSING_IMAGE_ID"


@pytest.mark.parametrize(
    ("accept", "available", "chosen"),
    [
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", {"avif", "webp", "jpeg"}, "avif"),
        ("image/webp,*/*", {"avif", "webp", "jpeg"}, "webp"),
        ("image/avif;q=0, image/webp;q=0.9", {"avif", "webp", "jpeg"}, "webp"),
        ("image/avif", {"webp", "png"}, "png"),  # what it accepts is not there: the fallback every browser shows
        ("*/*", {"avif", "webp", "jpeg"}, "jpeg"),  # a wildcard is not a promise to decode AVIF
        (None, {"avif", "webp", "png"}, "png"),
        ("image/avif", set(), None),
    ],
)
def test_format_auto_picks_the_best_format_the_client_accepts(accept, available, chosen):
    from image_pipeline import api

    assert api.pick_format(dict.fromkeys(available, {}), "auto", accept) == chosen
