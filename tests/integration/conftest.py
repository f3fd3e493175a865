"""The deployed stack on the local cloud, and a client that uses it the way users do (HTTP API + presigned URLs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests import users
from tests.conftest import ENDPOINT, STATE_DIR

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("PROCESSED", "REJECTED", "FAILED")
# the states an upload's execution passes on success, in order: the design's four steps, the duplicate check and the
# completion event (test_surfaces.py and test_express.py read them from either history)
SUCCESS_STATES = [
    "Validate image",
    "Is it a duplicate?",
    "Resize image",
    "Store renditions",
    "Mark processed",
    "Publish processed",
]


@dataclass
class Stack:
    api: str
    original_bucket: str
    processed_bucket: str
    table: str
    state_machine: str
    api_key: str | None = None
    outputs: dict = field(default_factory=dict)  # every output of the stack (EventBusName, BackfillStateMachineArn…)

    @property
    def work_bucket(self) -> str:
        """The private work bucket, named like the others (the local cloud's stack updates add no new outputs)."""
        return self.original_bucket.replace("-original-", "-work-", 1)


def deploy(name: str, *overrides: str) -> Stack:
    """sam build + deploy of template.yaml as stack ``name`` (with Param=Value overrides) on the local cloud; the
    parameters not given take the template's defaults (DEPLOY_DEFAULTS), not what the stack had: the tests test the
    defaults, whatever a benchmark left deployed (`make bench-load RENDITIONS=one`)."""
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy_local.sh"), name, *overrides],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEPLOY_DEFAULTS": "1"},
    )
    out = json.loads((STATE_DIR / f"stack-{name}.json").read_text())
    return Stack(
        out["LocalApiUrl"],
        out["OriginalBucketName"],
        out["ProcessedBucketName"],
        out["ImageTableName"],
        out["ImagePipelineStateMachineArn"],
        out.get("ApiKey"),
        out,
    )


