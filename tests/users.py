"""Users of a deployed stack's own Cognito pool, made as an operator makes them (AdminCreateUser and a permanent
password) and signed in as the web page and imgpipe sign in (USER_PASSWORD_AUTH): for the integration tests and the
benchmarks that call the API."""

from __future__ import annotations

import secrets
import uuid

import boto3


def new_user(outputs: dict, endpoint: str | None, name: str = "user", admin: bool = False) -> tuple[str, str]:
    """A new user of the stack (its ``outputs``) with a unique name starting with ``name``, in the admin group if
    ``admin``: (username, password)."""
    idp = boto3.client("cognito-idp", endpoint_url=endpoint)
    pool = outputs["UserPoolId"]
    username, password = f"{name}-{uuid.uuid4().hex[:8]}", f"Pw-{secrets.token_urlsafe(12)}-9aZ"
    idp.admin_create_user(UserPoolId=pool, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=username, Password=password, Permanent=True)
    if admin:
        idp.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=outputs["AdminGroupName"])
    return username, password


def sign_in(outputs: dict, endpoint: str | None, username: str, password: str) -> str:
    """The user's ID token, through the stack's app client."""
    idp = boto3.client("cognito-idp", endpoint_url=endpoint)
    answer = idp.initiate_auth(
        ClientId=outputs["UserPoolClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return answer["AuthenticationResult"]["IdToken"]


def token_of_new_user(outputs: dict, endpoint: str | None, name: str = "user", admin: bool = False) -> str:
    return sign_in(outputs, endpoint, *new_user(outputs, endpoint, name, admin))
