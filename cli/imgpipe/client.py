"""Where the stack is and how to talk to it: its public HTTP API (requests, with the caller's bearer token) and the
AWS APIs (boto3) for what the HTTP API does not offer (starting a reprocess, the functions' logs, the user pool).
Nothing else: no back doors."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import boto3
import requests  # type: ignore[import-untyped]  # no stubs in the dev environment
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from image_pipeline import contracts

LOCAL_ENDPOINT = "http://localhost:4566"
TERMINAL = contracts.TERMINAL
RETRIED_STATUSES = (429, 500, 502, 503, 504)


class CliError(Exception):
    """What the user is told, on one line; the exit status is 2 (it could not be done) unless ``exit_code`` says 1
    (it was refused: a wrong password, a user that exists already)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


NOT_SIGNED_IN = "not signed in: run imgpipe login"


class NotSignedIn(CliError):
    """No bearer token, or none the API accepts (exit status 2)."""

    code = "NOT_SIGNED_IN"

    def __init__(self, message: str = NOT_SIGNED_IN) -> None:
        super().__init__(message, exit_code=2)


class Bearer(Protocol):
    """Where the API's bearer token comes from (imgpipe.auth: the kept sign-in, or IMGPIPE_TOKEN)."""

    def token(self) -> str:
        """A token to send now (one about to expire is refreshed first)."""
        ...

    def renew(self, refused: str) -> bool:
        """Get a new token after the API refused ``refused``; False if there is no way to."""
        ...

    def refused(self, reason: str) -> NotSignedIn:
        """The error to report when the API refuses the token even after renew()."""
        ...


@dataclass
class Target:
    """A deployed stack: on the local cloud (``endpoint``) or on AWS (``endpoint`` None, ``region``)."""

    stack: str
    region: str
    endpoint: str | None
    api_url: str | None = None
    api_key: str | None = None
    _outputs: dict[str, str] | None = field(default=None, repr=False)
    _session: boto3.Session | None = field(default=None, repr=False)

    @classmethod
    def choose(
        cls, stack: str, region: str | None, endpoint: str | None, api_url: str | None, api_key: str | None
    ) -> Target:
        """The local cloud unless a region is given (then AWS, with the usual AWS credentials), or an endpoint."""
        if endpoint is None and region is None:
            endpoint = os.environ.get("IMGPIPE_ENDPOINT_URL", LOCAL_ENDPOINT)
        return cls(stack, region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"), endpoint, api_url, api_key)

    def client(self, service: str, config: Config | None = None) -> Any:
        if self._session is None:
            if self.endpoint and not os.environ.get("AWS_ACCESS_KEY_ID"):
                self._session = boto3.Session(
                    aws_access_key_id="test", aws_secret_access_key="test", region_name=self.region
                )
            else:
                self._session = boto3.Session(region_name=self.region)
        config = config or Config(retries={"mode": "standard", "max_attempts": 5})
        session: Any = self._session  # boto3-stubs type client() per service name; ours is any
        return session.client(service, endpoint_url=self.endpoint, config=config)

    @property
    def outputs(self) -> dict[str, str]:
        if self._outputs is None:
            try:
                stack = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"][0]
            except ClientError as e:
                raise CliError(f"stack {self.stack} not found ({_where(self)}): {aws_message(e)}") from None
            except BotoCoreError as e:
                raise CliError(f"cannot reach {_where(self)}: {e}") from None
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return self._outputs

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise CliError(f"stack {self.stack} has no output {key} (deployed from an older template?)")
        return self.outputs[key]

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        if self.endpoint:  # LocalStack's path for a REST API's stage
            return f"{self.endpoint}/restapis/{self.output('RestApiId')}/prod/_user_request_"
        return self.output("ApiUrl").rstrip("/")

    @property
    def web_url(self) -> str:
        return f"{self.base_url}/web/index.html"

    @property
    def where(self) -> str:
        return _where(self)


def _where(target: Target) -> str:
    return f"local cloud at {target.endpoint}" if target.endpoint else f"AWS {target.region}"


def aws_message(e: ClientError) -> str:
    error = e.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}"


class ApiFailure(CliError):
    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status, self.code, self.body = status, code, body


