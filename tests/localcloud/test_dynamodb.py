"""DynamoDB without Java: the dynamodb:moto provider serves the operations the pipeline relies on."""

from __future__ import annotations

import uuid

import pytest
from boto3.dynamodb.conditions import Key


@pytest.fixture
def table(aws):
    ddb = aws("dynamodb")
    name = f"lc-images-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "imageId", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "updatedAt", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "imageId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byStatus",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "updatedAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.get_waiter("table_exists").wait(TableName=name)
    import boto3

    yield boto3.resource("dynamodb", endpoint_url=ddb.meta.endpoint_url, region_name=ddb.meta.region_name).Table(name)
    ddb.delete_table(TableName=name)


def test_conditional_put_refuses_a_second_create(table):
    table.put_item(
        Item={"imageId": "a", "status": "PENDING", "updatedAt": "1"},
        ConditionExpression="attribute_not_exists(imageId)",
    )
    with pytest.raises(table.meta.client.exceptions.ConditionalCheckFailedException):
        table.put_item(
            Item={"imageId": "a", "status": "PENDING", "updatedAt": "2"},
            ConditionExpression="attribute_not_exists(imageId)",
        )
    assert table.get_item(Key={"imageId": "a"})["Item"]["updatedAt"] == "1"


def test_update_item_with_condition_and_return_values(table):
    table.put_item(Item={"imageId": "b", "status": "PENDING", "updatedAt": "1"})
    new = table.update_item(
        Key={"imageId": "b"},
        UpdateExpression="SET #s = :to, updatedAt = :t ADD attempts :one",
        ConditionExpression="#s = :from",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":to": "PROCESSING", ":from": "PENDING", ":t": "2", ":one": 1},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert new["status"] == "PROCESSING" and new["attempts"] == 1
    with pytest.raises(table.meta.client.exceptions.ConditionalCheckFailedException):
        table.update_item(
            Key={"imageId": "b"},
            UpdateExpression="SET #s = :to",
            ConditionExpression="#s = :from",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":to": "PROCESSING", ":from": "PENDING"},
        )


def test_query_on_a_global_secondary_index(table):
    for i, status in enumerate(["PROCESSED", "PENDING", "PROCESSED", "FAILED"]):
        table.put_item(Item={"imageId": f"img-{i}", "status": status, "updatedAt": f"2026-11-27T00:00:0{i}Z"})
    items = table.query(
        IndexName="byStatus", KeyConditionExpression=Key("status").eq("PROCESSED"), ScanIndexForward=False
    )["Items"]
    assert [item["imageId"] for item in items] == ["img-2", "img-0"]


def test_concurrent_conditional_updates_have_exactly_one_winner(table):
    # GIVEN one PENDING item WHEN 32 writers race to claim it with the same condition
    from concurrent.futures import ThreadPoolExecutor

    table.put_item(Item={"imageId": "race", "status": "PENDING", "updatedAt": "0"})
    errors = table.meta.client.exceptions.ConditionalCheckFailedException

    def claim(writer: int) -> bool:
        try:
            table.update_item(
                Key={"imageId": "race"},
                UpdateExpression="SET #s = :to, claimedBy = :me",
                ConditionExpression="#s = :from",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":to": "PROCESSING", ":from": "PENDING", ":me": writer},
            )
            return True
        except errors:
            return False

    for _ in range(30):
        table.put_item(Item={"imageId": "race", "status": "PENDING", "updatedAt": "0"})
        with ThreadPoolExecutor(max_workers=32) as pool:
            wins = [w for w, won in zip(range(32), pool.map(claim, range(32)), strict=True) if won]
        # THEN exactly one writer won, and the item names it
        assert len(wins) == 1
        assert table.get_item(Key={"imageId": "race"}, ConsistentRead=True)["Item"]["claimedBy"] == wins[0]


