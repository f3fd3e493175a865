"""imgpipe's sign-in: users add, login, token, logout and the bearer token on every API call. Against moto's Cognito
(in process) and a fake HTTP API on 127.0.0.1 that checks the bearer token; no network, no local cloud."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from imgpipe import auth
from imgpipe.cli import app
from moto import mock_aws
from typer.testing import CliRunner

from tests.local_http import Handler, serving

STACK, REGION = "image-pipeline", "us-east-1"
PASSWORD = "Correct-Horse-Battery-9"
NOT_SIGNED_IN = "imgpipe: not signed in: run imgpipe login\n"


class FakeApi:
    """The API's GET /images and POST /upload for a bearer token it accepts (401 INVALID_TOKEN otherwise: no token,
    one in ``refuse``, or any with ``refuse_all``), and the storage's PUT of a presigned URL (/storage/...)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []  # the API's: method, path, bearer token
        self.puts: list[dict[str, str]] = []  # the storage's: headers
        self.refuse: set[str] = set()
        self.refuse_all = False
        self.put_answers: list[int] = []  # the storage's answers in turn, then 200
        self.images = [{"imageId": "img-1", "filename": "beach.jpg", "status": "PROCESSED"}]
        self.url = ""

    @property
    def bearers(self) -> list[str | None]:
        return [call["bearer"] for call in self.calls]

    def __enter__(self) -> FakeApi:
        fake = self

        class Api(Handler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's names
                self.answer()

            def do_POST(self) -> None:  # noqa: N802
                self.answer()

            def do_PUT(self) -> None:  # noqa: N802
                self.answer()

            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                if path.startswith("/storage/"):
                    fake.puts.append(dict(self.headers))
                    status = fake.put_answers.pop(0) if fake.put_answers else 200
                    body = b"<Error><Code>PreconditionFailed</Code></Error>" if status == 412 else b""
                    return self.send(status, body, "application/xml")
                header = self.headers.get("Authorization", "")
                token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
                fake.calls.append({"method": self.command, "path": path, "bearer": token})
                if token is None or token in fake.refuse or fake.refuse_all:
                    return self.json(401, {"error": {"code": "INVALID_TOKEN", "message": "the token is not valid"}})
                if (self.command, path) == ("GET", "/images"):
                    return self.json(200, {"images": fake.images, "cursor": None})
                if (self.command, path) == ("POST", "/upload"):
                    headers = {"Content-Type": "image/jpeg", "If-None-Match": "*"}
                    upload_url = f"{fake.url}/storage/uploads/img-2"
                    return self.json(200, {"imageId": "img-2", "uploadUrl": upload_url, "headers": headers})
                return self.json(404, {"error": {"code": "NOT_FOUND", "message": "no such route"}})

        self._serving = serving(Api)
        self.url = self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(*exc)


@pytest.fixture
def cloud(monkeypatch, tmp_path) -> Iterator[SimpleNamespace]:
    """moto's Cognito with the stack's user pool, app client and admin group, and the stack's outputs naming them;
    the config directory in tmp_path."""
    for name in (
        "IMGPIPE_TOKEN",
        "IMGPIPE_ENDPOINT_URL",
        "IMGPIPE_API_URL",
        "IMGPIPE_API_KEY",
        "IMGPIPE_STACK",
        "IMGPIPE_CLIENT_ID",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool = cognito.create_user_pool(PoolName=f"{STACK}-users")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName=f"{STACK}-clients",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.create_group(UserPoolId=pool, GroupName="admin")
        outputs = {"UserPoolId": pool, "UserPoolClientId": client_id, "AdminGroupName": "admin"}
        template = {
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(template)
        )
        yield SimpleNamespace(
            cognito=cognito,
            pool=pool,
            client_id=client_id,
            session_file=tmp_path / "config" / "imgpipe" / "sessions" / f"{STACK}@{REGION}.json",
        )


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi() as fake:
        yield fake


@pytest.fixture
def imgpipe(cloud, api):
    """imgpipe ARGS against the stack on "AWS" (moto) and the fake API: its exit code, stdout and stderr apart."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, ["--region", REGION, "--api-url", api.url, *args], input=input)

    return run


def add_user(imgpipe, name: str = "alice", *options: str, password: str = PASSWORD) -> None:
    done = imgpipe("users", "add", name, "--password-stdin", *options, input=f"{password}\n")
    assert done.exit_code == 0, done.output


def sign_in(imgpipe, name: str = "alice") -> None:
    add_user(imgpipe, name)
    done = imgpipe("login", name, "--password-stdin", input=f"{PASSWORD}\n")
    assert done.exit_code == 0, done.output


def groups(cloud, name: str) -> list[str]:
    return [
        g["GroupName"] for g in cloud.cognito.admin_list_groups_for_user(UserPoolId=cloud.pool, Username=name)["Groups"]
    ]


def sub_of(cloud, name: str) -> str:
    user = cloud.cognito.admin_get_user(UserPoolId=cloud.pool, Username=name)
    return next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")


# ---------------------------------------------------------------- users add


def test_users_add_creates_a_confirmed_user_and_with_admin_an_admin(imgpipe, cloud):
    # GIVEN nobody signed in (users add needs AWS credentials only)
    # WHEN two users are added, one with --admin
    add_user(imgpipe, "alice")
    done = imgpipe("users", "add", "root", "--admin", "--password-stdin", input=f"{PASSWORD}\n")
    # THEN both have a permanent password, and only root is in the admin group
    assert done.exit_code == 0 and "root" in done.stdout
    for name in ("alice", "root"):
        assert cloud.cognito.admin_get_user(UserPoolId=cloud.pool, Username=name)["UserStatus"] == "CONFIRMED"
    assert groups(cloud, "alice") == [] and groups(cloud, "root") == ["admin"]
    assert imgpipe("login", "root", "--password-stdin", input=f"{PASSWORD}\n").exit_code == 0


def test_users_add_asks_for_the_password_twice_without_password_stdin(imgpipe, cloud):
    done = imgpipe("users", "add", "alice", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert PASSWORD not in done.output  # a hidden prompt
    assert imgpipe("login", "alice", "--password-stdin", input=f"{PASSWORD}\n").exit_code == 0


def test_users_add_refuses_an_existing_user_unless_update(imgpipe, cloud):
    add_user(imgpipe, "alice")
    again = imgpipe("users", "add", "alice", "--password-stdin", input="Another-Password-7\n")
    assert again.exit_code == 1
    assert again.stderr == "imgpipe: user alice exists already: imgpipe users add alice --update sets its password\n"
    updated = imgpipe("users", "add", "alice", "--update", "--admin", "--password-stdin", input="Another-Password-7\n")
    assert updated.exit_code == 0, updated.output
    assert groups(cloud, "alice") == ["admin"]
    assert imgpipe("login", "alice", "--password-stdin", input="Another-Password-7\n").exit_code == 0


def test_users_add_reports_a_refused_password_on_one_line_and_leaves_no_user(imgpipe, cloud):
    done = imgpipe("users", "add", "alice", "--password-stdin", input="short\n")
    assert done.exit_code == 1
    assert done.stderr.startswith("imgpipe: InvalidPasswordException: ") and done.stderr.count("\n") == 1
    with pytest.raises(cloud.cognito.exceptions.UserNotFoundException):
        cloud.cognito.admin_get_user(UserPoolId=cloud.pool, Username="alice")


# ---------------------------------------------------------------- login, token, logout


def test_login_keeps_the_tokens_in_a_file_only_the_user_can_read(imgpipe, cloud):
    # WHEN alice signs in
    sign_in(imgpipe, "alice")
    # THEN her tokens are kept for this stack in a 0600 file in a 0700 folder
    path = cloud.session_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    kept = json.loads(path.read_text())
    assert kept["stack"] == STACK and kept["region"] == REGION and kept["endpoint"] is None
    assert kept["clientId"] == cloud.client_id and kept["username"] == "alice"
    assert kept["idToken"].count(".") == 2 and kept["refreshToken"]
    expires = datetime.fromisoformat(kept["expiresAt"].replace("Z", "+00:00"))
    assert 3000 < expires.timestamp() - time.time() <= 3600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_token_prints_the_users_id_token_and_nothing_else(imgpipe, cloud):
    sign_in(imgpipe, "alice")
    done = imgpipe("token")
    assert done.exit_code == 0 and done.stderr == ""
    token = done.stdout.removesuffix("\n")
    assert "\n" not in token and token == json.loads(cloud.session_file.read_text())["idToken"]
    claims = auth.claims(token)
    assert claims["sub"] == sub_of(cloud, "alice") and claims["token_use"] == "id"


def test_login_with_a_wrong_password_is_refused_on_one_line(imgpipe, cloud):
    add_user(imgpipe, "alice")
    done = imgpipe("login", "alice", "--password-stdin", input="Wrong-Password-123\n")
    assert done.exit_code == 1
    assert done.stderr == "imgpipe: NotAuthorizedException: Incorrect username or password.\n"
    assert not cloud.session_file.exists()


def test_login_with_a_temporary_password_says_how_to_set_a_permanent_one(imgpipe, cloud):
    cloud.cognito.admin_create_user(
        UserPoolId=cloud.pool, Username="bob", TemporaryPassword="Temporary-Pass-1", MessageAction="SUPPRESS"
    )
    done = imgpipe("login", "bob", "--password-stdin", input="Temporary-Pass-1\n")
    assert done.exit_code == 1 and done.stderr.count("\n") == 1
    assert "imgpipe users add bob --update" in done.stderr
    assert not cloud.session_file.exists()


def expire_soon(path: Path, seconds: float = 30) -> str:
    """Make the kept IdToken expire in ``seconds``; the token it held."""
    kept = json.loads(path.read_text())
    kept["expiresAt"] = datetime.fromtimestamp(time.time() + seconds, UTC).isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps(kept))
    return kept["idToken"]


def test_a_token_about_to_expire_is_refreshed_before_it_is_sent_and_kept(imgpipe, cloud, api):
    # GIVEN a kept IdToken with 30 s left
    sign_in(imgpipe, "alice")
    old = expire_soon(cloud.session_file)
    # WHEN the API is called
    done = imgpipe("--json", "ls")
    # THEN a new IdToken is sent, and kept (0600 still) with a new expiry
    assert done.exit_code == 0, done.output
    kept = json.loads(cloud.session_file.read_text())
    assert api.bearers == [kept["idToken"]] and kept["idToken"] != old
    assert auth.claims(kept["idToken"])["sub"] == sub_of(cloud, "alice")
    assert datetime.fromisoformat(kept["expiresAt"].replace("Z", "+00:00")).timestamp() > time.time() + 3000
    assert stat.S_IMODE(cloud.session_file.stat().st_mode) == 0o600
    # AND imgpipe token refreshes the same way
    expire_soon(cloud.session_file)
    printed = imgpipe("token").stdout.strip()
    assert printed == json.loads(cloud.session_file.read_text())["idToken"] != kept["idToken"]


def test_a_refused_token_is_refreshed_once_and_the_call_sent_again(imgpipe, cloud, api):
    sign_in(imgpipe, "alice")
    old = json.loads(cloud.session_file.read_text())["idToken"]
    api.refuse = {old}  # e.g. revoked, or the API's clock ahead of ours
    done = imgpipe("ls", "--json")
    assert done.exit_code == 0, done.output
    new = json.loads(cloud.session_file.read_text())["idToken"]
    assert api.bearers == [old, new] and new != old
    assert json.loads(done.stdout)["images"][0]["imageId"] == "img-1"


def test_a_token_refused_again_after_the_refresh_means_not_signed_in(imgpipe, cloud, api):
    sign_in(imgpipe, "alice")
    api.refuse_all = True
    done = imgpipe("ls")
    assert done.exit_code == 2 and len(api.calls) == 2  # refreshed once, retried once
    assert done.stderr.startswith("imgpipe: not signed in: run imgpipe login") and done.stderr.count("\n") == 1
    assert "INVALID_TOKEN" in done.stderr


def test_an_ended_sign_in_means_not_signed_in(imgpipe, cloud, api):
    # GIVEN a kept sign-in whose refresh token the user pool no longer takes (e.g. signed out everywhere)
    sign_in(imgpipe, "alice")
    access = cloud.cognito.initiate_auth(
        ClientId=cloud.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    kept = json.loads(cloud.session_file.read_text())
    cloud.cognito.global_sign_out(AccessToken=access)
    expire_soon(cloud.session_file)
    # WHEN a command needs a fresh token
    done = imgpipe("ls")
    # THEN not signed in, before any call to the API
    assert done.exit_code == 2 and api.calls == []
    assert (
        done.stderr.startswith("imgpipe: not signed in: run imgpipe login (")
        and "NotAuthorizedException" in done.stderr
    )
    assert kept["refreshToken"]


def test_logout_forgets_the_tokens(imgpipe, cloud, api):
    sign_in(imgpipe, "alice")
    done = imgpipe("logout")
    assert done.exit_code == 0 and "alice" in done.stdout
    assert not cloud.session_file.exists()
    for command in (["ls"], ["token"]):
        after = imgpipe(*command)
        assert (after.exit_code, after.stdout, after.stderr) == (2, "", NOT_SIGNED_IN)
    again = imgpipe("logout", "--json")  # nothing to forget: no error
    assert again.exit_code == 0 and json.loads(again.stdout)["signedOut"] is False
    assert api.calls == []


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["status", "img-1"],
        ["wait", "img-1"],
        ["upload", "/no/such/file.jpg"],  # refused for want of a token before the file is looked for
        ["get", "img-1", "-o", "out.webp"],
        ["rm", "img-1"],
        ["trace", "img-1"],
        ["reprocess", "img-1"],
        ["token"],
    ],
)
def test_without_a_token_a_command_of_the_api_fails_before_doing_anything_else(imgpipe, api, command):
    done = imgpipe(*command)
    assert (done.exit_code, done.stdout, done.stderr) == (2, "", NOT_SIGNED_IN)
    assert api.calls == [] and api.puts == []


def test_without_a_token_and_json_the_error_is_json(imgpipe, api):
    done = imgpipe("ls", "--json")
    assert done.exit_code == 2 and done.stderr == ""
    assert json.loads(done.stdout) == {
        "error": {"code": "NOT_SIGNED_IN", "message": "not signed in: run imgpipe login"}
    }


def test_commands_that_do_not_call_the_api_need_no_sign_in(imgpipe, api):
    done = imgpipe("web", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout) == {"webUrl": f"{api.url}/web/index.html"}


def test_imgpipe_token_takes_precedence_and_is_never_refreshed(imgpipe, cloud, api, monkeypatch):
    # GIVEN a kept sign-in, and IMGPIPE_TOKEN set
    sign_in(imgpipe, "alice")
    kept = cloud.session_file.read_text()
    monkeypatch.setenv("IMGPIPE_TOKEN", "token-of-another-issuer")
    # WHEN the API is called, or the token printed
    assert imgpipe("ls").exit_code == 0
    assert imgpipe("token").stdout == "token-of-another-issuer\n"
    # THEN IMGPIPE_TOKEN is sent; refused, it is not refreshed (the kept sign-in left alone)
    api.refuse = {"token-of-another-issuer"}
    refused = imgpipe("ls")
    assert refused.exit_code == 2 and "IMGPIPE_TOKEN" in refused.stderr
    assert api.bearers == ["token-of-another-issuer"] * 2
    assert cloud.session_file.read_text() == kept


def test_imgpipe_token_alone_is_a_sign_in(imgpipe, api, monkeypatch):
    monkeypatch.setenv("IMGPIPE_TOKEN", "token-of-another-issuer")
    done = imgpipe("--json", "ls")
    assert done.exit_code == 0 and api.bearers == ["token-of-another-issuer"]


# ---------------------------------------------------------------- --json after the command, uploads


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "beach.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 2048)
    return path


def test_json_works_after_the_command_as_well_as_before(imgpipe, api, monkeypatch, photo):
    monkeypatch.setenv("IMGPIPE_TOKEN", "token")
    for args in (["ls", "--json"], ["--json", "ls"], ["ls", "--limit", "5", "--json"]):
        done = imgpipe(*args)
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["images"][0]["filename"] == "beach.jpg"
    uploaded = imgpipe("upload", str(photo), "--json")
    assert uploaded.exit_code == 0, uploaded.output
    assert json.loads(uploaded.stdout)["images"] == [
        {"file": str(photo), "imageId": "img-2", "status": "UPLOADED", "error": None}
    ]
    human = imgpipe("ls")
    assert human.exit_code == 0 and not human.stdout.lstrip().startswith("{")  # --json of one run is not kept


def test_upload_sends_every_header_of_the_grant(imgpipe, api, monkeypatch, photo):
    monkeypatch.setenv("IMGPIPE_TOKEN", "token")
    done = imgpipe("upload", str(photo), "--json")
    assert done.exit_code == 0, done.output
    [put] = api.puts
    assert put["If-None-Match"] == "*" and put["Content-Type"] == "image/jpeg"
    assert put["Content-Length"] == str(photo.stat().st_size) and "Authorization" not in put  # presigned: no bearer


def test_an_upload_url_used_already_is_a_clear_error(imgpipe, api, monkeypatch, photo):
    monkeypatch.setenv("IMGPIPE_TOKEN", "token")
    api.put_answers = [412]
    done = imgpipe("upload", str(photo), "--json")
    assert done.exit_code == 1
    [result] = json.loads(done.stdout)["images"]
    assert result["status"] == "UPLOAD_FAILED"
    assert result["error"]["message"].startswith("the upload URL was already used (PreconditionFailed)")


def test_an_upload_url_refused_on_a_retry_was_used_by_the_earlier_attempt(imgpipe, api, monkeypatch, photo):
    # GIVEN storage that stored the first PUT but answered 500, then 412 to the retry of the single-use URL
    monkeypatch.setenv("IMGPIPE_TOKEN", "token")
    api.put_answers = [500, 412]
    done = imgpipe("upload", str(photo), "--json")
    # THEN the file is uploaded
    assert done.exit_code == 0, done.output
    assert len(api.puts) == 2 and json.loads(done.stdout)["images"][0]["status"] == "UPLOADED"
