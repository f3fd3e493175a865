"""Cognito user pools on the local cloud (localcloud/plugins/cognito_idp.py, localcloud/plugins/cognito_resources.py): a stack deploys a
pool, an app client and a group; a user signs in with the same calls as on AWS and gets tokens that verify against
the pool's JWKS, published over HTTP where AWS publishes it."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_for_stack

try:  # PyJWT where the dev environment has it, else the signature is checked with cryptography
    import jwt
except ImportError:
    jwt = None

PASSWORD = "Correct-horse-battery-9"


def template(id_token_minutes: int, min_length: int = 12) -> str:
    pool = {
        "Type": "AWS::Cognito::UserPool",
        "Properties": {
            "UserPoolName": "images-users",
            "Policies": {"PasswordPolicy": {"MinimumLength": min_length, "RequireSymbols": False}},
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "AutoVerifiedAttributes": ["email"],
            "Schema": [
                {"Name": "email", "AttributeDataType": "String", "Mutable": True, "Required": True},
                {"Name": "tenant", "AttributeDataType": "String", "Mutable": True},
            ],
            "UserPoolTags": {"project": "image-pipeline"},
        },
    }
    client = {
        "Type": "AWS::Cognito::UserPoolClient",
        "Properties": {
            "UserPoolId": {"Ref": "UserPool"},
            "ClientName": "web",
            "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "IdTokenValidity": id_token_minutes,
            "AccessTokenValidity": 60,
            "RefreshTokenValidity": 30,
            "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"},
            "PreventUserExistenceErrors": "ENABLED",
        },
    }
    group = {
        "Type": "AWS::Cognito::UserPoolGroup",
        "Properties": {
            "UserPoolId": {"Ref": "UserPool"},
            "GroupName": "admin",
            "Precedence": 1,
            "Description": "Admins",
        },
    }
    outputs = {
        "PoolId": {"Ref": "UserPool"},
        "PoolIdAttribute": {"Fn::GetAtt": ["UserPool", "UserPoolId"]},
        "PoolArn": {"Fn::GetAtt": ["UserPool", "Arn"]},
        "ProviderName": {"Fn::GetAtt": ["UserPool", "ProviderName"]},
        "ProviderURL": {"Fn::GetAtt": ["UserPool", "ProviderURL"]},
        "ClientId": {"Ref": "UserPoolClient"},
        "ClientIdAttribute": {"Fn::GetAtt": ["UserPoolClient", "ClientId"]},
        "ClientName": {"Fn::GetAtt": ["UserPoolClient", "Name"]},
        "Group": {"Ref": "AdminGroup"},
    }
    resources = {"UserPool": pool, "UserPoolClient": client, "AdminGroup": group}
    return json.dumps({"Resources": resources, "Outputs": {k: {"Value": v} for k, v in outputs.items()}})


def outputs_of(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture
def stack(aws):
    """Create a stack from a template: its id (a deleted stack is found by id only) and outputs; deleted afterwards."""
    cfn = aws("cloudformation")
    ids: list[str] = []

    def create(body: str) -> tuple[str, dict[str, str]]:
        stack_id = cfn.create_stack(StackName=f"cognito-{uuid.uuid4().hex[:8]}", TemplateBody=body)["StackId"]
        ids.append(stack_id)
        created = wait_for_stack(cfn, stack_id)
        assert created["StackStatus"] == "CREATE_COMPLETE", created
        return stack_id, outputs_of(created)

    yield create
    for stack_id in ids:
        cfn.delete_stack(StackName=stack_id)


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verified_claims(token: str, jwks: dict, audience: str, issuer: str) -> dict:
    """The claims of an RS256 token whose signature verifies with the key its ``kid`` names in ``jwks``."""
    key = next(k for k in jwks["keys"] if k["kid"] == json.loads(b64url(token.split(".")[0]))["kid"])
    if jwt is not None:
        return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience, issuer=issuer)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    signed, _, signature = token.rpartition(".")
    numbers = rsa.RSAPublicNumbers(int.from_bytes(b64url(key["e"])), int.from_bytes(b64url(key["n"])))
    numbers.public_key().verify(b64url(signature), signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(b64url(signed.split(".")[1]))
    assert claims["aud"] == audience and claims["iss"] == issuer and claims["exp"] > time.time(), claims
    return claims


def fetch_jwks(endpoint: str, pool_id: str) -> dict:
    with urllib.request.urlopen(f"{endpoint}/{pool_id}/.well-known/jwks.json", timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
        return json.loads(resp.read())


def assert_no_keys(endpoint: str, pool_id: str) -> None:
    """The JWKS route answers 404 for a pool that does not exist (or no longer does)."""
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch_jwks(endpoint, pool_id)
    assert missing.value.code == 404


def browser_initiate_auth(endpoint: str, client_id: str, username: str, password: str) -> dict:
    """InitiateAuth as a web page sends it (the SDK in a browser): an unsigned JSON POST from a page of the endpoint."""
    body = {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": client_id,
        "AuthParameters": {"USERNAME": username, "PASSWORD": password},
    }
    request = urllib.request.Request(
        f"{endpoint}/",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
            "Origin": endpoint,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == endpoint
        return json.loads(resp.read())


def make_user(cognito, pool_id: str, username: str, groups=()) -> None:
    attributes = [{"Name": "email", "Value": f"{username}@example.com"}, {"Name": "custom:tenant", "Value": "acme"}]
    cognito.admin_create_user(
        UserPoolId=pool_id, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS"
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)


def test_a_stack_pool_signs_in_a_user_with_tokens_that_verify_against_its_jwks(aws, localcloud, stack):
    # GIVEN a stack with a pool, an app client and a group
    cognito, cfn = aws("cognito-idp"), aws("cloudformation")
    region = cognito.meta.region_name
    account = aws("sts").get_caller_identity()["Account"]
    stack_id, out = stack(template(id_token_minutes=60))
    pool_id, client_id = out["PoolId"], out["ClientId"]

    # THEN its outputs are what AWS gives for Ref and GetAtt
    assert pool_id.startswith(f"{region}_") and out["PoolIdAttribute"] == pool_id
    assert out["PoolArn"] == f"arn:aws:cognito-idp:{region}:{account}:userpool/{pool_id}"
    assert out["ProviderName"] == f"cognito-idp.{region}.amazonaws.com/{pool_id}"
    assert out["ProviderURL"] == f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"
    assert out["ClientIdAttribute"] == client_id and out["ClientName"] == "web"
    assert out["Group"] == "admin"
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["Name"] == "images-users" and pool["UserPoolTags"] == {"project": "image-pipeline"}
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    client = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert "ClientSecret" not in client and client["PreventUserExistenceErrors"] == "ENABLED"
    [group] = cognito.list_groups(UserPoolId=pool_id)["Groups"]
    assert (group["GroupName"], group["Precedence"], group["Description"]) == ("admin", 1, "Admins")

    # WHEN an admin makes a user in the group and the user signs in from a web page
    make_user(cognito, pool_id, "alice", groups=["admin"])
    result = browser_initiate_auth(localcloud, client_id, "alice", PASSWORD)["AuthenticationResult"]

    # THEN the ID token verifies against the JWKS served over HTTP, for this pool and client
    jwks = fetch_jwks(localcloud, pool_id)
    claims = verified_claims(result["IdToken"], jwks, audience=client_id, issuer=out["ProviderURL"])
    assert claims["token_use"] == "id" and claims["cognito:username"] == "alice"
    assert claims["cognito:groups"] == ["admin"] and claims["custom:tenant"] == "acme"
    assert result["TokenType"] == "Bearer" and result["ExpiresIn"] == 3600

    # AND a wrong password is refused, and the refresh token gives new tokens
    with pytest.raises(ClientError) as refused:
        cognito.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": "nope"}
        )
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    refreshed = cognito.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]}
    )["AuthenticationResult"]
    claims = verified_claims(refreshed["IdToken"], jwks, audience=client_id, issuer=out["ProviderURL"])
    assert claims["cognito:groups"] == ["admin"] and "RefreshToken" not in refreshed

    # WHEN the stack is deleted THEN the pool is gone, and so are its keys
    cfn.delete_stack(StackName=stack_id)
    assert wait_for_stack(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError) as gone:
        cognito.describe_user_pool(UserPoolId=pool_id)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert_no_keys(localcloud, pool_id)


def test_a_stack_update_changes_the_client_token_validity_in_place(aws, localcloud, stack):
    # GIVEN a stack whose client's ID tokens live an hour
    cognito, cfn = aws("cognito-idp"), aws("cloudformation")
    stack_id, before = stack(template(id_token_minutes=60))

    # WHEN the template gives them five minutes, and the pool a longer minimum password length
    cfn.update_stack(StackName=stack_id, TemplateBody=template(id_token_minutes=5, min_length=14))
    updated = wait_for_stack(cfn, stack_id)

    # THEN the pool, its client and its group are updated in place (the same ids), and the tokens say so
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated
    assert outputs_of(updated) == before
    pool_id, client_id = before["PoolId"], before["ClientId"]
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 14 and pool["Name"] == "images-users"
    client = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert client["IdTokenValidity"] == 5 and client["AccessTokenValidity"] == 60
    make_user(cognito, pool_id, "bob")
    result = cognito.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "bob", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    claims = verified_claims(result["IdToken"], fetch_jwks(localcloud, pool_id), client_id, before["ProviderURL"])
    assert claims["exp"] - claims["iat"] == 5 * 60
    assert result["ExpiresIn"] == 60 * 60
    assert "cognito:groups" not in claims


def test_a_client_without_the_password_flow_refuses_it(aws):
    cognito = aws("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"srp-only-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    try:
        client_id = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="srp")["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool_id, Username="carol", MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool_id, Username="carol", Password=PASSWORD, Permanent=True)
        with pytest.raises(ClientError) as refused:
            cognito.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": "carol", "PASSWORD": PASSWORD},
            )
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "USER_PASSWORD_AUTH flow not enabled for this client" in str(refused.value)
    finally:
        cognito.delete_user_pool(UserPoolId=pool_id)


def test_the_jwks_route_leaves_s3_requests_alone(aws, localcloud, bucket):
    # GIVEN an object whose key starts like a pool's JWKS path
    s3 = aws("s3")
    key = "us-east-1_AbC123xyz/.well-known/jwks.json"
    s3.put_object(Bucket=bucket, Key=key, Body=b"an object")

    # THEN a virtual-host request for it gets the object
    port = urlsplit(localcloud).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/{key}", headers={"Host": f"{bucket}.s3.localhost.localstack.cloud:{port}"})
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"an object")

    # AND S3 answers a path-style write to a bucket named like a pool, a name no bucket can have
    pool_like = key.split("/", 1)[0]
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=pool_like, Key=".well-known/jwks.json", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError) as refused:
        s3.create_bucket(Bucket=pool_like)
    assert refused.value.response["Error"]["Code"] == "InvalidBucketName"

    # AND a pool that does not exist has no keys
    assert_no_keys(localcloud, pool_like)
