"""Workflow step: claim the image, check the object (size, real format, pixels) and record its metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import workflow
from image_pipeline.config import Settings
from image_pipeline.observability import annotate_image, logger, repository, tracer

settings = Settings.from_env()
s3 = boto3.client("s3")
repo = repository(settings)


@logger.inject_lambda_context(clear_state=True)  # no image id left over from the previous invocation
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and keys
def lambda_handler(event: dict, context: LambdaContext) -> Mapping[str, Any]:
    result = workflow.validate(s3, repo, settings, event["event"], event["executionArn"])
    annotate_image(result["imageId"])
    logger.info("validated" if not result["duplicate"] else "duplicate event ignored", extra=result)
    return result