def reprocess_all(name: str) -> subprocess.CompletedProcess:
    """The backfill of stack ``name`` as `make reprocess-all STACK=name` runs it (scripts/reprocess_all.py), without
    make's setup step: the test run has its environments already."""
    script = ROOT / "scripts" / "reprocess_all.py"
    return subprocess.run(
        [str(ROOT / ".venv" / "dev" / "bin" / "python"), str(script), "--stack", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="session")
def stack(localcloud) -> Stack:
    return deploy("image-pipeline")


RETRY_STATUSES = (429, 500, 502, 503, 504)


def new_user(stack: Stack, name: str = "user", admin: bool = False) -> tuple[str, str]:
    """A new user of the stack's pool: (username, password)."""
    return users.new_user(stack.outputs, ENDPOINT, name, admin)


def sign_in(stack: Stack, username: str, password: str) -> str:
    """An ID token of the user, through the app client as the web page and imgpipe sign in (USER_PASSWORD_AUTH)."""
    return users.sign_in(stack.outputs, ENDPOINT, username, password)


def token_of_new_user(stack: Stack, name: str = "user", admin: bool = False) -> str:
    return users.token_of_new_user(stack.outputs, ENDPOINT, name, admin)


class Client:
    """What a user does: POST /upload, PUT to the URL, poll GET /images/{id}, GET /download; signed in as a user of
    its own (a new one unless ``token`` is given).

    Like a well-behaved client it retries throttling and 5xx answers (with backoff), so it keeps working
    while faults are injected into the services behind the API.
    """

    def __init__(self, stack: Stack, token: str | None = None) -> None:
        self.stack = stack
        self.token = token or token_of_new_user(stack)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        if stack.api_key:
            self.http.headers["x-api-key"] = stack.api_key

    def _retrying(self, send) -> requests.Response:
        for attempt in range(8):
            resp = send()
            if resp.status_code not in RETRY_STATUSES:
                return resp
            time.sleep(min(0.1 * 2**attempt, 2.0))
        return resp

    def request_upload(self, **body) -> requests.Response:
        return self.http.post(f"{self.stack.api}/upload", json=body or None)

    def upload(self, data: bytes, content_type: str | None = None) -> str:
        body: dict = {"filename": "upload.bin", "size": len(data)}
        if content_type:
            body["contentType"] = content_type
        resp = self._retrying(lambda: self.request_upload(**body))
        assert resp.status_code == 201, resp.text
        grant = resp.json()
        put = self._retrying(lambda: requests.put(grant["uploadUrl"], data=data, headers=grant["headers"]))
        assert put.status_code == 200, put.text
        return grant["imageId"]

    def image(self, image_id: str) -> requests.Response:
        return self.http.get(f"{self.stack.api}/images/{image_id}")

    def wait(self, image_id: str, timeout: float = 60, poll: float = 0.2, execution: str | None = None) -> dict:
        """The image once terminal (and, given an ``execution``'s name, recorded by that execution)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.image(image_id)
            body = resp.json() if resp.status_code == 200 else {}
            if body.get("status") in TERMINAL and execution in (None, body.get("execution")):
                return body
            time.sleep(poll)
        raise AssertionError(f"image {image_id} did not finish within {timeout}s: {body}")

    def download(self, image_id: str) -> requests.Response:
        return self.http.get(f"{self.stack.api}/download", params={"imageId": image_id})


@pytest.fixture(scope="session")
def client(stack) -> Client:
    return Client(stack)


@pytest.fixture(scope="session")
def admin(stack) -> Client:
    """A client signed in as an admin: it sees every owner's images, and those without one (put in the bucket by
    an operator, or made before images had owners)."""
    return Client(stack, token_of_new_user(stack, "admin", admin=True))


def ended_trace(client, stack, image_id: str, timeout: float = 60) -> dict:
    """GET /images/{id}/trace once every execution in it has ended (the record is written before the last states)."""
    deadline = time.monotonic() + timeout
    while True:
        trace = client.http.get(f"{stack.api}/images/{image_id}/trace").json()
        if trace["executions"] and all(e["status"] != "RUNNING" for e in trace["executions"]):
            return trace
        assert time.monotonic() < deadline, trace
        time.sleep(0.3)


def described_executions(sfn, state_machine: str) -> list[dict]:
    """Every execution of the state machine, described (newest first)."""
    return [
        sfn.describe_execution(executionArn=ex["executionArn"])
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine)
        for ex in page["executions"]
    ]


def executions_for(sfn, state_machine: str, image_key: str, described: list[dict] | None = None) -> list[dict]:
    """Executions whose input names this object key (newest first); DESCRIBED, if given, saves describing them all
    again for each image of a batch."""
    if described is None:
        described = described_executions(sfn, state_machine)
    return [ex for ex in described if image_key in ex.get("input", "")]


def retried_errors(sfn, stack: Stack, image_id: str, described: list[dict] | None = None) -> list[str]:
    """The error of every task that failed or timed out in the image's executions, retried ones included."""
    errors = []
    for ex in executions_for(sfn, stack.state_machine, f"uploads/{image_id}", described):
        for event in sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=1000)["events"]:
            if event["type"] == "TaskFailed":
                errors.append(event["taskFailedEventDetails"]["error"])
            elif event["type"] == "TaskTimedOut":
                errors.append(event["taskTimedOutEventDetails"]["error"])
    return errors


def object_created_event(s3, stack: Stack, image_id: str) -> dict:
    """The S3 "Object Created" event of an uploaded image's original, as EventBridge delivers it (to send it again)."""
    from tests.conftest import load_event

    head = s3.head_object(Bucket=stack.original_bucket, Key=f"uploads/{image_id}")
    event = load_event("image_pipeline_s3_object_created")
    event["detail"]["bucket"]["name"] = stack.original_bucket
    event["detail"]["object"].update(key=f"uploads/{image_id}", etag=head["ETag"].strip('"'))
    return event


