"""Workflow step: decode once, resize and encode every rendition of the set, and stage them for Store."""

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
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> Mapping[str, Any]:
    image = event["image"]
    annotate_image(image["imageId"])
    resized = workflow.resize(s3, settings, image)
    logger.info(
        "resized and staged",
        extra={"staged": resized["staged"], "renditions": len(resized["parts"]), "engine": resized["engine"]},
    )
    return resized
