"""Each service's valid regions, computed from one botocore session (localcloud/patches/aws.py,
valid_regions_from_one_session): the same regions as LocalStack's own function, and what S3 refuses with them."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import STATE_DIR

from .conftest import in_localstack_env


def test_one_session_gives_every_service_the_regions_localstacks_own_function_gives():
    code = """
import boto3
from localstack.utils.aws import aws_stack
from localcloud.patches.aws import regions_from_one_session
made = []
def session():
    made.append(1)
    return boto3.Session()
ours = regions_from_one_session(session)
services = ["s3", "events", "iam", "sts", "dynamodb", "lambda", "logs", "stepfunctions", "apigateway",
            "cloudformation", "sqs", "sns", "cloudwatch", "ssm", "kms", "secretsmanager", "route53"]
for name in services:
    theirs = aws_stack.get_valid_regions_for_service.__wrapped__(name)
    assert ours(name) == theirs, (name, ours(name), theirs)
assert "eu-west-1" in ours("s3") and "cn-north-1" in ours("s3") and "xx-nowhere-1" not in ours("s3")
assert len(made) == 1, made  # one session for all of them
"""
    in_localstack_env(code, timeout=120)


def test_s3_accepts_a_real_region_and_refuses_one_that_is_not(aws):
    s3 = aws("s3")
    name = f"regions-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    finally:
        s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as refused:
        s3.create_bucket(Bucket=f"{name}-x", CreateBucketConfiguration={"LocationConstraint": "xx-nowhere-1"})
    assert refused.value.response["Error"]["Code"] == "InvalidLocationConstraint"


def test_the_start_up_hooks_leave_moto_batch_unloaded(aws):
    """Looking for modules that hold LocalStack's function by name must not touch attributes of every module: on the
    package whose body is deferred (moto.batch, localcloud.lazy) that ran the body, moto's Batch and EC2 backends."""
    for service, call in [
        ("s3", "list_buckets"),
        ("dynamodb", "list_tables"),
        ("events", "list_rules"),
        ("stepfunctions", "list_state_machines"),
        ("iam", "list_roles"),
        ("logs", "describe_log_groups"),
    ]:
        getattr(aws(service), call)()
    log = (STATE_DIR / "localstack.log").read_text()
    assert "moto.batch's body deferred to its first use" in log
    assert "moto.batch's body runs now" not in log, [line for line in log.splitlines() if "body runs now" in line]
