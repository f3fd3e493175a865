"""CloudWatch Logs' DescribeLogGroups on the local cloud (answered without copying every stored event:
localcloud/patches/logs.py): the same groups, filters, sizes and errors as LocalStack's own answer and AWS's."""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError


def test_describe_log_groups_filters_by_prefix_or_pattern_and_counts_stored_bytes(aws):
    logs = aws("logs")
    base = f"/test/describe-{uuid.uuid4().hex[:8]}"
    names = [f"{base}/b", f"{base}/a", f"{base}-other/c"]
    for name in names:
        logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=names[0], retentionInDays=7)
    logs.create_log_stream(logGroupName=names[1], logStreamName="s")
    logs.put_log_events(
        logGroupName=names[1],
        logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "x" * 100}],
    )

    by_prefix = logs.describe_log_groups(logGroupNamePrefix=f"{base}/")["logGroups"]
    assert [g["logGroupName"] for g in by_prefix] == [f"{base}/a", f"{base}/b"]  # sorted by name
    a, b = by_prefix
    assert a["storedBytes"] > 0 and b["storedBytes"] == 0
    assert b["retentionInDays"] == 7 and "retentionInDays" not in a
    assert a["logGroupArn"].endswith(f":log-group:{base}/a") and a["arn"] == a["logGroupArn"] + ":*"
    assert a["logGroupClass"] == "STANDARD" and a["metricFilterCount"] == 0

    by_pattern = logs.describe_log_groups(logGroupNamePattern="-other/")["logGroups"]
    assert [g["logGroupName"] for g in by_pattern if g["logGroupName"].startswith(base)] == [f"{base}-other/c"]
    every = {g["logGroupName"] for g in logs.get_paginator("describe_log_groups").paginate().search("logGroups")}
    assert set(names) <= every

    with pytest.raises(ClientError) as refused:
        logs.describe_log_groups(logGroupNamePrefix=base, logGroupNamePattern="other")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    for name in names:
        logs.delete_log_group(logGroupName=name)
