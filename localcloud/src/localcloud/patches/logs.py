"""Patches of LocalStack's CloudWatch Logs provider (``localstack.services.logs``, localstack-core 2026.3.0) and of the
moto log group it describes (``moto.logs.models``, moto-ext 5.1.25).

DescribeLogGroups deep-copied every log group with all its events (and each group's streams once more) to read names
and sizes: its cost grew with every log line kept (~0.6 s after 35,000 events); it now reads snapshots.
"""

from __future__ import annotations

from localcloud.patching import Patch, hook, patch_all


@hook("DescribeLogGroups without copying the logs")
def describe_log_groups_without_copying_the_logs() -> str | None:
    from localstack.aws.api import handler
    from localstack.services.logs import provider
    from moto.logs.models import LogGroup

    # LocalStack's DescribeLogGroups deep-copies every log group of the region, with every stream and every event in
    # it, and its patch of moto's LogGroup.to_describe_dict deep-copies the group's streams again (against a race with
    # a stream being added while their sizes are summed), to read a few fields: names, times, sizes. The cost grows with
    # every log line the local cloud keeps: ~0.6 s per call after 35,000 events. CloudFormation calls it for each log
    # group it creates (7 per deploy of this stack): ~2% of a lane's LocalStack CPU in `make test` (py-spy,
    # 2026-12-04), more on a local cloud that has run for a day. Same answer, from snapshots of the group and stream
    # lists (``list()`` of a dict's values is one step under the GIL: no race) and without the copies.
    def to_describe_dict(self) -> dict:  # a copy of LocalStack's moto_to_describe_dict, without the deep copy
        group = {
            "arn": f"{self.arn}:*",
            "logGroupArn": self.arn,
            "creationTime": self.creation_time,
            "logGroupName": self.name,
            "metricFilterCount": 0,
            "storedBytes": sum(stream.stored_bytes for stream in list(self.streams.values())),
        }
        if self.retention_in_days:
            group["retentionInDays"] = self.retention_in_days
        if self.kms_key_id:
            group["kmsKeyId"] = self.kms_key_id
        return group

    @handler("DescribeLogGroups", expand=False)
    def describe_log_groups(self, context, request):  # a copy of LocalStack's, without the deep copy
        backend = provider.get_moto_logs_backend(context.account_id, context.region)
        prefix = request.get("logGroupNamePrefix", "")
        pattern = request.get("logGroupNamePattern", "")
        if pattern and prefix:
            raise provider.InvalidParameterException(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
            )
        groups = [
            {"logGroupClass": provider.LogGroupClass.STANDARD} | group.to_describe_dict()
            for group in sorted(list(backend.groups.values()), key=lambda g: g.name)
            if not (prefix or pattern)
            or (prefix and group.name.startswith(prefix))
            or (pattern and pattern in group.name)
        ]
        return provider.DescribeLogGroupsResponse(logGroups=groups)

    if not patch_all(
        Patch(
            provider.LogsProvider,
            "describe_log_groups",
            describe_log_groups,
            copies={"localstack.services.logs.provider:LogsProvider.describe_log_groups": "ffc63199c6355381"},
        ),
        Patch(
            LogGroup,
            "to_describe_dict",
            to_describe_dict,
            copies={
                "localstack.services.logs.provider:moto_to_describe_dict": "184b89cc73ffa00e",
                "moto.logs.models:LogGroup.to_describe_dict": "8d53a9472548def0",
            },
        ),
    ):
        return None
    return "DescribeLogGroups answers without deep copies of every log group's events"
