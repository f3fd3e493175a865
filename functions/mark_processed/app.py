"""Workflow step: switch the record to this execution's renditions and PROCESSED (only while this execution owns
the image), then retire the renditions it no longer names (deleted after a grace period)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import workflow
from image_pipeline.config import Settings
from image_pipeline.observability import annotate_image, logger, metrics, repository, tracer

settings = Settings.from_env()
repo = repository(settings)
s3 = boto3.client("s3")


@logger.inject_lambda_context(clear_state=True)  # no image id left over from the previous invocation
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and keys
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> Mapping[str, Any]:
    annotate_image(event["image"]["imageId"])
    result, retired = workflow.mark_processed(
        s3, repo, settings, event["image"], event["stored"], event["executionArn"]
    )
    if retired:
        logger.info("earlier renditions retired", extra={"keys": retired, "after": workflow.retirement_grace(settings)})
    metrics.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=1)
    return result
