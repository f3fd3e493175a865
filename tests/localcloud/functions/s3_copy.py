"""Test function: reads an object, transforms it with a layer's third-party library, writes the result."""

import os

import boto3
from attrs import asdict, define  # third-party, shipped in the layer
from textlib import shout  # the layer's own module (python/)

s3 = boto3.client("s3")


@define
class Result:
    bucket: str
    key: str
    size: int


def handler(event, context):
    print(f"copying {event['key']} in {event['bucket']}")
    body = s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read().decode()
    out_key = event["key"] + ".out"
    s3.put_object(Bucket=event["bucket"], Key=out_key, Body=shout(body).encode())
    return {
        **asdict(Result(event["bucket"], out_key, len(body))),
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