@contextmanager
def reconciler_paused(aws, stack: Stack) -> Iterator[None]:
    """The stack's scheduled reconciler does not run inside the block (its rule disabled): a test that invokes it, or
    counts requests, is not raced by the run every fifth minute of the clock brings."""
    events = aws("events")
    function = aws("lambda").get_function(FunctionName=stack.outputs["ReconcilerFunctionName"])["Configuration"]
    rules = events.list_rule_names_by_target(TargetArn=function["FunctionArn"])["RuleNames"]
    assert rules, "the reconciler has no schedule"
    for rule in rules:
        events.disable_rule(Name=rule)
    try:
        yield
    finally:
        for rule in rules:
            events.enable_rule(Name=rule)


def wait_executions_done(sfn, state_machine: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sfn.list_executions(stateMachineArn=state_machine, statusFilter="RUNNING")["executions"]:
            return
        time.sleep(0.2)
    raise AssertionError("executions still running")


EXTENSIONS = {"avif": "avif", "webp": "webp", "jpeg": "jpg", "png": "png"}


def stored_renditions(s3, stack: Stack, image_id: str) -> set[str]:
    """The keys under the image's rendition prefix in the processed bucket."""
    listed = s3.list_objects_v2(Bucket=stack.processed_bucket, Prefix=f"renditions/{image_id}")
    return {o["Key"] for o in listed.get("Contents", [])}


def expected_renditions(record: dict) -> set[str]:
    """The keys a PROCESSED record's renditions live under: the set's and the default's (which may be one of them),
    all of the record's version (the one its default rendition's key names)."""
    image_id = record["imageId"]
    version = record["processed"]["key"].split("/")[2]  # renditions/{id}/{version}/{size}.{ext}
    keys = {f"renditions/{image_id}/{version}/{r['size']}.{EXTENSIONS[r['format']]}" for r in record["renditions"]}
    keys |= {
        f"renditions/{image_id}/{version}/{name}.{EXTENSIONS[r['format']]}"
        for name, renditions in (record.get("profiles") or {}).items()
        for r in renditions
    }
    return keys | {record["processed"]["key"]}


@pytest.fixture
def faults(localcloud):
    """Add fault rules over the local cloud's HTTP API; all are removed afterwards."""
    url = f"{localcloud}/_localcloud/faults"

    def add(**rule) -> dict:
        resp = requests.post(url, json=rule)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def fired() -> dict[str, int]:
        return {r["id"]: r["fired"] for r in requests.get(url).json()["faults"]}

    add.fired = fired
    yield add
    requests.delete(url)


@pytest.fixture(scope="module")
def bus_events(stack, aws):
    """Every event on the stack's bus, through a rule into an SQS queue made for this test module."""
    sqs, events = aws("sqs"), aws("events")
    queue = sqs.create_queue(QueueName="completion-events-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.outputs["EventBusName"]
    events.put_rule(
        Name="completion-events-test", EventBusName=bus, EventPattern=json.dumps({"source": ["image-pipeline"]})
    )
    events.put_targets(Rule="completion-events-test", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    seen: list[dict] = []

    def collect(image_ids: set[str], settle: float = 3.0) -> list[dict]:
        """The events of these images: read until one event per image has come, then ``settle`` s more."""
        deadline, quiet_until = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            mine = [e for e in seen if e["detail"]["imageId"] in image_ids]
            if quiet_until is None and {e["detail"]["imageId"] for e in mine} == image_ids:
                quiet_until = time.monotonic() + settle
            if quiet_until is not None and time.monotonic() > quiet_until:
                return mine
        raise AssertionError(f"no event for {image_ids - {e['detail']['imageId'] for e in seen}}")

    yield collect
    events.remove_targets(Rule="completion-events-test", EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name="completion-events-test", EventBusName=bus)
    sqs.delete_queue(QueueUrl=queue)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the Debian package), driven by Playwright: the web page's tests."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/setup.sh installs the Debian package"
    with sync_playwright() as p:
        # --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox cannot start
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()
