"""Signing in to the stack's Cognito user pool. InitiateAuth (USER_PASSWORD_AUTH) gives the IdToken, the bearer token
the API wants, and a RefreshToken; both are kept per target (stack, and region or local endpoint) in the user's config
directory, a 0600 file in a 0700 directory, and the IdToken is refreshed (REFRESH_TOKEN_AUTH) when less than a minute
of it is left or the API refuses it. IMGPIPE_TOKEN, a bearer token from any issuer the stack trusts, takes precedence
and is never refreshed."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from botocore.config import Config
from botocore.exceptions import ClientError

from imgpipe.client import NOT_SIGNED_IN, Bearer, CliError, NotSignedIn, Target, aws_message

TOKEN_ENV = "IMGPIPE_TOKEN"
REFRESH_MARGIN = 60.0  # seconds: a kept token with less left is refreshed before it is sent
# InitiateAuth's answers that mean "not this user, not with this password": refused (exit status 1), not an error
REFUSED = {
    "NotAuthorizedException",
    "UserNotFoundException",
    "UserNotConfirmedException",
    "PasswordResetRequiredException",
}


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def claims(token: str) -> dict[str, Any]:
    """The JWT's claims, unverified: for what imgpipe shows (the user name), never for a decision of trust."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- the kept sign-in


@dataclass(frozen=True)
class Session:
    """One user's sign-in to one target, as kept on disk."""

    stack: str
    region: str
    endpoint: str | None  # the local cloud's; None on AWS
    client_id: str
    username: str
    id_token: str
    refresh_token: str
    expires_at: float  # the IdToken's, seconds since the epoch (by this machine's clock)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "endpoint": self.endpoint,
            "clientId": self.client_id,
            "username": self.username,
            "expiresAt": _iso(self.expires_at),
            "idToken": self.id_token,
            "refreshToken": self.refresh_token,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        expires = datetime.fromisoformat(str(data["expiresAt"]).replace("Z", "+00:00")).timestamp()
        return cls(
            str(data["stack"]),
            str(data["region"]),
            data.get("endpoint"),
            str(data["clientId"]),
            str(data["username"]),
            str(data["idToken"]),
            str(data["refreshToken"]),
            expires,
        )

    def belongs_to(self, target: Target) -> bool:
        return (self.stack, self.region, self.endpoint) == (target.stack, target.region, target.endpoint)


def config_dir() -> Path:
    """imgpipe's folder in the user's config directory (~/.config/imgpipe on Linux, after XDG_CONFIG_HOME)."""
    return Path(typer.get_app_dir("imgpipe"))


def session_path(target: Target) -> Path:
    """The target's file: sessions/<stack>@<region>.json on AWS, sessions/<stack>@<host_port>-<region>.json on the
    local cloud."""
    where = target.region
    if target.endpoint:
        where = f"{urlsplit(target.endpoint).netloc or target.endpoint}-{target.region}"
    return config_dir() / "sessions" / (re.sub(r"[^A-Za-z0-9@._-]+", "_", f"{target.stack}@{where}") + ".json")


def load(target: Target) -> Session | None:
    """The target's kept sign-in; None if there is none (or none readable: then imgpipe login writes a new one)."""
    try:
        data = json.loads(session_path(target).read_text(encoding="utf-8"))
        session = Session.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return session if session.belongs_to(target) else None


