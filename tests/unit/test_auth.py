"""Sign-in and ownership through the API handler, attacked: forged, expired and foreign tokens on every route, and
another owner's ids; against moto and the tests' own token issuer (tests/tokens.py)."""

from __future__ import annotations

import json

import pytest
from image_pipeline import auth
from image_pipeline.errors import ApiError

from tests.tokens import FORGERIES, forgeries
from tests.unit.conftest import load_event, load_handler, signed_in

IMAGE = "2a321b24-8f83-49ed-ad4b-626e2ec02201"


def route(method: str, resource: str, path: str, query: dict | None = None, body: str | None = None) -> dict:
    event = load_event("api_get_image")
    event.update(httpMethod=method, resource=resource, path=path, body=body)
    event["pathParameters"] = {"imageId": path.split("/")[2]} if "{imageId}" in resource else None
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    event["requestContext"].update(resourcePath=resource, path=f"/prod{path}", httpMethod=method)
    return event


def routes(image_id: str) -> dict[str, dict]:
    """Every API route but the web page's files, on ``image_id``."""
    return {
        "POST /upload": route("POST", "/upload", "/upload", body=json.dumps({"size": 10})),
        "GET /images": route("GET", "/images", "/images"),
        "GET /images/{id}": route("GET", "/images/{imageId}", f"/images/{image_id}"),
        "DELETE /images/{id}": route("DELETE", "/images/{imageId}", f"/images/{image_id}"),
        "GET /images/{id}/srcset": route("GET", "/images/{imageId}/srcset", f"/images/{image_id}/srcset"),
        "GET /images/{id}/trace": route("GET", "/images/{imageId}/trace", f"/images/{image_id}/trace"),
        "GET /download": route("GET", "/download", "/download", {"imageId": image_id}),
    }


@pytest.fixture
def api(aws_env):
    return load_handler("api")


def answer(api, event: dict, token: str | None, context) -> tuple[int, dict, dict]:
    resp = api.lambda_handler(signed_in(event, token), context)
    headers = {k: v[0] for k, v in (resp.get("multiValueHeaders") or {}).items()}
    return resp["statusCode"], json.loads(resp["body"] or "null"), headers


def upload_as(api, token: str, context) -> str:
    status, body, _ = answer(api, routes(IMAGE)["POST /upload"], token, context)
    assert status == 201, body
    return body["imageId"]


@pytest.mark.parametrize("forgery", [None, *FORGERIES])
def test_every_route_refuses_a_missing_or_forged_token_and_writes_nothing(
    api, aws_env, issuer, lambda_context, forgery
):
    # GIVEN alice's image
    image_id = upload_as(api, issuer.token("alice"), lambda_context)
    before = aws_env["table"].scan()["Items"]
    token = None if forgery is None else forgeries(issuer, "alice")[forgery]
    for name, event in routes(image_id).items():
        # WHEN the route is called without a token, or with one an attacker made
        status, body, headers = answer(api, event, token, lambda_context)
        # THEN 401 with a code, and nothing changed
        assert status == 401, (name, forgery, body)
        assert body["error"]["code"] in ("UNAUTHORIZED", "INVALID_TOKEN", "TOKEN_EXPIRED"), (name, body)
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert aws_env["table"].scan()["Items"] == before


def test_an_expired_token_says_so(api, issuer, lambda_context):
    status, body, _ = answer(api, routes(IMAGE)["GET /images"], issuer.expired("alice"), lambda_context)
    assert status == 401 and body["error"]["code"] == "TOKEN_EXPIRED"


def test_another_owners_image_is_invisible_on_every_route(api, aws_env, issuer, lambda_context):
    # GIVEN alice's image, and bob
    alice, bob = issuer.token("alice"), issuer.token("bob")
    image_id = upload_as(api, alice, lambda_context)
    unknown = "0a4fe3a1-ce40-4537-abc8-14417c4c92ac"
    for name, event in routes(image_id).items():
        if name in ("POST /upload", "GET /images"):
            continue
        # WHEN bob asks for it THEN he gets what an unknown id gets: 404 NOT_FOUND, word for word
        got = answer(api, event, bob, lambda_context)[:2]
        never_issued = answer(api, routes(unknown)[name], bob, lambda_context)[:2]
        assert got == (404, {"error": {"code": "NOT_FOUND", "message": "no such image"}}) == never_issued, name
    # AND his delete left it intact, and his listing never shows it
    assert aws_env["table"].get_item(Key={"imageId": image_id})["Item"]["status"] == "PENDING"
    assert answer(api, routes(image_id)["GET /images"], bob, lambda_context)[1]["images"] == []
    mine = answer(api, routes(image_id)["GET /images"], alice, lambda_context)[1]["images"]
    assert [i["imageId"] for i in mine] == [image_id] and "owner" not in mine[0]


