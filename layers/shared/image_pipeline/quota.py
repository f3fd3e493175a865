"""Per-owner quotas: upload grants per hour and per day, and bytes stored, counted in the usage table.

A grant takes one of each window's count and its bytes in one DynamoDB transaction whose every write is conditional
on staying within its limit: concurrent grants never pass a limit (none is counted unless all three fit). Bytes are
counted at the grant (the URL is signed for exactly that many) and given back when the image is deleted, or when its
upload URL expires unused.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from image_pipeline.aws import transient_errors
from image_pipeline.errors import ApiError

CONFLICT_ATTEMPTS = 5  # a grant whose transaction met another on the same counters is tried again, this often
STORAGE_RETRY_SECONDS = 3600  # no window ends for stored bytes: room comes back as the owner deletes images


@dataclass(frozen=True)
class Limits:
    uploads_per_hour: int
    uploads_per_day: int
    stored_bytes: int


def _window_end(now: datetime, hours: int) -> datetime:
    if hours == 1:
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


class Quotas:
    """The counters of the usage table (key: ``owner``, ``period``): ``h#2026-12-07T13`` and ``d#2026-12-07`` hold a
    window's ``grants`` (kept a day past the window, by TTL), ``bytes`` the owner's stored ``bytes``."""

    def __init__(self, table, limits: Limits) -> None:
        self.table, self.limits = table, limits
        self.client = (
            table.meta.client
        )  # a resource's client: it takes and gives plain Python values, as the table does

    def take_grant(self, owner: str, size: int, now: datetime | None = None) -> None:
        """Count one upload grant of ``size`` bytes for ``owner``, or ApiError 429 QUOTA_EXCEEDED naming the limit."""
        now = now or datetime.now(UTC)
        hour_end, day_end = _window_end(now, 1), _window_end(now, 24)
        windows = [
            ("uploadsPerHour", f"h#{now:%Y-%m-%dT%H}", self.limits.uploads_per_hour, hour_end),
            ("uploadsPerDay", f"d#{now:%Y-%m-%d}", self.limits.uploads_per_day, day_end),
        ]
        if size > self.limits.stored_bytes:
            raise self._exceeded("storedBytes", self.limits.stored_bytes, now, None)
        writes = [
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"owner": owner, "period": period},
                    "UpdateExpression": "ADD grants :one SET expiresAt = :ttl",
                    "ConditionExpression": "attribute_not_exists(grants) OR grants < :limit",
                    "ExpressionAttributeValues": {
                        ":one": 1,
                        ":limit": limit,
                        ":ttl": int((end + timedelta(days=1)).timestamp()),
                    },
                }
            }
            for _, period, limit, end in windows
        ]
        writes.append(
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"owner": owner, "period": "bytes"},
                    "UpdateExpression": "ADD #b :size",
                    "ConditionExpression": "attribute_not_exists(#b) OR #b <= :room",
                    "ExpressionAttributeNames": {"#b": "bytes"},
                    "ExpressionAttributeValues": {":size": size, ":room": self.limits.stored_bytes - size},
                }
            }
        )
        names = [(name, limit, end) for name, _, limit, end in windows] + [
            ("storedBytes", self.limits.stored_bytes, None)
        ]
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                with transient_errors():
                    self.client.transact_write_items(TransactItems=writes)
                return
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in e.response.get("CancellationReasons") or []]
            failed = [n for n, code in zip(names, reasons, strict=False) if code == "ConditionalCheckFailed"]
            if failed:
                name, limit, end = failed[0]
                raise self._exceeded(name, limit, now, end)
            # cancelled by another transaction on the same counters (TransactionConflict): again, after a moment
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise ApiError(503, "SERVICE_UNAVAILABLE", "busy counting your quota, retry shortly", retry_after=1)

    def give_back(self, owner: str, size: int) -> None:
        """``size`` bytes of ``owner`` are no longer stored (deleted, or never uploaded)."""
        if size <= 0:
            return
        with transient_errors():
            self.table.update_item(
                Key={"owner": owner, "period": "bytes"},
                UpdateExpression="ADD #b :minus",
                ExpressionAttributeNames={"#b": "bytes"},
                ExpressionAttributeValues={":minus": -size},
            )

    @staticmethod
    def _exceeded(limit_name: str, limit: int, now: datetime, window_end: datetime | None) -> ApiError:
        retry_after = STORAGE_RETRY_SECONDS if window_end is None else max(1, int((window_end - now).total_seconds()))
        what = "bytes stored" if window_end is None else "upload URLs"
        return ApiError(
            429,
            "QUOTA_EXCEEDED",
            f"quota {limit_name} reached: at most {limit} {what}"
            + (" (delete images to make room)" if window_end is None else ""),
            retry_after=retry_after,
            limit=limit_name,
            quota=limit,
        )
