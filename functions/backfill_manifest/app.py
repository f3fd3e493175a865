"""Backfill, first step: list the images made with another rendition configuration in the run's manifest, going on
from where the previous call stopped (image_pipeline/backfill.py)."""

from __future__ import annotations

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_pipeline import backfill
from image_pipeline.config import Settings
from image_pipeline.observability import logger, metrics, repository, tracer

settings = Settings.from_env()
s3 = boto3.client("s3")
repo = repository(settings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # the response carries the index cursor and part ETags
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    logger.append_keys(backfill_run=event["run"])
    listed = backfill.write_manifest(
        repo,
        s3,
        settings.work_bucket,
        event["run"],
        event["before"],
        settings,
        event.get("manifest"),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("manifest written" if listed["done"] else "manifest goes on", extra={"count": listed["count"]})
    if listed["done"]:
        metrics.add_metric(name="BackfillImagesListed", unit=MetricUnit.Count, value=listed["count"])
    return listed