def test_an_admin_lists_and_deletes_everyones_images(api, aws_env, issuer, lambda_context):
    alice_image = upload_as(api, issuer.token("alice"), lambda_context)
    bob_image = upload_as(api, issuer.token("bob"), lambda_context)
    admin = issuer.token("root", admin=True)
    everyone = route("GET", "/images", "/images", {"all": "true"})
    listed = answer(api, everyone, admin, lambda_context)[1]["images"]
    assert {(i["imageId"], i["owner"]) for i in listed} == {(alice_image, "alice"), (bob_image, "bob")}
    only_bob = answer(api, route("GET", "/images", "/images", {"owner": "bob"}), admin, lambda_context)[1]
    assert [i["imageId"] for i in only_bob["images"]] == [bob_image]
    # a caller who is not an admin cannot ask for that
    for query in ({"all": "true"}, {"owner": "bob"}):
        status, body, _ = answer(api, route("GET", "/images", "/images", query), issuer.token("alice"), lambda_context)
        assert status == 403 and body["error"]["code"] == "ADMIN_ONLY"
    # and a group claim of another name makes nobody an admin
    not_admin = issuer.token("mallory", **{"cognito:groups": ["admins", "administrator"]})
    assert answer(api, everyone, not_admin, lambda_context)[0] == 403
    assert answer(api, routes(bob_image)["DELETE /images/{id}"], admin, lambda_context)[0] == 204
    assert aws_env["table"].get_item(Key={"imageId": bob_image})["Item"]["status"] == "DELETED"


def test_the_owner_comes_from_the_token_never_from_the_body(api, aws_env, issuer, lambda_context):
    event = route("POST", "/upload", "/upload", body=json.dumps({"size": 10, "owner": "bob", "sub": "bob"}))
    status, body, _ = answer(api, event, issuer.token("alice"), lambda_context)
    assert status == 201
    assert aws_env["table"].get_item(Key={"imageId": body["imageId"]})["Item"]["owner"] == "alice"


def test_the_web_pages_files_need_no_token(api, lambda_context):
    event = route("GET", "/web/{file}", "/web/index.html")
    event["pathParameters"] = {"file": "index.html"}
    status, body, _ = answer(api, event, None, lambda_context)
    assert status == 404 and body["error"]["code"] == "WEB_NOT_FOUND"  # served (no bucket here), not refused


def test_keys_are_fetched_once_and_again_only_for_a_kid_not_seen(issuer):
    verifier = auth.TokenVerifier(issuer.issuer, issuer.audience, issuer.jwks_url)
    before = issuer.fetches
    for _ in range(5):
        assert verifier.caller(f"Bearer {issuer.token('alice')}").sub == "alice"
    assert issuer.fetches == before + 1
    with pytest.raises(ApiError) as e:
        verifier.caller(f"Bearer {issuer.signed_by_another_key('alice', same_kid=False)}")
    assert e.value.http_status == 401


def test_a_cognito_access_token_is_checked_by_its_client_id(issuer):
    verifier = auth.TokenVerifier(issuer.issuer, issuer.audience, issuer.jwks_url)
    access = issuer.token("alice", token_use="access", aud=None, client_id=issuer.audience)
    assert verifier.caller(f"Bearer {access}").sub == "alice"
    foreign = issuer.token("alice", token_use="access", aud=None, client_id="another-client")
    refresh = issuer.token("alice", token_use="refresh")
    for token in (foreign, refresh):
        with pytest.raises(ApiError) as e:
            verifier.caller(f"Bearer {token}")
        assert e.value.code == "INVALID_TOKEN"


@pytest.mark.parametrize(
    ("issuer_url", "endpoint", "expected"),
    [
        (
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
            None,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/.well-known/jwks.json",
        ),
        (
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
            "http://localhost:4566",
            "http://localhost:4566/eu-west-1_AbC/.well-known/jwks.json",
        ),
        ("https://example.auth0.com/", "http://localhost:4566", "https://example.auth0.com/.well-known/jwks.json"),
        (
            "https://cognito-idp.eu-west-1.amazonaws.com.evil.example/x",
            "http://localhost:4566",
            "https://cognito-idp.eu-west-1.amazonaws.com.evil.example/x/.well-known/jwks.json",
        ),
    ],
)
def test_the_keys_of_a_cognito_issuer_are_read_where_aws_calls_go(issuer_url, endpoint, expected):
    assert auth.jwks_url(issuer_url, None, endpoint) == expected
    assert auth.jwks_url(issuer_url, "https://keys.example/jwks", endpoint) == "https://keys.example/jwks"
