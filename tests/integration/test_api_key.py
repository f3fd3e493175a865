"""ApiKeyRequired=true: API Gateway refuses calls without a key of the stack's usage plan (LocalStack enforces it)."""

from __future__ import annotations

import pytest
import requests

from tests import images

from .conftest import Client, deploy

NO_SUCH_IMAGE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def keyed(localcloud):
    """A second stack of the same template, deployed with the API key on."""
    return deploy("image-pipeline-keyed", "ApiKeyRequired=true", "ImageTableName=image-pipeline-keyed")


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
