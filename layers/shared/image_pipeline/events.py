"""Completion events on the stack's EventBridge bus (source ``image-pipeline``), for the transitions that happen
outside the state machine (the reconciler's EXPIRED and FAILED, the API's DELETED); the state machine publishes its own."""

from __future__ import annotations

import json
from typing import Any

from image_pipeline.aws import transient_errors
from image_pipeline.errors import TransientAWSError
from image_pipeline.records import DELETED, EXPIRED, FAILED, PROCESSED, REJECTED

SOURCE = "image-pipeline"
DETAIL_TYPES = {
    PROCESSED: "Image Processed",
    REJECTED: "Image Rejected",
    FAILED: "Image Failed",
    EXPIRED: "Image Expired",
    DELETED: "Image Deleted",
}

REPROCESS_FAILED = "Image Reprocess Failed"  # the image stays PROCESSED on its earlier renditions (reprocessError)


def detail_type(status: str) -> str:
    """The detail-type of an event that announces ``status`` (or REPROCESS_FAILED, which is its own)."""
    return REPROCESS_FAILED if status == REPROCESS_FAILED else DETAIL_TYPES[status]


class Publisher:
    """Puts one event per call on ``bus`` (an EventBridge client); a rejected entry is a TransientAWSError."""

    def __init__(self, client, bus: str) -> None:
        self.client, self.bus = client, bus

    def __call__(self, status: str, detail: dict[str, Any]) -> None:
        entry = {
            "EventBusName": self.bus,
            "Source": SOURCE,
            "DetailType": detail_type(status),
            "Detail": json.dumps(detail),
        }
        with transient_errors():
            result = self.client.put_events(Entries=[entry])
        if result.get("FailedEntryCount"):
            raise TransientAWSError(f"EventBridge refused the event: {result['Entries'][0].get('ErrorCode')}")
