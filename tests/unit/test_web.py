"""The web page's files as the API serves them (GET /web/{file}), against moto."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.unit.conftest import ROOT, load_event, load_handler


@pytest.fixture
def served(aws_env, monkeypatch, lambda_context):
    monkeypatch.setenv("WEB_BUCKET", "web-test")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="web-test")
    for path in (ROOT / "web").iterdir():
        s3.put_object(Bucket="web-test", Key=path.name, Body=path.read_bytes())
    handler = load_handler("api")
    handler.web._cache.clear()

    def get(name: str) -> dict:
        event = load_event("api_get_image")
        event.update(resource="/web/{file}", path=f"/web/{name}", pathParameters={"file": name})
        event["requestContext"].update(resourcePath="/web/{file}", path=f"/prod/web/{name}")
        return handler.lambda_handler(event, lambda_context)

    return get


def header(answer: dict, name: str) -> str:
    return answer["multiValueHeaders"][name][0]  # a REST API's proxy answer


def test_the_page_and_its_files_are_served_with_their_types_and_a_content_security_policy(served):
    page = served("index.html")
    assert page["statusCode"] == 200 and header(page, "Content-Type").startswith("text/html")
    assert 'data-testid="file-input"' in page["body"] and '<script src="app.js"' in page["body"]
    assert "script-src 'self'" in header(page, "Content-Security-Policy")
    assert header(served("app.js"), "Content-Type").startswith("text/javascript")
    assert header(served("style.css"), "Content-Type").startswith("text/css")


@pytest.mark.parametrize("name", ["missing.js", "..%2Ftemplate.yaml", "app.py", "index.html.bak"])
def test_anything_else_is_a_404_with_a_code(served, name):
    answer = served(name)
    assert answer["statusCode"] == 404 and json.loads(answer["body"])["error"]["code"] == "WEB_NOT_FOUND"
