"""Workflow step: publish the staged renditions under this execution's immutable, versioned keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import workflow
from image_pipeline.config import Settings
from image_pipeline.observability import annotate_image, logger, tracer

settings = Settings.from_env()
s3 = boto3.client("s3")


@logger.inject_lambda_context(clear_state=True)  # no image id left over from the previous invocation
@tracer.capture_lambda_handler(capture_response=False)  # responses hold keys
def lambda_handler(event: dict, context: LambdaContext) -> Mapping[str, Any]:
    image = event["image"]
    annotate_image(image["imageId"])
    stored = workflow.store(s3, settings, image, event["resized"])
    logger.info("stored", extra={"version": stored["version"], "renditions": len(event["resized"]["parts"])})
    return stored
