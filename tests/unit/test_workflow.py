"""Workflow logic that needs no AWS: keys, event parsing, error classification."""

from __future__ import annotations

import json

import pytest
from image_pipeline import keys, workflow
from image_pipeline.errors import InvalidImageError

from tests.unit.conftest import load_event


def test_upload_keys_carry_the_image_id():
    image_id = keys.new_image_id()
    assert keys.is_image_id(image_id)
    assert keys.image_id_for("b", keys.upload_key(image_id), '"etag"') == image_id


def test_direct_put_ids_are_stable_per_object_and_change_with_content():
    a = keys.image_id_for("b", "samples/x.jpg", '"e1"')
    assert a == keys.image_id_for("b", "samples/x.jpg", "e1")
    assert a != keys.image_id_for("b", "samples/x.jpg", "e2")
    assert keys.is_image_id(a)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "2a321b24-8f83-49ed-ad4b-626e2ec0220",
        "../../etc/passwd",
        None,
        "2a321b24-8f83-49ed-ad4b-626e2ec02201\n",
    ],
)
def test_malformed_ids_are_refused(value):
    assert not keys.is_image_id(value)


def test_object_from_event_reads_the_sample_event():
    bucket, key, etag = workflow.object_from_event(load_event("image_pipeline_s3_object_created"))
    assert (bucket, key) == ("image-pipeline-original-000000000000-us-east-1", "samples/photo.jpg") and etag


def test_object_from_event_refuses_other_input():
    with pytest.raises(InvalidImageError) as err:
        workflow.object_from_event({"detail": {}})
    assert err.value.code == "BAD_EVENT"


def test_invalid_image_errors_classify_as_rejected_with_their_code():
    cause = json.dumps(
        {"errorMessage": "TOO_MANY_PIXELS: 60000x60000 is over the limit", "errorType": "InvalidImageError"}
    )
    assert workflow.classify({"Error": "InvalidImageError", "Cause": cause}) == (
        "REJECTED",
        "TOO_MANY_PIXELS",
        "60000x60000 is over the limit",
    )


LEAKY_CAUSE = json.dumps(
    {
        "errorMessage": "An error occurred (AccessDenied) when calling the GetObject operation: User: "
        "arn:aws:sts::123456789012:assumed-role/x is not authorized on arn:aws:s3:::image-pipeline-original-1/uploads/k",
        "errorType": "ClientError",
    }
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"Error": "TransientAWSError", "Cause": json.dumps({"errorMessage": "SlowDown"})}, "SERVICE_UNAVAILABLE"),
        ({"Error": "States.Timeout", "Cause": "timed out"}, "TIMEOUT"),
        (
            {"Error": "OriginalReplacedError", "Cause": json.dumps({"errorMessage": "uploads/x was replaced"})},
            "ORIGINAL_REPLACED",
        ),
        ({"Error": "ClientError", "Cause": LEAKY_CAUSE}, "PROCESSING_FAILED"),
        (
            {"Error": "States.Runtime", "Cause": "An error occurred while executing the state 'Resize image'"},
            "PROCESSING_FAILED",
        ),
        ({}, "PROCESSING_FAILED"),
    ],
)
def test_other_errors_classify_as_failed_with_a_public_safe_code_and_message(error, code):
    status, got, message = workflow.classify(error)
    assert status == "FAILED" and got == code and message
    for secret in ("arn:", "image-pipeline-original", "uploads/", "AccessDenied", "state", "SlowDown"):
        assert secret not in message, message
