"""The local cloud's request meter (localcloud/plugins/request_meter.py), which `make cost` counts with: every request by service and
operation, LocalStack's own internal ones too (Step Functions invoking Lambda), except the ones marked to ignore."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from botocore.config import Config


def test_the_meter_counts_each_request_by_operation_and_skips_the_marked_ones(localcloud, aws):
    s3, events = aws("s3"), aws("events")
    bucket = "meter-test"
    s3.create_bucket(Bucket=bucket)
    requests.delete(f"{localcloud}/_localcloud/meter").raise_for_status()
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    s3.get_object(Bucket=bucket, Key="k0")["Body"].read()
    events.put_events(
        Entries=[
            {"Source": "aws.s3", "DetailType": "Object Created", "Detail": "{}"},
            {"Source": "image-pipeline", "DetailType": "Image Processed", "Detail": "{}"},
            {"Source": "image-pipeline", "DetailType": "Image Processed", "Detail": "{}"},
        ]
    )
    ignored = aws("s3", config=Config(user_agent_extra="localcloud-meter-ignore"))
    ignored.list_objects_v2(Bucket=bucket)

    counted = requests.get(f"{localcloud}/_localcloud/meter").json()
    mine = {op: by[bucket] for op, by in counted["by_resource"]["s3"].items() if bucket in by}
    assert mine == {"PutObject": 3, "GetObject": 1}  # not the ignored LIST (other tests' stacks may be busy)
    assert counted["requests"]["s3"]["PutObject"] >= 3 and counted["ignored"] >= 1
    assert counted["requests"]["events"]["entries:aws"] >= 1 and counted["requests"]["events"]["entries:custom"] >= 2

    requests.delete(f"{localcloud}/_localcloud/meter").raise_for_status()
    assert (
        requests.get(f"{localcloud}/_localcloud/meter")
        .json()["by_resource"]
        .get("s3", {})
        .get("PutObject", {})
        .get(bucket)
        is None
    )


def test_the_meter_sees_step_functions_invoking_lambda(localcloud, aws, make_function):
    name = make_function("behaviours")
    sfn = aws("stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": name, "Payload.$": "$"},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(  # a name of its own: a local cloud kept running may hold an earlier run's
        name=f"meter-test-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::000000000000:role/meter-test",
    )["stateMachineArn"]
    quiet = aws("stepfunctions", config=Config(user_agent_extra="localcloud-meter-ignore"))
    try:
        requests.delete(f"{localcloud}/_localcloud/meter").raise_for_status()
        arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        deadline = time.monotonic() + 60
        while quiet.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        counted = requests.get(f"{localcloud}/_localcloud/meter").json()["by_resource"]
    finally:
        quiet.delete_state_machine(stateMachineArn=machine)
    assert counted["stepfunctions"]["StartExecution"] == {machine: 1}
    assert counted["lambda"]["Invoke"][name] == 1  # LocalStack's own call, through the same handler chain


def test_the_meter_counts_dynamodb_write_units_in_the_table_and_each_index(localcloud, aws):
    dynamodb = aws("dynamodb")
    table = f"meter-units-test-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "busy", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[  # sparse: only items with "busy"; projects the keys only
            {
                "IndexName": "busy",
                "KeySchema": [{"AttributeName": "busy", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    requests.delete(f"{localcloud}/_localcloud/meter").raise_for_status()
    dynamodb.put_item(TableName=table, Item={"id": {"S": "a"}, "blob": {"S": "x" * 1500}, "busy": {"S": "yes"}})
    dynamodb.update_item(  # ~3.1 KB after: 4 units; "busy" unchanged, "more" not projected: no index write
        TableName=table,
        Key={"id": {"S": "a"}},
        UpdateExpression="SET more = :m",
        ExpressionAttributeValues={":m": {"S": "y" * 1600}},
    )
    dynamodb.update_item(  # leaves the index: one delete there; the larger image (before) is 4 units
        TableName=table,
        Key={"id": {"S": "a"}},
        UpdateExpression="REMOVE busy, more",
    )
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):  # refused: 2 units, nothing else
        dynamodb.update_item(
            TableName=table,
            Key={"id": {"S": "a"}},
            UpdateExpression="SET busy = :b",
            ConditionExpression="attribute_not_exists(id)",
            ExpressionAttributeValues={":b": {"S": "again"}},
        )
    counted = requests.get(f"{localcloud}/_localcloud/meter").json()
    mine = {op: by[table] for op, by in counted["by_resource"]["dynamodb"].items() if table in by}
    assert mine == {
        "PutItem": 1,
        "write_units:PutItem": 2,
        "sized:PutItem": 1,
        "UpdateItem": 3,
        "write_units:UpdateItem": 4 + 4 + 2,
        "sized:UpdateItem": 3,
        "index_write_units:busy": 1 + 0 + 1 + 0,
    }
    dynamodb.delete_table(TableName=table)
