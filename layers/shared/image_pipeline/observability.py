"""What every handler sets up, in one place: the Powertools logger and metrics, and the factory of the image
repository (in the manner of serverless-python-demo's observability module)."""

from __future__ import annotations

import boto3
from aws_lambda_powertools import Logger, Metrics

from image_pipeline.config import Settings
from image_pipeline.records import ImageRepository

logger = Logger()  # service name and level from POWERTOOLS_SERVICE_NAME / POWERTOOLS_LOG_LEVEL (template Globals)
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE


def repository(settings: Settings) -> ImageRepository:
    """The image records' repository on the stack's table."""
    return ImageRepository(boto3.resource("dynamodb").Table(settings.table_name))
