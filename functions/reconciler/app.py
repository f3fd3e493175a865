"""Scheduled: expire unused upload URLs, restart lost uploads, fail images whose execution ended silently, and
delete renditions a reprocess superseded once their grace period is over."""

from __future__ import annotations

import time

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import keys, reconcile, workflow
from image_pipeline.config import Settings
from image_pipeline.events import Publisher
from image_pipeline.observability import logger, metrics, quota_counters, repository, tracer

settings = Settings.from_env()
STATE_MACHINE_ARN = settings.require_state_machine_arn()
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
publish = Publisher(boto3.client("events"), settings.require_event_bus_name())
repo = repository(settings)
usage = quota_counters(settings)


def named_now(image_id: str) -> set[str]:
    """The rendition keys the image's record names as it is now (none once it is deleted)."""
    return workflow.named_keys(repo.get(image_id) or {})


@logger.inject_lambda_context(clear_state=True)  # no image id left over from the previous invocation
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and keys
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = reconcile.run(
        repo,
        s3,
        sfn,
        settings.original_bucket,
        STATE_MACHINE_ARN,
        settings.url_expiry_seconds,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        publish=publish,
        give_back=usage.give_back,
        discard=lambda image_id, arn: workflow.discard_version(
            s3, settings, image_id, keys.version_of(arn), named_now(image_id)
        ),
        configuration=settings.configuration,
    )
    retired = workflow.delete_retired(
        s3,
        settings,
        time.time(),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        named=named_now,
    )
    for name in ("expired", "restarted", "failed", "errors"):
        metrics.add_metric(name=f"Reconciled{name.title()}", unit=MetricUnit.Count, value=len(getattr(report, name)))
    metrics.add_metric(name="RetiredRenditionsDeleted", unit=MetricUnit.Count, value=len(retired))
    result = report.as_dict() | {"retiredRenditionsDeleted": len(retired)}
    logger.info("reconciled", extra=result)
    return result
