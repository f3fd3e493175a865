"""Sign-in and ownership against the deployed stack, through the public API only, attacked: every route without a
token or with a forged, expired or foreign one; another user's ids; a used upload URL."""

from __future__ import annotations

import base64
import gzip
import json
import time

import boto3
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests import images
from tests.conftest import ENDPOINT, REGION, ROOT

from .conftest import Client, executions_for, new_user, sign_in, token_of_new_user

UNKNOWN = "0a4fe3a1-ce40-4537-abc8-14417c4c92ac"


def routes(api: str, image_id: str) -> dict[str, tuple[str, str, dict]]:
    """Every API route but the web page's files, on ``image_id``."""
    return {
        "POST /upload": ("POST", f"{api}/upload", {"json": {"size": 100, "contentType": "image/png"}}),
        "GET /images": ("GET", f"{api}/images", {}),
        "GET /images/{id}": ("GET", f"{api}/images/{image_id}", {}),
        "GET /images/{id}/srcset": ("GET", f"{api}/images/{image_id}/srcset", {}),
        "GET /images/{id}/trace": ("GET", f"{api}/images/{image_id}/trace", {}),
        "GET /download": ("GET", f"{api}/download", {"params": {"imageId": image_id}}),
        "PATCH /images/{id}": ("PATCH", f"{api}/images/{image_id}", {"json": {"focalPoint": {"x": 0.5, "y": 0.5}}}),
        "DELETE /images/{id}": ("DELETE", f"{api}/images/{image_id}", {}),
    }


