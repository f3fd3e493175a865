"""Faults of timing injected into the local cloud: a worker killed mid-invocation, an answer after the task timeout, a
first step that arrives after its execution ended. Each image still ends PROCESSED once, with one intact rendition.
(Apart from test_faults.py so that make test runs their waits, 25-40 s each, in another lane: scripts/test.sh.)"""

from __future__ import annotations

import io
import time

import requests
from PIL import Image

from tests import images

from .conftest import expected_renditions, retried_errors, stored_renditions, wait_executions_done


def test_killed_worker_is_retried_and_the_image_processed(client, aws, stack, faults):
    # GIVEN the resize function's worker will be killed (kill -9) in the middle of its next invocation
    rule = faults(service="lambda", operation="Invoke", resource="ResizeFunction", action="crash", count=1)

    image_id = client.upload(images.jpeg(2000, 1500), "image/jpeg")
    record = client.wait(image_id, timeout=120)

    assert faults.fired()[rule["id"]] == 1
    assert record["status"] == "PROCESSED", record
    assert "Runtime.ExitError" in retried_errors(aws("stepfunctions"), stack, image_id)
    assert stored_renditions(aws("s3"), stack, image_id) == expected_renditions(record)


def _assert_one_intact_rendition(client, s3, stack, image_id: str, record: dict) -> None:
    assert stored_renditions(s3, stack, image_id) == expected_renditions(record)
    rendition = requests.get(client.download(image_id).json()["downloadUrl"])
    size = (record["processed"]["width"], record["processed"]["height"])
    assert Image.open(io.BytesIO(rendition.content)).size == size


def test_task_timeout_after_the_work_landed_is_retried_without_harm(client, aws, stack, faults):
    # GIVEN the next Mark processed invocation does its work but its answer comes back after the task's
    # TimeoutSeconds (25 s): Step Functions records States.Timeout and retries a step whose work already landed.
    rule = faults(
        service="lambda", operation="Invoke", resource="MarkProcessedFunction", latency_after_ms=30_000, count=1
    )

    image_id = client.upload(images.jpeg(1600, 1200), "image/jpeg")
    first = client.wait(image_id, timeout=120)  # PROCESSED as soon as the held invocation wrote it
    wait_executions_done(aws("stepfunctions"), stack.state_machine, timeout=120)
    record = client.wait(image_id)

    # THEN the retry, by the same execution, re-enters its own write: the record names the same renditions, and
    # there is one intact rendition
    assert faults.fired()[rule["id"]] == 1
    assert record["status"] == "PROCESSED", record
    assert (record["processed"], record["renditions"]) == (first["processed"], first["renditions"])
    assert "States.Timeout" in retried_errors(aws("stepfunctions"), stack, image_id)
    _assert_one_intact_rendition(client, aws("s3"), stack, image_id, record)


def test_a_late_first_step_does_not_reopen_a_finished_image(client, aws, stack, faults):
    # GIVEN the next Validate invocation reaches the function only after the whole execution has finished
    # (its task timed out at 25 s and the retry went through the pipeline)
    held_since = time.monotonic()
    rule = faults(service="lambda", operation="Invoke", resource="ValidateFunction", latency_ms=38_000, count=1)

    image_id = client.upload(images.jpeg(1600, 1200), "image/jpeg")
    record = client.wait(image_id, timeout=120)
    assert record["status"] == "PROCESSED", record
    assert "States.Timeout" in retried_errors(aws("stepfunctions"), stack, image_id)

    # WHEN the late invocation runs (as it would on AWS) THEN it claims nothing: the record is unchanged
    time.sleep(max(0.0, 40 - (time.monotonic() - held_since)))
    assert faults.fired()[rule["id"]] == 1
    after = client.wait(image_id)
    assert after == record
    _assert_one_intact_rendition(client, aws("s3"), stack, image_id, record)
