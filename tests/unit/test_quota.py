"""Per-owner quotas (image_pipeline/quota.py) through the API handler and on their own, against moto. Concurrent
grants are tested against the local cloud (tests/integration/test_api_key.py), whose DynamoDB applies each
conditional write atomically; moto in-process does not between threads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from image_pipeline.errors import ApiError
from image_pipeline.quota import Limits, Quotas

from tests.unit.conftest import load_event, load_handler, signed_in


@pytest.fixture
def quotas(aws_env):
    return Quotas(aws_env["usage"], Limits(uploads_per_hour=3, uploads_per_day=5, stored_bytes=1000))


def exceeded(call) -> ApiError:
    with pytest.raises(ApiError) as e:
        call()
    assert e.value.http_status == 429 and e.value.code == "QUOTA_EXCEEDED"
    return e.value


def test_grants_stop_at_the_hourly_limit_until_the_next_hour(quotas):
    at = datetime(2026, 12, 7, 13, 59, 30, tzinfo=UTC)
    for _ in range(3):
        quotas.take_grant("alice", 10, now=at)
    e = exceeded(lambda: quotas.take_grant("alice", 10, now=at))
    assert e.extra["limit"] == "uploadsPerHour" and e.retry_after == 30
    quotas.take_grant("bob", 10, now=at)  # another owner's counters are their own
    quotas.take_grant("alice", 10, now=at.replace(hour=14, minute=0))  # a new hour
    quotas.take_grant("alice", 10, now=at.replace(hour=15, minute=0))
    e = exceeded(lambda: quotas.take_grant("alice", 10, now=at.replace(hour=16, minute=0)))
    assert e.extra["limit"] == "uploadsPerDay" and e.retry_after == 8 * 3600 - 30  # to midnight UTC


def test_a_refused_grant_counts_nothing(quotas, aws_env):
    at = datetime(2026, 12, 7, 10, tzinfo=UTC)
    quotas.take_grant("alice", 900, now=at)
    e = exceeded(lambda: quotas.take_grant("alice", 200, now=at))
    assert e.extra["limit"] == "storedBytes" and e.retry_after is not None
    [counters] = aws_env["usage"].scan()["Items"]
    assert counters["hourGrants"] == 1 and counters["dayGrants"] == 1 and counters["bytes"] == 900
    quotas.take_grant("alice", 100, now=at)  # exactly the limit fits
    quotas.give_back("alice", 500)  # a deleted image's bytes
    quotas.take_grant("alice", 400, now=at.replace(hour=11))
    exceeded(lambda: quotas.take_grant("alice", 1001, now=at.replace(hour=12)))  # larger than the whole quota


def test_the_api_answers_429_with_retry_after_and_the_limit(aws_env, monkeypatch, issuer, lambda_context):
    monkeypatch.setenv("QUOTA_UPLOADS_PER_HOUR", "2")
    api = load_handler("api")
    token = issuer.token("alice")
    event = load_event("api_upload")
    answers = [api.lambda_handler(signed_in(event, token), lambda_context) for _ in range(3)]
    assert [a["statusCode"] for a in answers] == [201, 201, 429]
    refused = answers[-1]
    body = json.loads(refused["body"])
    assert body["error"]["code"] == "QUOTA_EXCEEDED" and body["limit"] == "uploadsPerHour" and body["quota"] == 2
    assert 0 < int(refused["multiValueHeaders"]["Retry-After"][0]) <= 3600
    assert aws_env["table"].scan()["Count"] == 2  # the refused grant made no record


def test_a_new_window_is_started_only_from_what_is_still_there(quotas, aws_env):
    # GIVEN alice's counters of 10:00 read by a grant at 12:00 just before another grant (11:00) lands
    at = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
    quotas.take_grant("alice", 100, now=at)
    stale = aws_env["usage"].get_item(Key={"owner": "alice"})["Item"]
    quotas.take_grant("alice", 50, now=at.replace(hour=11))  # the other grant: the 11:00 window, 150 bytes
    real_get = quotas.table.get_item
    reads = []

    def get_item(**kwargs):
        reads.append(kwargs)
        return {"Item": stale} if len(reads) == 1 else real_get(**kwargs)

    quotas.table.get_item = get_item
    # WHEN the grant starts the 12:00 window from what it read THEN that write is refused (the item changed), it
    # reads again, and nothing is lost: one grant in the 12:00 window, three in the day, all three grants' bytes
    quotas.take_grant("alice", 25, now=at.replace(hour=12))
    item = real_get(Key={"owner": "alice"})["Item"]
    assert len(reads) == 2
    assert (item["hour"], item["hourGrants"], item["dayGrants"], item["bytes"]) == ("2026-12-07T12", 1, 3, 175)


def test_an_expired_upload_gives_its_bytes_back_once_whatever_follows(aws_env, quotas):
    # GIVEN alice's grant of the whole storage quota, never uploaded, expired by the reconciler
    import boto3
    from image_pipeline import api, keys, reconcile
    from image_pipeline.auth import Caller
    from image_pipeline.config import Settings
    from image_pipeline.records import ImageRepository

    repo, alice = ImageRepository(aws_env["table"]), Caller("alice")
    quotas.take_grant("alice", 1000)
    image_id = keys.new_image_id()
    repo.create_pending(image_id, keys.upload_key(image_id), None, None, "alice", 1000)
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    aws_env["table"].update_item(
        Key={"imageId": image_id}, UpdateExpression="SET updatedAt = :t", ExpressionAttributeValues={":t": old}
    )
    report = reconcile.run(
        repo, aws_env["s3"], boto3.client("stepfunctions"), "original-test", "arn:sm", 300, give_back=quotas.give_back
    )
    assert report.expired == [image_id] and "declaredSize" not in repo.get(image_id)  # given back: nothing left
    assert aws_env["usage"].get_item(Key={"owner": "alice"})["Item"]["bytes"] == 0
    # WHEN she deletes the expired image, and asks for more
    api.delete_image(aws_env["s3"], repo, quotas, Settings.from_env(), alice, image_id, None)
    # THEN the bytes came back once: the quota holds exactly one more grant of its size, not two
    assert aws_env["usage"].get_item(Key={"owner": "alice"})["Item"]["bytes"] == 0
    quotas.take_grant("alice", 1000)
    exceeded(lambda: quotas.take_grant("alice", 1000))