def test_the_attacks_name_every_route_the_template_declares():
    """A route added to the API joins the attacks below, or this fails."""
    from tests.unit.test_template import RESOURCES

    declared = {
        f"{e['Properties']['Method'].upper()} {e['Properties']['Path'].replace('{imageId}', '{id}')}"
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e["Type"] == "Api"
    }
    assert declared - {"GET /web/{file}"} == set(routes("API", "ID"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def local_issuer_key():
    """The private key the local cloud's Cognito (moto) signs every pool's tokens with: here only to make a token
    that is expired yet correctly signed (a real one would take an hour to expire)."""
    resources = "lib/python3.*/site-packages/moto/cognitoidp/resources/jwks-private.json*"
    [path] = list((ROOT / ".venv" / "localstack").glob(resources))
    data = path.read_bytes()
    return jwt.PyJWK(json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)).key


def attacks(stack, token: str) -> dict[str, str]:
    """Tokens the API must refuse, made from a real ``token`` of the stack's pool."""
    header, claims = jwt.get_unverified_header(token), _claims(token)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    # another app client of the same pool: a real token, for another audience
    idp = boto3.client("cognito-idp", endpoint_url=ENDPOINT, region_name=REGION)
    other = idp.create_user_pool_client(
        UserPoolId=stack.outputs["UserPoolId"],
        ClientName="another-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    username, password = new_user(stack, "foreign")
    foreign = idp.initiate_auth(
        ClientId=other, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": password}
    )["AuthenticationResult"]["IdToken"]
    head, payload, signature = token.split(".")
    return {
        "no token": "",
        "wrong signature": jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": header["kid"]}),
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.",
        "expired": jwt.encode(
            {**claims, "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600},
            local_issuer_key(),
            algorithm="RS256",
            headers={"kid": header["kid"]},
        ),
        "another audience": foreign,
        "tampered subject": f"{head}.{_b64(json.dumps({**claims, 'sub': _claims(foreign)['sub']}).encode())}.{signature}",
    }


@pytest.fixture(scope="module")
def alice(stack) -> Client:
    return Client(stack, token_of_new_user(stack, "alice"))


@pytest.fixture(scope="module")
def bob(stack) -> Client:
    return Client(stack, token_of_new_user(stack, "bob"))


@pytest.fixture(scope="module")
def alices_image(alice) -> str:
    image_id = alice.upload(images.jpeg(640, 480), "image/jpeg")
    assert alice.wait(image_id)["status"] == "PROCESSED"
    return image_id


def test_every_route_refuses_a_missing_forged_expired_or_foreign_token_and_writes_nothing(
    stack, alice, alices_image, aws
):
    table = aws("dynamodb")
    before = table.scan(TableName=stack.table)["Items"]
    for attack, token in attacks(stack, alice.token).items():
        for name, (method, url, kwargs) in routes(stack.api, alices_image).items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            resp = requests.request(method, url, headers=headers, timeout=30, **kwargs)
            assert resp.status_code == 401, (attack, name, resp.status_code, resp.text)
            assert resp.json()["error"]["code"] in ("UNAUTHORIZED", "INVALID_TOKEN", "TOKEN_EXPIRED"), (attack, name)
    assert table.scan(TableName=stack.table)["Items"] == before  # nothing written, nothing deleted
    assert alice.image(alices_image).json()["status"] == "PROCESSED"


def test_alices_image_is_invisible_to_bob_on_every_route(stack, alice, bob, alices_image):
    for name, (method, url, kwargs) in routes(stack.api, alices_image).items():
        if name in ("POST /upload", "GET /images"):
            continue
        # WHEN bob names alice's image THEN he gets exactly what an id never issued gets
        got = bob.http.request(method, url, timeout=30, **kwargs)
        _, unknown_url, unknown_kwargs = routes(stack.api, UNKNOWN)[name]
        never = bob.http.request(method, unknown_url, timeout=30, **unknown_kwargs)
        assert got.status_code == never.status_code == 404, (name, got.text)
        assert got.json() == never.json() == {"error": {"code": "NOT_FOUND", "message": "no such image"}}, name
    # his DELETE left it intact, his PATCH set no focal point, his listing never shows it
    assert alice.image(alices_image).json()["status"] == "PROCESSED"
    assert alice.image(alices_image).json()["focalPoint"] is None
    assert requests.get(alice.download(alices_image).json()["downloadUrl"], timeout=30).status_code == 200
    assert alices_image not in {i["imageId"] for i in bob.http.get(f"{stack.api}/images").json()["images"]}
    assert alices_image in {i["imageId"] for i in alice.http.get(f"{stack.api}/images").json()["images"]}


def test_an_admin_lists_everyones_images_and_a_user_cannot(stack, alice, bob, alices_image):
    bobs_image = bob.upload(images.png_rgba(64, 64), "image/png")
    admin = Client(stack, token_of_new_user(stack, "admin", admin=True))
    everyone = admin.http.get(f"{stack.api}/images", params={"all": "true", "limit": "100"}).json()["images"]
    owners = {i["imageId"]: i["owner"] for i in everyone}
    assert owners[alices_image] == _claims(alice.token)["sub"] and owners[bobs_image] == _claims(bob.token)["sub"]
    of_bob = admin.http.get(f"{stack.api}/images", params={"owner": _claims(bob.token)["sub"]}).json()["images"]
    assert [i["imageId"] for i in of_bob] == [bobs_image]
    refused = bob.http.get(f"{stack.api}/images", params={"all": "true"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ADMIN_ONLY"
    assert admin.http.delete(f"{stack.api}/images/{bobs_image}").status_code == 204
    assert bob.image(bobs_image).status_code == 404


def test_a_used_upload_url_is_refused_by_s3_and_starts_nothing(stack, alice, aws):
    # GIVEN an upload through its URL, processed
    data = images.jpeg(320, 240)
    grant = alice.request_upload(size=len(data), contentType="image/jpeg").json()
    assert requests.put(grant["uploadUrl"], data=data, headers=grant["headers"], timeout=30).status_code == 200
    assert alice.wait(grant["imageId"])["status"] == "PROCESSED"
    sfn = aws("stepfunctions")
    started = len(executions_for(sfn, stack.state_machine, f"uploads/{grant['imageId']}"))
    # WHEN the URL is used again, with other bytes of the same length
    again = requests.put(grant["uploadUrl"], data=data[::-1], headers=grant["headers"], timeout=30)
    # THEN S3 refuses it (the URL is signed with If-None-Match: *), and no execution starts
    assert again.status_code == 412, again.text
    assert "PreconditionFailed" in again.text
    time.sleep(2)  # an execution would have started within ~50 ms of a PUT (reference: S3 -> EventBridge latency)
    assert len(executions_for(sfn, stack.state_machine, f"uploads/{grant['imageId']}")) == started
    head = aws("s3").get_object(Bucket=stack.original_bucket, Key=f"uploads/{grant['imageId']}")
    assert head["Body"].read() == data


def test_sign_in_refuses_a_wrong_password(stack):
    username, _ = new_user(stack, "carol")
    with pytest.raises(Exception, match="NotAuthorized"):
        sign_in(stack, username, "Wrong-password-123")
