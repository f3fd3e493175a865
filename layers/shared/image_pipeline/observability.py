"""What every handler sets up, in one place: the Powertools logger, metrics and tracer, the image id as the
correlation key of all three, and the factory of the image repository (in the manner of serverless-python-demo's
observability module)."""

from __future__ import annotations

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer

from image_pipeline.config import Settings
from image_pipeline.quota import Limits, Quotas
from image_pipeline.records import ImageRepository

logger = Logger()  # service name and level from POWERTOOLS_SERVICE_NAME / POWERTOOLS_LOG_LEVEL (template Globals)
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE
tracer = Tracer()  # X-Ray (Tracing: Active): a subsegment per handler and per AWS call; off outside Lambda


def annotate_image(image_id: str | None) -> None:
    """The image id on every log line of this invocation and as an X-Ray annotation (searchable:
    ``annotation.imageId = "..."``)."""
    if not image_id:
        return
    logger.append_keys(image_id=image_id)
    tracer.put_annotation(key="imageId", value=image_id)


def repository(settings: Settings) -> ImageRepository:
    """The image records' repository on the stack's table."""
    return ImageRepository(boto3.resource("dynamodb").Table(settings.table_name))


def quota_counters(settings: Settings) -> Quotas:
    """The per-owner quota counters on the stack's usage table."""
    limits = Limits(settings.quota_uploads_per_hour, settings.quota_uploads_per_day, settings.quota_stored_bytes)
    return Quotas(boto3.resource("dynamodb").Table(settings.usage_table or ""), limits)
