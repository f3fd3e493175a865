"""Catch handler: record REJECTED (bad input; the original is tagged to expire) or FAILED (after retries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import workflow
from image_pipeline.config import Settings
from image_pipeline.errors import ImageNotOwnedError
from image_pipeline.observability import annotate_image, logger, metrics, repository, tracer

settings = Settings.from_env()
s3 = boto3.client("s3")
repo = repository(settings)


@logger.inject_lambda_context(clear_state=True)  # no image id left over from the previous invocation
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and keys
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> Mapping[str, Any]:
    # the full error (SDK and Step Functions text) goes to this log only; the image shows a public-safe one
    logger.warning("execution failed", extra={"error": event["state"].get("error")})
    try:
        result = workflow.record_failure(s3, repo, settings, event["state"], event["executionArn"])
    except ImageNotOwnedError as e:
        logger.warning("not recorded: another execution owns the image", extra={"reason": str(e)})
        return {"recorded": False, "reason": str(e)}
    annotate_image(result.get("imageId"))
    logger.info("failure recorded", extra=result)
    if result.get("recorded"):
        metrics.add_metric(name=f"Images{result['status'].title()}", unit=MetricUnit.Count, value=1)
    return result
