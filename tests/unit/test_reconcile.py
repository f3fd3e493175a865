"""The reconciler: expired uploads, lost S3 events, executions that ended without an outcome (moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from image_pipeline import reconcile
from image_pipeline.records import ImageRepository

ARN_SM = None


@pytest.fixture
def world(aws_env):
    sfn = boto3.client("stepfunctions")
    sm = sfn.create_state_machine(
        name="sm",
        roleArn="arn:aws:iam::123456789012:role/x",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
    )
    return {"repo": ImageRepository(aws_env["table"]), "s3": aws_env["s3"], "sfn": sfn, "sm": sm["stateMachineArn"]}


def put(repo, image_id: str, status: str, age: timedelta, **extra):
    stamp = (datetime.now(UTC) - age).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    repo.table.put_item(
        Item={
            "imageId": image_id,
            "status": status,
            "updatedAt": stamp,
            "uploadTimestamp": stamp,
            "originalKey": f"uploads/{image_id}",
            **({"inFlight": status} if status in ("PENDING", "PROCESSING") else {}),  # as records.py writes it
            **extra,
        }
    )


def put_orphan(world) -> None:
    """An image PROCESSING for an hour whose execution no longer exists."""
    gone = world["sm"].replace(":stateMachine:", ":execution:") + ":gone"
    put(world["repo"], "orphan", "PROCESSING", timedelta(hours=1), executionArn=gone)


def run(world, **options):
    return reconcile.run(
        world["repo"], world["s3"], world["sfn"], "original-test", world["sm"], url_expiry_seconds=300, **options
    )


def test_unused_expired_upload_becomes_expired_and_disappears_after_its_ttl(world):
    repo = world["repo"]
    put(repo, "old-pending", "PENDING", timedelta(minutes=30))
    put(repo, "fresh-pending", "PENDING", timedelta(seconds=30))

    report = run(world)

    assert report.expired == ["old-pending"]
    record = repo.get("old-pending")
    assert record["status"] == "EXPIRED" and record["error"]["code"] == "UPLOAD_URL_EXPIRED"
    assert "inFlight" not in record  # out of the in-flight index
    assert int(record["expiresAt"]) > datetime.now(UTC).timestamp()
    assert repo.get("fresh-pending")["status"] == "PENDING"
    repo.table.update_item(
        Key={"imageId": "old-pending"}, UpdateExpression="SET expiresAt = :past", ExpressionAttributeValues={":past": 1}
    )
    assert repo.get("old-pending") is None  # past its TTL: gone for the app, whatever DynamoDB does


def test_uploaded_object_whose_event_was_lost_is_restarted(world):
    put(world["repo"], "lost-event", "PENDING", timedelta(minutes=30))
    world["s3"].put_object(Bucket="original-test", Key="uploads/lost-event", Body=b"\xff\xd8\xff")

    report = run(world)

    assert report.restarted == ["lost-event"] and report.expired == []
    executions = world["sfn"].list_executions(stateMachineArn=world["sm"])["executions"]
    started = json.loads(world["sfn"].describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started["detail"]["object"]["key"] == "uploads/lost-event"
    assert world["repo"].get("lost-event")["status"] == "PENDING"  # the workflow claims it, not the reconciler


def test_processing_image_whose_execution_is_gone_becomes_failed(world):
    repo = world["repo"]
    put_orphan(world)
    running = world["sfn"].start_execution(stateMachineArn=world["sm"])["executionArn"]
    put(repo, "recent", "PROCESSING", timedelta(minutes=1), executionArn=running)

    report = run(world)

    assert report.failed == ["orphan"]
    record = repo.get("orphan")
    assert record["status"] == "FAILED" and record["error"]["code"] == "EXECUTION_ENDED_WITHOUT_STATUS"
    assert repo.get("recent")["status"] == "PROCESSING"


def test_a_re_render_that_ended_without_a_word_leaves_the_image_serving_what_it_served(world):
    """A reprocess or a crops-only run (PATCH) whose execution ended silently: the image has renditions, so it goes
    back to PROCESSED on them with the error as reprocessError (FAILED would take it offline), announced as an
    Image Reprocess Failed event."""
    gone = world["sm"].replace(":stateMachine:", ":execution:") + ":gone"
    processed = {"key": "renditions/x/v1/default.jpg", "bytes": 1, "width": 1, "height": 1, "format": "JPEG"}
    put(
        world["repo"], "re-render", "PROCESSING", timedelta(hours=1), executionArn=gone, processed=processed, owner="al"
    )
    announced: list[tuple[str, dict]] = []
    report = run(world, publish=lambda status, detail: announced.append((status, detail)), configuration="200/webp/800")
    record = world["repo"].get("re-render")
    assert report.failed == ["re-render"] and record["status"] == "PROCESSED" and "inFlight" not in record
    assert record["reprocessError"]["code"] == "EXECUTION_ENDED_WITHOUT_STATUS"
    assert record["reprocessError"]["renditionSet"] == "200/webp/800" and record["processed"] == processed
    assert [(s, d["status"]) for s, d in announced] == [("Image Reprocess Failed", "PROCESSED")]


def test_an_express_execution_is_judged_by_age_without_describing_it(world):
    """An Express execution's ARN is refused by DescribeExecution, and it runs at most 5 minutes: an image it owns
    that is still PROCESSING after STALE_PROCESSING was left behind; a recent one is left alone."""
    repo = world["repo"]
    express = "arn:aws:states:us-east-1:123456789012:express:pipeline:run-1:5f0c"
    put(repo, "stuck", "PROCESSING", timedelta(minutes=20), executionArn=express)
    put(repo, "young", "PROCESSING", timedelta(minutes=2), executionArn=express)

    discarded: list[tuple[str, str]] = []
    report = run(world, discard=lambda image_id, arn: discarded.append((image_id, arn)))

    assert report.failed == ["stuck"] and report.errors == []
    assert discarded == [("stuck", express)]  # what it staged or published goes: its Record failure never ran
    assert repo.get("stuck")["error"]["code"] == "EXECUTION_ENDED_WITHOUT_STATUS"
    assert repo.get("young")["status"] == "PROCESSING"


def test_a_record_that_moved_on_meanwhile_is_left_alone(world, monkeypatch):
    repo = world["repo"]
    put(repo, "racing", "PENDING", timedelta(minutes=30))
    real = reconcile._older_than

    def stale_view(r, status, cutoff):
        items = list(real(r, status, cutoff))
        repo.table.update_item(
            Key={"imageId": "racing"},
            UpdateExpression="SET #s = :p, updatedAt = :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":p": "PROCESSING", ":t": "2999-01-01T00:00:00.000Z"},
        )
        return iter(items)

    monkeypatch.setattr(reconcile, "_older_than", stale_view)
    assert run(world).expired == []
    assert repo.get("racing")["status"] == "PROCESSING"


def test_processing_is_repaired_first_and_the_time_budget_is_kept(world):
    repo = world["repo"]
    for i in range(3):
        put(repo, f"stuck-{i}", "PROCESSING", timedelta(hours=2), executionArn=f"{world['sm']}:gone-{i}")
        put(repo, f"unused-{i}", "PENDING", timedelta(hours=2))
    budget = iter([60.0, 60.0, 5.0])  # seconds left before each item: the third finds too little

    report = reconcile.run(
        repo, world["s3"], world["sfn"], "original-test", world["sm"], 300, time_left=lambda: next(budget)
    )

    assert len(report.failed) == 2 and report.expired == [] and not report.complete
    assert sum(repo.get(f"stuck-{i}")["status"] == "FAILED" for i in range(3)) == 2
    assert all(repo.get(f"unused-{i}")["status"] == "PENDING" for i in range(3))  # the next run goes on


def test_one_item_that_fails_does_not_stop_the_others(world, monkeypatch):
    repo = world["repo"]
    for i in range(3):
        put(repo, f"pending-{i}", "PENDING", timedelta(hours=1))
    real_head = world["s3"].head_object

    def head(**kwargs):
        if kwargs["Key"] == "uploads/pending-1":
            raise RuntimeError("S3 is unreachable for this one")
        return real_head(**kwargs)

    monkeypatch.setattr(world["s3"], "head_object", head)
    report = run(world)
    assert sorted(report.expired) == ["pending-0", "pending-2"] and report.complete
    assert report.errors == [{"imageId": "pending-1", "status": "PENDING", "error": "RuntimeError"}]


def test_the_index_is_read_page_by_page(world, monkeypatch):
    repo = world["repo"]
    for i in range(150):
        put(repo, f"p-{i:03}", "PENDING", timedelta(hours=1))
    pages = []
    real_query = repo.table.query

    def query(**kwargs):
        page = real_query(**kwargs)
        pages.append(len(page["Items"]))
        return page

    monkeypatch.setattr(repo.table, "query", query)
    items = reconcile._older_than(repo, "PENDING", datetime.now(UTC))
    assert next(items)["imageId"] and pages == [100]  # one page read for the first item, not the whole index
    assert len(list(items)) == 149 and pages == [100, 50]


def test_what_the_reconciler_decides_is_announced_on_the_bus(world):
    from image_pipeline.events import Publisher

    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name="images-bus")
    queue = sqs.create_queue(QueueName="announced")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName="images-bus", EventPattern=json.dumps({"source": ["image-pipeline"]}))
    events.put_targets(Rule="all", EventBusName="images-bus", Targets=[{"Id": "q", "Arn": arn}])
    repo = world["repo"]
    put(repo, "unused", "PENDING", timedelta(minutes=30))
    put_orphan(world)
    put(repo, "fresh", "PENDING", timedelta(seconds=5))

    reconcile.run(
        repo, world["s3"], world["sfn"], "original-test", world["sm"], 300, publish=Publisher(events, "images-bus")
    )

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    got = sorted((b["detail-type"], b["detail"]["imageId"], b["detail"]["error"]["code"]) for b in bodies)
    assert got == [
        ("Image Expired", "unused", "UPLOAD_URL_EXPIRED"),
        ("Image Failed", "orphan", "EXECUTION_ENDED_WITHOUT_STATUS"),
    ]
    assert {b["source"] for b in bodies} == {"image-pipeline"}
