"""Renditions under immutable, versioned keys: a reprocess publishes a new version, downloads never fail while it
switches, none returns the previous version after it, and nothing staged outlives its execution."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import requests

from tests import images

from .conftest import expected_renditions, stored_renditions, wait_executions_done


def version_of(key_or_url: str) -> str:
    """The version a rendition's key (or a URL of it) names: renditions/{id}/{version}/{size}.{ext}."""
    return re.search(r"renditions/[0-9a-f-]{36}/([0-9a-f]{16})/", key_or_url)[1]


def staged(s3, stack, image_id: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=stack.work_bucket, Prefix=f"staging/{image_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_downloads_never_fail_during_a_reprocess_and_none_is_of_the_previous_version_after_it(admin, aws, stack):
    s3, sfn = aws("s3"), aws("stepfunctions")
    image_id = admin.upload(images.jpeg(2400, 1600), "image/jpeg")
    first = admin.wait(image_id)
    assert first["status"] == "PROCESSED"
    wait_executions_done(sfn, stack.state_machine)
    old = version_of(first["processed"]["key"])
    assert staged(s3, stack, image_id) == []

    # WHEN it is reprocessed while a client keeps asking for a download URL and fetching it
    seen: list[tuple[float, int, int, str]] = []  # (when, API status, fetch status, version)
    stop = threading.Event()

    def download() -> None:
        while not stop.is_set():
            asked = admin.download(image_id)
            url = asked.json().get("downloadUrl", "") if asked.status_code == 200 else ""
            fetched = requests.get(url).status_code if url else 0
            seen.append((time.monotonic(), asked.status_code, fetched, version_of(url) if url else ""))

    watcher = threading.Thread(target=download)
    watcher.start()
    try:
        time.sleep(0.5)
        head = s3.head_object(Bucket=stack.original_bucket, Key=first["original"]["key"])
        event = {
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {
                "bucket": {"name": stack.original_bucket},
                "object": {"key": first["original"]["key"], "etag": head["ETag"].strip('"')},
            },
            "reprocess": True,
        }
        arn = sfn.start_execution(stateMachineArn=stack.state_machine, input=json.dumps(event))["executionArn"]
        wait_executions_done(sfn, stack.state_machine)
        switched = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        watcher.join()

    # THEN every download worked throughout; once the execution ended, every one named the new version
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    again = admin.wait(image_id)
    new = version_of(again["processed"]["key"])
    assert new != old
    assert len(seen) > 10 and all(s[1:3] == (200, 200) for s in seen), [s for s in seen if s[1:3] != (200, 200)]
    assert {s[3] for s in seen if s[0] > switched} == {new}
    assert {s[3] for s in seen} == {old, new}
    # the previous version stays for URLs handed out before the switch; a marker names it for the reconciler
    assert stored_renditions(s3, stack, image_id) == expected_renditions(again) | expected_renditions(first)
    markers = s3.list_objects_v2(Bucket=stack.work_bucket, Prefix="retired/")["Contents"]
    [marker] = [m for m in markers if f"/{image_id}/" in m["Key"]]
    due = int(marker["Key"].split("/")[1])
    assert 0 < due - time.time() <= 300 + 60  # UrlExpirySeconds + a minute
    named = json.loads(s3.get_object(Bucket=stack.work_bucket, Key=marker["Key"])["Body"].read())
    assert set(named["keys"]) == expected_renditions(first)
    assert staged(s3, stack, image_id) == []


@pytest.mark.parametrize("how", ["error", "killed"])
def test_nothing_staged_outlives_an_execution_that_failed_after_resize(client, aws, stack, faults, how):
    # GIVEN Store fails for good after Resize staged the set: S3 refuses every rendition whatever the retries, or
    # the function's worker is killed mid-invocation on every attempt (as a timed-out one is: the task's retries of
    # Sandbox.Timedout, Runtime.ExitError and States.Timeout are one budget of three attempts)
    if how == "error":
        faults(service="s3", operation="PutObject", resource=stack.processed_bucket, error="InternalError")
    else:
        faults(service="lambda", operation="Invoke", resource="StoreFunction", action="crash", count=3)
    image_id = client.upload(images.jpeg(1200, 900), "image/jpeg")
    record = client.wait(image_id, timeout=180)
    wait_executions_done(aws("stepfunctions"), stack.state_machine, timeout=60)

    # THEN the image is FAILED, and neither its staged set nor anything of its version is left
    code = {"error": "SERVICE_UNAVAILABLE", "killed": "PROCESSING_FAILED"}[how]
    assert record["status"] == "FAILED" and record["error"]["code"] == code, record
    s3 = aws("s3")
    assert staged(s3, stack, image_id) == []
    assert stored_renditions(s3, stack, image_id) == set()
