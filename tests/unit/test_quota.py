"""Per-owner quotas (image_pipeline/quota.py) through the API handler and on their own, against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
    counters = {i["period"]: i for i in aws_env["usage"].scan()["Items"]}
    assert counters["h#2026-12-07T10"]["grants"] == 1 and counters["bytes"]["bytes"] == 900
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