def retrying(call: Callable[[], requests.Response], attempts: int = 6) -> requests.Response:
    """``call`` again after 429/5xx answers and connection errors, with exponential backoff and jitter (honouring
    Retry-After); the last answer otherwise."""
    for attempt in range(attempts):
        try:
            response = call()
        except requests.ConnectionError as e:
            if attempt == attempts - 1:
                raise CliError(f"cannot connect: {e.__class__.__name__}") from None
        else:
            if response.status_code not in RETRIED_STATUSES or attempt == attempts - 1:
                return response
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                time.sleep(int(retry_after))
                continue
        time.sleep(min(8.0, 0.25 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


class Api:
    """The stack's HTTP API, each request with ``Authorization: Bearer`` from ``bearer``: a token the API refuses
    (401) is renewed once and the request sent again; refused again, that is NotSignedIn."""

    def __init__(self, target: Target, bearer: Bearer | None = None) -> None:
        self.target, self.bearer = target, bearer
        self.http = requests.Session()
        key = target.api_key or os.environ.get("IMGPIPE_API_KEY")
        if key:
            self.http.headers["x-api-key"] = key

    def call(self, method: str, path: str, **kwargs) -> dict[str, Any] | None:
        url = f"{self.target.base_url}/{path.lstrip('/')}"
        headers = kwargs.pop("headers", None) or {}

        def send() -> tuple[requests.Response, str | None]:
            token = self.bearer.token() if self.bearer else None
            sent = {**headers, **({"Authorization": f"Bearer {token}"} if token else {})}
            return retrying(lambda: self.http.request(method, url, timeout=30, headers=sent, **kwargs)), token

        response, token = send()
        if response.status_code == 401 and self.bearer and token and self.bearer.renew(token):
            response, token = send()
        if response.status_code == 204:
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        body: dict[str, Any] = answer if isinstance(answer, dict) else {}
        if not response.ok:
            error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
            code = str(error.get("code") or response.status_code)
            message = str(error.get("message") or body.get("message") or "")  # API Gateway's own: {"message": ...}
            if response.status_code == 401 and self.bearer:
                raise self.bearer.refused(f"{code}: {message}" if message else code)
            raise ApiFailure(response.status_code, code, message, body)
        return body

    def image(self, image_id: str) -> dict[str, Any]:
        return self.call("GET", f"images/{image_id}") or {}

    def images(self, status: str | None = None, limit: int = 20) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            params = {"limit": str(min(limit, 100))}
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            page = self.call("GET", "images", params=params) or {}
            yield from page.get("images", [])
            cursor = page.get("cursor")
            if not cursor:
                return

    def grant(self, path: Path, content_type: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"filename": path.name[:255], "size": path.stat().st_size}
        if content_type:
            body["contentType"] = content_type
        return self.call("POST", "upload", json=body) or {}

    def put(self, grant: dict[str, Any], path: Path, progress: Callable[[int], None]) -> None:
        """PUT the file to the grant's presigned URL with every header of the grant (they are signed, e.g.
        ``If-None-Match: *`` for a single-use URL) but Content-Length, which requests sets from the body."""
        headers = {k: v for k, v in grant.get("headers", {}).items() if k.lower() != "content-length"}
        attempts = 0

        def send() -> requests.Response:
            nonlocal attempts
            attempts += 1
            with path.open("rb") as f:
                return requests.put(
                    grant["uploadUrl"], data=_Counting(f, path.stat().st_size, progress), headers=headers, timeout=300
                )

        response = retrying(send)
        if response.status_code == 412 and attempts > 1:
            # single-use URL (If-None-Match: *) refused on a retry: the earlier attempt, whose answer was lost or a 5xx,
            # stored the file (nobody else holds the URL)
            return
        if response.status_code == 412:
            raise CliError(
                f"the upload URL was already used ({_s3_code(response) or 'HTTP 412'}): upload {path.name} again"
            )
        if not response.ok:
            raise CliError(
                f"storage refused the upload of {path.name}: HTTP {response.status_code} {_s3_code(response)}"
            )

    def wait(
        self,
        image_id: str,
        timeout: float,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        execution: str | None = None,
    ) -> dict:
        """Poll the image until it is terminal (and, given an ``execution``'s name, recorded by that execution),
        backing off from 0.5 s to 5 s; its last record."""
        delay, deadline, last = 0.5, time.monotonic() + timeout, None
        while True:
            record = self.image(image_id)
            if on_change and (last is None or record["status"] != last):
                on_change(record)
            last = record["status"]
            done = last in TERMINAL and execution in (None, record.get("execution"))
            if done or time.monotonic() > deadline:
                return record
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)


class _Counting:
    """A file for requests' body: its length is known (S3 needs Content-Length), and each read reports progress."""

    def __init__(self, f: BinaryIO, size: int, progress: Callable[[int], None]) -> None:
        self.f, self.size, self.progress = f, size, progress

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n if n and n > 0 else 64 * 1024)
        if chunk:
            self.progress(len(chunk))
        return chunk


def _s3_code(response: requests.Response) -> str:
    text = response.text
    start = text.find("<Code>")
    return text[start + 6 : text.find("</Code>")] if start >= 0 else ""


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
