"""Workflow step: put each staged rendition at its final key with its headers, and verify what S3 stored."""

from __future__ import annotations

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import workflow
from image_pipeline.config import Settings
from image_pipeline.observability import annotate_image, logger, tracer

settings = Settings.from_env()
s3 = boto3.client("s3")


@logger.inject_lambda_context(clear_state=True)  # no image id left over from the previous invocation
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and keys
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    annotate_image(event["image"]["imageId"])
    stored = workflow.store(s3, settings, event["image"], event["resized"])
    logger.info("stored", extra={"processed": stored["processed"], "renditions": len(stored["renditions"])})
    return stored