def test_a_read_never_sees_half_of_an_update(table):
    # GIVEN an item whose every update sets 40 attributes to one new value (moto applies the actions of an update one
    # by one to the stored item; DynamoDB applies a write atomically: a read sees all of it or none of it)
    import threading
    from concurrent.futures import ThreadPoolExecutor

    names = [f"a{i}" for i in range(40)]
    table.put_item(Item={"imageId": "atomic", "status": "PENDING", "updatedAt": "0", **dict.fromkeys(names, 0)})
    done = threading.Event()

    def write() -> None:
        try:
            for n in range(1, 101):
                table.update_item(
                    Key={"imageId": "atomic"},
                    UpdateExpression="SET " + ", ".join(f"{a} = :n" for a in names),
                    ExpressionAttributeValues={":n": n},
                )
        finally:
            done.set()

    def read(_: int) -> list[set]:
        torn = []
        while not done.is_set():
            item = table.get_item(Key={"imageId": "atomic"}, ConsistentRead=True)["Item"]
            if len(seen := {item[a] for a in names}) > 1:
                torn.append(seen)
        return torn

    # WHEN readers read it while it is updated 100 times
    with ThreadPoolExecutor(max_workers=5) as pool:
        writer = pool.submit(write)
        torn = [seen for found in pool.map(read, range(4)) for seen in found]
        writer.result()

    # THEN no read saw some attributes of an update without the others
    assert torn == []


def test_an_update_expression_used_again_applies_its_own_names_and_values_each_time(table):
    """The local cloud keeps each UpdateExpression's parsed tree (localcloud.patches.dynamodb): the same text with other names and
    values must still write what each request says, and a malformed expression is refused every time, not once."""
    expression = "SET #a = :v, updatedAt = :t ADD attempts :one REMOVE #gone"
    for n, (attr, gone) in enumerate([("status", "x"), ("owner", "status"), ("status", "owner")]):
        table.put_item(Item={"imageId": f"u{n}", "status": "PENDING", "updatedAt": "0", "x": 1, "owner": "o"})
        item = table.update_item(
            Key={"imageId": f"u{n}"},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#a": attr, "#gone": gone},
            ExpressionAttributeValues={":v": f"value-{n}", ":t": str(n), ":one": n + 1},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        assert item[attr] == f"value-{n}" and item["updatedAt"] == str(n) and item["attempts"] == n + 1
        assert gone not in item
    for _ in range(2):
        with pytest.raises(table.meta.client.exceptions.ClientError, match="ValidationException"):
            table.update_item(
                Key={"imageId": "u0"},
                UpdateExpression="SET #a = = :v",
                ExpressionAttributeNames={"#a": "status"},
                ExpressionAttributeValues={":v": "y"},
            )
    assert table.get_item(Key={"imageId": "u0"})["Item"]["status"] == "value-0"


def test_a_condition_expression_used_again_is_evaluated_with_its_own_names_and_values(table):
    """The local cloud parses each UpdateExpression once and lexes each ConditionExpression once (localcloud.patches.dynamodb):
    the same condition text with other names and values must pass or fail as each request's own say, and a malformed
    condition is refused every time, as DynamoDB refuses it: a 400 ValidationException, not a retried 500."""
    condition = "#s = :from AND attribute_not_exists(#gone)"
    failed = table.meta.client.exceptions.ConditionalCheckFailedException
    table.put_item(Item={"imageId": "c", "status": "PENDING", "updatedAt": "0", "x": 1})

    def update(names: dict, values: dict, to: str) -> None:
        table.update_item(
            Key={"imageId": "c"},
            UpdateExpression="SET updatedAt = :t",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":t": to},
        )

    update({"#s": "status", "#gone": "y"}, {":from": "PENDING"}, "1")
    with pytest.raises(failed):
        update({"#s": "status", "#gone": "y"}, {":from": "PROCESSED"}, "2")  # another value
    with pytest.raises(failed):
        update({"#s": "status", "#gone": "x"}, {":from": "PENDING"}, "3")  # another name: x exists
    update({"#s": "x", "#gone": "status2"}, {":from": 1}, "4")
    malformed = [
        ("#s = = :from", {"#s": "status"}, "Invalid ConditionExpression: Syntax error"),
        ("#s = :from AND $$", {"#s": "status"}, "Invalid ConditionExpression: Syntax error"),
        ("#s = :nope", {"#s": "status"}, "attribute value: :nope"),
        ("attribute_not_exists(#x)", {}, "attribute name: #x"),
    ]
    for expression, names, message in malformed * 2:
        with pytest.raises(table.meta.client.exceptions.ClientError) as refused:
            table.update_item(
                Key={"imageId": "c"},
                UpdateExpression="SET updatedAt = :t",
                ConditionExpression=expression,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues={":from": "PENDING", ":t": "5"},
            )
        error = refused.value.response
        assert error["Error"]["Code"] == "ValidationException" and message in error["Error"]["Message"]
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400 and error["ResponseMetadata"]["RetryAttempts"] == 0
    assert table.get_item(Key={"imageId": "c"})["Item"]["updatedAt"] == "4"
