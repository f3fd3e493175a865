"""The API's error contract over real HTTP (API Gateway on the local cloud)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests import images


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "INVALID_JSON"),
        ('{"contentType": "text/html"}', "UNSUPPORTED_CONTENT_TYPE"),
        ('{"size": 999999999999}', "TOO_LARGE"),
        ('{"size": 0}', "INVALID_REQUEST"),
        ('{"contentType": "image/jpeg"}', "MISSING_SIZE"),
        ("", "MISSING_SIZE"),
        ("[" * 100_000 + "]" * 100_000, "INVALID_JSON"),
    ],
    ids=["not-json", "html", "too-large", "zero", "no-size", "no-body", "deeply-nested"],
)
def test_upload_refuses_bad_requests(client, body, code):
    resp = client.http.post(f"{client.stack.api}/upload", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == code


def test_unknown_and_malformed_ids(client):
    assert client.image(str(uuid.uuid4())).status_code == 404
    for bad_id in ("not-a-uuid", f"{uuid.uuid4()}%0A"):  # a trailing newline is not part of an id
        bad = client.image(bad_id)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_IMAGE_ID", bad_id
    assert client.download(str(uuid.uuid4())).status_code == 404
    missing = client.http.get(f"{client.stack.api}/download")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MISSING_IMAGE_ID"


def test_download_before_upload_is_409_pending(client):
    image_id = client.request_upload(contentType="image/png", size=100).json()["imageId"]
    resp = client.download(image_id)
    assert resp.status_code == 409 and resp.json()["status"] == "PENDING"
    assert client.image(image_id).json()["status"] == "PENDING"


def test_signed_headers_are_enforced_by_s3(client):
    # GIVEN a grant for a declared PNG of 100 bytes
    grant = client.request_upload(contentType="image/png", size=100).json()
    # WHEN the client sends something else, or tampers with the URL
    wrong_type = requests.put(grant["uploadUrl"], data=b"x" * 100, headers={"Content-Type": "text/html"})
    wrong_size = requests.put(grant["uploadUrl"], data=b"x" * 5000, headers={"Content-Type": "image/png"})
    tampered = requests.put(
        grant["uploadUrl"].replace("uploads/", "uploads/x"), data=b"x" * 100, headers=grant["headers"]
    )
    # THEN S3 refuses each, and nothing was stored
    assert wrong_type.status_code == 403 and wrong_size.status_code in (400, 403) and tampered.status_code == 403
    assert client.image(grant["imageId"]).json()["status"] == "PENDING"


def test_no_upload_url_admits_more_than_it_was_granted_for(client):
    # GIVEN a grant for 1000 bytes, with no content type declared (the plain curl -T flow)
    grant = client.request_upload(size=1000).json()
    assert grant["headers"] == {"Content-Length": "1000", "If-None-Match": "*"}
    # WHEN a client sends more (or less) THEN S3 refuses: the length is part of the signature
    for body in (b"x" * 1001, b"x" * 10_000_000, b"x" * 999):
        assert requests.put(grant["uploadUrl"], data=body, headers={"If-None-Match": "*"}).status_code in (400, 403)
    assert requests.put(grant["uploadUrl"], data=b"x" * 1000, headers={"If-None-Match": "*"}).status_code == 200


def test_expired_presigned_url_is_refused_by_s3(aws, stack):
    url = aws("s3").generate_presigned_url(
        "put_object", Params={"Bucket": stack.original_bucket, "Key": "uploads/expired-url-test"}, ExpiresIn=1
    )
    time.sleep(2)
    assert requests.put(url, data=b"x").status_code == 403


def test_cors_for_browser_uploads(client):
    preflight = client.http.options(
        f"{client.stack.api}/upload",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers.get("Access-Control-Allow-Origin") in ("*", "https://example.com")
    resp = client.http.post(f"{client.stack.api}/upload", json={"size": 10}, headers={"Origin": "https://example.com"})
    assert resp.headers.get("Access-Control-Allow-Origin") in ("*", "https://example.com")


def test_cors_for_the_browser_upload_and_download_themselves(client):
    # The browser PUTs the bytes straight to S3 and may fetch() the rendition: S3 answers those preflights.
    origin = {"Origin": "https://example.com"}
    data = images.jpeg(400, 300)
    resp = client.request_upload(contentType="image/jpeg", size=len(data))
    grant = resp.json()
    preflight = requests.options(
        grant["uploadUrl"],
        headers={
            **origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,if-none-match",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", "https://example.com")
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    refused = requests.options(grant["uploadUrl"], headers={**origin, "Access-Control-Request-Method": "DELETE"})
    assert refused.status_code == 403
    put = requests.put(grant["uploadUrl"], data=data, headers={**grant["headers"], **origin})
    assert put.status_code == 200 and put.headers["Access-Control-Allow-Origin"] in ("*", "https://example.com")
    assert client.wait(grant["imageId"])["status"] == "PROCESSED"
    url = client.download(grant["imageId"]).json()["downloadUrl"]
    get = requests.get(url, headers=origin)
    assert get.status_code == 200 and get.headers["Access-Control-Allow-Origin"] in ("*", "https://example.com")


def test_errors_never_leak_stack_traces(client):
    resp = client.http.post(f"{client.stack.api}/upload", data="[" * 5000, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "Traceback" not in resp.text and resp.json()["error"]["code"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/no-such-route"), ("DELETE", "/upload")])
def test_errors_of_api_gateway_itself_are_json_with_a_code(client, method, path):
    # The template's GatewayResponses (DEFAULT_4XX/5XX) shape errors that never reach a function.
    resp = client.http.request(method, client.stack.api + path)
    assert resp.status_code == 403
    assert resp.json()["error"] == {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
