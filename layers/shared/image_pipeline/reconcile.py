"""Nothing left behind: the scheduled reconciler's logic.

Repairs PROCESSING images first (a stuck image is worse than an unused URL), reads the index page by page as it
goes, stops starting new items when its time budget is spent (the next run goes on), and isolates each item: one
that fails is reported and logged, the others are still repaired.

- PENDING images whose upload URL expired (plus a grace period) with no object uploaded -> EXPIRED, with a TTL
  (``expiresAt``) after which the API treats the record as gone (local DynamoDB TTL never deletes).
- PENDING images whose object *was* uploaded but whose S3 event never started the workflow -> the workflow is
  started for them (the event was lost).
- PROCESSING images whose execution is no longer running -> FAILED (``EXECUTION_ENDED_WITHOUT_STATUS``); or, for
  an image that has renditions (a reprocess, a crops-only run), PROCESSED on them again with that error as
  ``reprocessError``. An Express execution is over after 5 minutes, so its image is judged by age alone (no
  DescribeExecution).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from image_pipeline import keys, trace
from image_pipeline.aws import error_code, is_not_found
from image_pipeline.events import REPROCESS_FAILED
from image_pipeline.records import EXPIRED, FAILED, OWNER, PENDING, PROCESSED, PROCESSING, ImageRepository, now

GRACE = timedelta(seconds=60)
STALE_PROCESSING = timedelta(minutes=16)  # looked at after this; skipped while its execution is RUNNING
EXPIRED_RETENTION = timedelta(days=7)
MARGIN = 10.0  # seconds of the invocation kept back: no item is started with less time left


logger = logging.getLogger(__name__)


@dataclass
class Report:
    expired: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)  # items that could not be repaired this run
    complete: bool = True  # False: the time budget ran out first; the next run goes on

    def as_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "restarted": self.restarted,
            "failed": self.failed,
            "errors": self.errors,
            "complete": self.complete,
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _older_than(repo: ImageRepository, status: str, cutoff: datetime) -> Iterator[dict[str, Any]]:
    return repo.older_than(status, _iso(cutoff))


def run(
    repo: ImageRepository,
    s3,
    sfn,
    bucket: str,
    state_machine_arn: str,
    url_expiry_seconds: int,
    at: datetime | None = None,
    time_left: Callable[[], float] = lambda: float("inf"),
    publish: Callable[[str, dict[str, Any]], None] = lambda status, detail: None,
    give_back: Callable[[str, int], None] = lambda owner, size: None,
    discard: Callable[[str, str], object] = lambda image_id, execution_arn: None,
    configuration: str = "",
) -> Report:
    """One pass; ``time_left()`` (seconds) is checked before each item and the pass stops below ``MARGIN``.
    ``publish(status, detail)`` announces each transition made (events.Publisher: Image Failed, Image Expired);
    ``give_back(owner, bytes)`` returns an expired upload's bytes to its owner's quota (quota.Quotas);
    ``discard(image_id, execution_arn)`` deletes what an execution that ended without a word staged or published
    (workflow.discard_version: its Record failure step never ran); ``configuration`` (Settings.configuration) is
    what a reprocess that ended so is recorded to have tried."""
    at = at or datetime.now(UTC)
    report = Report()

    def repair_processing(item: dict[str, Any]) -> None:
        status = _execution_status(sfn, item.get("executionArn"))
        if status == "RUNNING":
            return
        message = f"the execution ended ({status}) without recording the image's outcome"
        error = {"code": "EXECUTION_ENDED_WITHOUT_STATUS", "message": message}
        kept = repo.keep_serving_if_unchanged(item, error["code"], message, configuration)
        if kept is not None:  # it still serves what it served before the run
            report.failed.append(item["imageId"])
            if item.get("executionArn"):
                discard(item["imageId"], item["executionArn"])
            detail = {"imageId": item["imageId"], "owner": kept.get(OWNER), "status": PROCESSED, "error": error}
            publish(REPROCESS_FAILED, detail)
            return
        record = repo.transition_if_unchanged(item, FAILED, error["code"], message)
        if record is not None:
            report.failed.append(item["imageId"])
            if item.get("executionArn"):
                discard(item["imageId"], item["executionArn"])
            publish(FAILED, {"imageId": item["imageId"], "owner": record.get(OWNER), "status": FAILED, "error": error})

    def repair_pending(item: dict[str, Any]) -> None:
        key = item.get("originalKey") or keys.upload_key(item["imageId"])
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if not is_not_found(e):
                raise
            head = None
        if head is None:
            error = {"code": "UPLOAD_URL_EXPIRED", "message": "the upload URL expired before an upload"}
            record = repo.transition_if_unchanged(
                item,
                EXPIRED,
                error["code"],
                error["message"],
                expires_at=int((at + EXPIRED_RETENTION).timestamp()),
                release_size=True,
            )
            if record is not None:
                report.expired.append(item["imageId"])
                owner = record.get(OWNER)
                if owner:
                    give_back(owner, int(record.get("declaredSize") or 0))
                publish(EXPIRED, {"imageId": item["imageId"], "owner": owner, "status": EXPIRED, "error": error})
        else:
            sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(_object_created(bucket, key, head)))
            report.restarted.append(item["imageId"])

    passes = (
        (PROCESSING, at - STALE_PROCESSING, repair_processing),
        (PENDING, at - timedelta(seconds=url_expiry_seconds) - GRACE, repair_pending),
    )
    for status, cutoff, repair in passes:
        for item in _older_than(repo, status, cutoff):
            if time_left() < MARGIN:
                report.complete = False
                return report
            try:
                repair(item)
            except Exception as e:  # noqa: BLE001 — one item's failure must not stop the others
                logger.exception("could not reconcile %s", item["imageId"])
                report.errors.append({"imageId": item["imageId"], "status": status, "error": type(e).__name__})
    return report


def _execution_status(sfn, execution_arn: str | None) -> str:
    """RUNNING or how it ended. An Express execution cannot be described (its ARN is refused) and runs at most
    5 minutes: one that owns an image PROCESSING for longer than STALE_PROCESSING has ended."""
    if not execution_arn:
        return "UNKNOWN"
    if trace.is_express(execution_arn):
        return "ENDED"
    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"]
    except ClientError as e:
        if error_code(e) in ("ExecutionDoesNotExist", "InvalidArn"):
            return "NOT_FOUND"
        raise


def _object_created(bucket: str, key: str, head: dict) -> dict[str, Any]:
    """The S3 "Object Created" event the workflow would have received."""
    return {
        "version": "0",
        "id": f"reconciler-{int(time.time() * 1000)}",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": now(),
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"')},
            "reason": "Reconciler",
        },
    }
