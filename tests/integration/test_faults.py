"""Faults injected into the local cloud: every upload still ends PROCESSED, or FAILED with its error; none stuck,
none processed twice."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from botocore.config import Config

from tests import images

from .conftest import (
    described_executions,
    executions_for,
    expected_renditions,
    retried_errors,
    stored_renditions,
    wait_executions_done,
)


def renditions_of(s3, stack, image_id: str) -> int:
    return len(stored_renditions(s3, stack, image_id))


def traced_errors(client, image_id: str, timeout: float = 60) -> list[str]:
    """Every error of every state (retried ones too) in the image's executions, as GET /images/{id}/trace shows them
    once they have ended: the same for a Standard and an Express workflow (test_express.py runs the tests using it)."""
    deadline = time.monotonic() + timeout
    while True:
        trace = client.http.get(f"{client.stack.api}/images/{image_id}/trace").json()
        executions = trace.get("executions") or []
        if executions and all(e["status"] != "RUNNING" for e in executions):
            return [error for e in executions for state in e["states"] for error in state.get("errors") or []]
        assert time.monotonic() < deadline, trace
        time.sleep(0.3)


def failed_events(sfn, stack, image_id: str) -> list[tuple]:
    """What went wrong in the image's executions: each failure event's type, error and the start of its cause."""
    found = []
    for ex in executions_for(sfn, stack.state_machine, f"uploads/{image_id}"):
        for event in sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=1000)["events"]:
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and "error" in v), None)
            if details:
                found.append((ex["name"][:8], event["type"], details.get("error"), str(details.get("cause"))[:300]))
    return found


def wait_or_explain(client, sfn, stack, image_id: str, timeout: float, poll: float) -> dict:
    """client.wait, and when the image is still in flight at the timeout, how each of its executions stands and its
    failure events: the record alone says PENDING or PROCESSING, not why (e.g. an execution that gave up before its
    claim leaves the image PENDING for the reconciler)."""
    try:
        return client.wait(image_id, timeout=timeout, poll=poll)
    except AssertionError as e:
        executions = executions_for(sfn, stack.state_machine, f"uploads/{image_id}")
        statuses = [(ex["name"][:8], ex["status"]) for ex in executions]
        raise AssertionError(f"{e}\nexecutions: {statuses}\n{failed_events(sfn, stack, image_id)}") from None


def test_rules_are_validated_and_listed(localcloud):
    url = f"{localcloud}/_localcloud/faults"
    assert requests.post(url, json={"operation": "GetObject", "error": "SlowDown"}).status_code == 400
    assert requests.post(url, json={"service": "s3"}).status_code == 400
    rule = requests.post(url, json={"service": "s3", "operation": "GetObject", "error": "SlowDown", "count": 1}).json()
    assert rule["id"] in {r["id"] for r in requests.get(url).json()["faults"]}
    assert requests.delete(f"{url}/{rule['id']}").status_code == 204
    assert rule["id"] not in {r["id"] for r in requests.get(url).json()["faults"]}


def test_injected_error_is_the_real_aws_error(aws, faults):
    s3 = aws("s3")
    s3.create_bucket(Bucket="fault-shape-test")
    s3.put_object(Bucket="fault-shape-test", Key="k", Body=b"x")
    faults(service="s3", operation="GetObject", resource="fault-shape-test", error="SlowDown", count=1)
    raw = requests.get(s3.generate_presigned_url("get_object", Params={"Bucket": "fault-shape-test", "Key": "k"}))
    assert raw.status_code == 503 and b"<Code>SlowDown</Code>" in raw.content
    faults(service="dynamodb", operation="DescribeTable", error="ProvisionedThroughputExceededException", count=1)
    ddb = aws("dynamodb", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ddb.exceptions.ProvisionedThroughputExceededException):
        ddb.describe_table(TableName="anything")
    s3.delete_object(Bucket="fault-shape-test", Key="k")
    s3.delete_bucket(Bucket="fault-shape-test")


def test_thirty_percent_transient_faults_still_process_every_upload(client, aws, stack, faults):
    # GIVEN 30% transient faults on the calls the pipeline depends on
    rules = [
        faults(service="s3", operation="GetObject", error="SlowDown", probability=0.3),
        # the pipeline's writes (staging and publishing), not the test's own upload PUT: that is a plain HTTP request
        # retried 8 times by the test client, and 30% on it failed the test in 0.3^8 x 50 = 0.3% of runs
        faults(service="s3", operation="PutObject", resource=stack.work_bucket, error="InternalError", probability=0.3),
        faults(
            service="s3", operation="PutObject", resource=stack.processed_bucket, error="InternalError", probability=0.3
        ),
        faults(
            service="dynamodb", operation="UpdateItem", error="ProvisionedThroughputExceededException", probability=0.3
        ),
        faults(
            service="dynamodb", operation="PutItem", error="ProvisionedThroughputExceededException", probability=0.3
        ),
        faults(service="lambda", operation="Invoke", error="TooManyRequestsException", probability=0.3),
    ]
    data = images.jpeg(1600, 1200)
    s3, sfn = aws("s3"), aws("stepfunctions")

    # WHEN 50 images are uploaded
    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(lambda _: client.upload(data, "image/jpeg"), range(50)))
        # (each status poll is a Lambda invocation of its own, queued with the pipeline's for the local cloud's few run
        # slots: polled every 0.2 s by 10 waiters they were about a quarter of the queue, which waited past its 10 s bound
        # and throttled the pipeline's own invocations on top of the injected throttles)
        records = list(pool.map(lambda i: wait_or_explain(client, sfn, stack, i, timeout=300, poll=1.0), ids))

    # THEN all end PROCESSED, each with exactly one rendition, after retries the histories show
    fired = faults.fired()
    assert all(fired[r["id"]] > 0 for r in rules), fired
    not_processed = [(r["imageId"], r["status"], r["error"]) for r in records if r["status"] != "PROCESSED"]
    assert not not_processed, "\n".join(str((*n, failed_events(sfn, stack, n[0]))) for n in not_processed)
    wait_executions_done(sfn, stack.state_machine, timeout=120)
    assert all(stored_renditions(s3, stack, r["imageId"]) == expected_renditions(r) for r in records)
    described = described_executions(sfn, stack.state_machine)
    retried = [e for i in ids for e in retried_errors(sfn, stack, i, described)]
    assert "Lambda.TooManyRequestsException" in retried


def test_permanent_fault_ends_failed_with_the_error_recorded(client, aws, stack, faults):
    # GIVEN the original bucket cannot be read, whatever the retries
    faults(service="s3", operation="GetObject", resource=stack.original_bucket, error="SlowDown")

    image_id = client.upload(images.jpeg(800, 600), "image/jpeg")
    record = client.wait(image_id, timeout=180)

    # THEN it ends FAILED (not stuck, not REJECTED) after the retries ran out, with a public-safe error: a fixed
    # code and message, none of the SDK's text (the bucket, the operation); that goes to the function's log
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == "SERVICE_UNAVAILABLE" and "reprocess" in record["error"]["message"]
    for leaked in ("SlowDown", stack.original_bucket, "GetObject", "arn:"):
        assert leaked not in json.dumps(record), leaked
    assert renditions_of(aws("s3"), stack, image_id) == 0
    assert traced_errors(client, image_id).count("TransientAWSError") >= 2
    assert client.download(image_id).status_code == 422


def test_original_replaced_while_processing_fails_with_a_named_error(client, aws, stack, faults):
    # GIVEN resize is held back 3 s, and the original is overwritten once validate has run: not through the upload
    # URL (single use: S3 refuses a second PUT), but by someone with write access to the bucket
    rule = faults(service="lambda", operation="Invoke", resource="ResizeFunction", latency_ms=3_000, count=1)
    first, second = images.jpeg(1200, 800), images.jpeg(800, 800)
    grant = client.request_upload(size=len(first)).json()
    assert requests.put(grant["uploadUrl"], data=first, headers=grant["headers"]).status_code == 200
    deadline = time.monotonic() + 30
    while not faults.fired().get(rule["id"]):  # validated: resize has been invoked and is being held back
        assert time.monotonic() < deadline, "validate did not run"
        time.sleep(0.05)
    again = requests.put(grant["uploadUrl"], data=first, headers=grant["headers"])
    assert again.status_code == 412  # the URL was used
    aws("s3").put_object(Bucket=stack.original_bucket, Key=f"uploads/{grant['imageId']}", Body=second)

    # THEN what was validated is no longer there: FAILED with a clear code, nothing written, download refused
    record = client.wait(grant["imageId"], timeout=60)
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == "ORIGINAL_REPLACED" and "new URL" in record["error"]["message"]
    assert renditions_of(aws("s3"), stack, grant["imageId"]) == 0
    assert client.download(grant["imageId"]).json()["error"]["code"] == "ORIGINAL_REPLACED"