def save(session: Session, target: Target) -> Path:
    """Write the sign-in, replacing the file whole: a new file created 0600 (never readable by others, even while it
    is written) renamed over the old one, in 0700 folders."""
    path = session_path(target)
    for folder in (path.parent.parent, path.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # a leftover of a killed run: O_EXCL below would refuse it
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(session.to_json(), f, indent=2)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path


def _authenticated(target: Target, client_id: str, username: str, result: dict[str, Any], old: str = "") -> Session:
    return Session(
        target.stack,
        target.region,
        target.endpoint,
        client_id,
        username,
        result["IdToken"],
        result.get("RefreshToken") or old,  # REFRESH_TOKEN_AUTH returns one only if the pool rotates them
        time.time() + float(result.get("ExpiresIn", 3600)),
    )


def login(target: Target, username: str, password: str, client_id: str) -> tuple[Session, Path]:
    """Sign in with a password and keep the tokens; CliError (exit status 1) if the user pool refuses."""
    cognito = target.client("cognito-idp")
    try:
        answer = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as e:
        if error_code(e) in REFUSED:
            raise CliError(aws_message(e), exit_code=1) from None
        raise
    challenge = answer.get("ChallengeName")
    if challenge == "NEW_PASSWORD_REQUIRED":
        raise CliError(
            f"{username} has a temporary password: an operator sets a permanent one with "
            f"imgpipe users add {username} --update",
            exit_code=1,
        )
    if challenge:
        raise CliError(f"the user pool asks for {challenge}, which imgpipe login does not answer", exit_code=1)
    result = answer["AuthenticationResult"]
    name = str(claims(result["IdToken"]).get("cognito:username") or username)
    session = _authenticated(target, client_id, name, result)
    return session, save(session, target)


def logout(target: Target) -> tuple[Session | None, bool]:
    """Forget the target's kept sign-in; then revoke its refresh token if the user pool lets us (RevokeToken; the
    local cloud does not implement it). The kept sign-in, and whether it was revoked."""
    session = load(target)
    session_path(target).unlink(missing_ok=True)
    if session is None:
        return None, False
    quick = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 1})
    try:
        cognito = target.client("cognito-idp", quick)
        cognito.revoke_token(Token=session.refresh_token, ClientId=session.client_id)
    except Exception:  # noqa: BLE001 - best effort: the tokens are forgotten already, whatever the user pool says
        return session, False
    return session, True


# ---------------------------------------------------------------- bearer tokens for the API


class KeptToken:
    """The kept sign-in's IdToken: refreshed when less than REFRESH_MARGIN of it is left, or once the API refused it;
    each refresh rewrites the file. Thread-safe (uploads run in threads): one refresh at a time."""

    def __init__(self, target: Target, session: Session) -> None:
        self.target, self.session = target, session
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self.session.expires_at - time.time() < REFRESH_MARGIN:
                self._refresh()
            return self.session.id_token

    def renew(self, refused: str) -> bool:
        with self._lock:
            if self.session.id_token == refused:  # else another thread has renewed it meanwhile
                self._refresh()
        return True

    def refused(self, reason: str) -> NotSignedIn:
        return NotSignedIn(f"{NOT_SIGNED_IN} (the API refused the token: {reason})")

    def _refresh(self) -> None:
        try:
            answer = self.target.client("cognito-idp").initiate_auth(
                ClientId=self.session.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": self.session.refresh_token},
            )
        except ClientError as e:
            if error_code(e) in REFUSED | {"ResourceNotFoundException"}:  # expired, revoked, or another user pool
                raise NotSignedIn(f"{NOT_SIGNED_IN} (the sign-in has ended: {aws_message(e)})") from None
            raise
        session = self.session
        self.session = _authenticated(
            self.target, session.client_id, session.username, answer["AuthenticationResult"], session.refresh_token
        )
        save(self.session, self.target)


class EnvToken:
    """IMGPIPE_TOKEN: sent as it is, never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def renew(self, refused: str) -> bool:
        return False

    def refused(self, reason: str) -> NotSignedIn:
        return NotSignedIn(
            f"not signed in: the API refused {TOKEN_ENV} ({reason}): set a valid one, or unset it and run imgpipe login"
        )


def bearer(target: Target) -> Bearer:
    """IMGPIPE_TOKEN if it is set, else the target's kept sign-in; NotSignedIn if neither (no network asked)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return EnvToken(token.removeprefix("Bearer ").strip())
    session = load(target)
    if session is None:
        raise NotSignedIn()
    return KeptToken(target, session)
