"""ApiKeyRequired=true: API Gateway refuses calls without a key of the stack's usage plan (LocalStack enforces it);
and the per-owner quotas, on the same stack deployed with a low hourly limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests import images

from .conftest import Client, deploy

UPLOADS_PER_HOUR = 4

NO_SUCH_IMAGE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def keyed(localcloud):
    """A second stack of the same template, deployed with the API key on and a low hourly upload quota."""
    return deploy(
        "image-pipeline-keyed",
        "ApiKeyRequired=true",
        "ImageTableName=image-pipeline-keyed",
        f"UploadsPerHour={UPLOADS_PER_HOUR}",
    )


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "not-a-key-of-this-plan"}], ids=["no key", "wrong key"])
def test_without_a_valid_key_every_route_is_forbidden_with_a_json_error(keyed, headers):
    for method, path, kwargs in (
        ("POST", "/upload", {"json": {"filename": "a.jpg"}}),
        ("GET", f"/images/{NO_SUCH_IMAGE}", {}),
        ("GET", "/download", {"params": {"imageId": NO_SUCH_IMAGE}}),
    ):
        resp = requests.request(method, keyed.api + path, headers=headers, timeout=30, **kwargs)
        assert resp.status_code == 403, (path, resp.status_code, resp.text)
        assert resp.json()["error"]["code"] == "INVALID_API_KEY", resp.text


def test_with_the_stacks_key_an_upload_is_processed_and_downloadable(keyed):
    assert keyed.api_key
    client = Client(keyed)  # sends x-api-key on every API call
    image_id = client.upload(images.jpeg(1200, 900), "image/jpeg")
    assert client.wait(image_id)["status"] == "PROCESSED"
    assert client.download(image_id).status_code == 200


def test_cors_preflight_needs_no_key_and_allows_the_key_header(keyed):
    resp = requests.options(
        f"{keyed.api}/upload",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert resp.status_code == 200
    assert "x-api-key" in resp.headers["Access-Control-Allow-Headers"].lower()


def test_upload_grants_stop_at_the_hourly_quota_even_when_asked_for_at_once(keyed):
    # GIVEN a new user, and another
    client, other = Client(keyed), Client(keyed)
    body = {"size": 100, "contentType": "image/png"}

    # WHEN the first asks for twice the hourly quota, all at once
    def ask(_: int) -> requests.Response:
        return client.http.post(f"{keyed.api}/upload", json=body, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(2 * UPLOADS_PER_HOUR)))

    # THEN exactly the quota is granted (the counters are conditional writes in one transaction: none overshoots)
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == UPLOADS_PER_HOUR, [a.text for a in answers]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(a.json()["error"]["code"] == "QUOTA_EXCEEDED" for a in refused)
    assert all(a.json()["limit"] == "uploadsPerHour" and 0 < int(a.headers["Retry-After"]) <= 3600 for a in refused)
    assert set(codes) <= {201, 429, 503}  # 503: a transaction that met another on the same counter, retried later
    # AND one more is refused; another owner's quota is untouched
    assert client.http.post(f"{keyed.api}/upload", json=body, timeout=60).status_code == 429
    assert other.http.post(f"{keyed.api}/upload", json=body, timeout=60).status_code == 201
