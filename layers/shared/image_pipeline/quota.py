"""Per-owner quotas: upload grants per hour and per day, and bytes stored, counted in the usage table.

One item per owner holds the current hour's and day's window (``hour``, ``day``), their grants (``hourGrants``,
``dayGrants``) and the bytes stored (``bytes``). A grant is one conditional UpdateItem (one write unit): it adds to all
three only if the windows are still the current ones and every count stays within its limit, so concurrent grants
never pass a limit and a refused grant counts nothing. When a window has moved on, the counts start again, written
on condition that the item is still what was read (another grant meanwhile: read again). Bytes are counted at the
grant (the URL is signed for exactly that many) and given back when the image is deleted, or when its upload URL
expires unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from botocore.exceptions import ClientError

from image_pipeline.aws import is_conditional_check_failed, transient_errors
from image_pipeline.errors import ApiError

STORAGE_RETRY_SECONDS = 3600  # no window ends for stored bytes: room comes back as the owner deletes images
ATTEMPTS = 8  # a grant that met another one on the same item reads it again, at most this often


@dataclass(frozen=True)
class Limits:
    uploads_per_hour: int
    uploads_per_day: int
    stored_bytes: int


class Quotas:
    """The per-owner counters of the usage table (key ``owner``)."""

    def __init__(self, table, limits: Limits) -> None:
        self.table, self.limits = table, limits

    def take_grant(self, owner: str, size: int, now: datetime | None = None, what: str = "upload URLs") -> None:
        """Count one upload grant of ``size`` bytes for ``owner``, or ApiError 429 QUOTA_EXCEEDED naming the limit.
        A re-render an owner asks for (PATCH /images/{id}) counts as a grant of no bytes: ``what`` it is, in the
        refusal's message."""
        now = now or datetime.now(UTC)
        hour, day = f"{now:%Y-%m-%dT%H}", f"{now:%Y-%m-%d}"
        limits = self.limits
        if size > limits.stored_bytes:
            raise self._exceeded("storedBytes", limits.stored_bytes, now)
        within = (
            Attr("hour").eq(hour)
            & Attr("hourGrants").lt(limits.uploads_per_hour)
            & Attr("day").eq(day)
            & Attr("dayGrants").lt(limits.uploads_per_day)
            & Attr("bytes").lte(limits.stored_bytes - size)
        )
        for _ in range(ATTEMPTS):
            try:  # the usual case: the windows are current
                self._update(owner, "ADD hourGrants :one, dayGrants :one, #b :size", within, {":one": 1, ":size": size})
                return
            except ClientError as e:
                if not is_conditional_check_failed(e):
                    raise
            with transient_errors():
                item = self.table.get_item(Key={"owner": owner}, ConsistentRead=True).get("Item")
            hour_grants = int(item["hourGrants"]) if item and item.get("hour") == hour else 0
            day_grants = int(item["dayGrants"]) if item and item.get("day") == day else 0
            stored = int(item.get("bytes", 0)) if item else 0
            if hour_grants >= limits.uploads_per_hour:
                raise self._exceeded("uploadsPerHour", limits.uploads_per_hour, now, _next_hour(now), what)
            if day_grants >= limits.uploads_per_day:
                raise self._exceeded("uploadsPerDay", limits.uploads_per_day, now, _next_day(now), what)
            if stored + size > limits.stored_bytes:
                raise self._exceeded("storedBytes", limits.stored_bytes, now)
            # a window moved on (or the owner's first grant): start it again, if nobody wrote the item meanwhile
            unchanged = Attr("owner").not_exists() if item is None else _as_read(item)
            try:
                self._update(
                    owner,
                    "SET #h = :hour, hourGrants = :hg, #d = :day, dayGrants = :dg, #b = :bytes",
                    unchanged,
                    {
                        ":hour": hour,
                        ":hg": hour_grants + 1,
                        ":day": day,
                        ":dg": day_grants + 1,
                        ":bytes": stored + size,
                    },
                )
                return
            except ClientError as e:
                if not is_conditional_check_failed(e):
                    raise
        raise ApiError(503, "SERVICE_UNAVAILABLE", "busy counting your quota, retry shortly", retry_after=1)

    def give_back(self, owner: str, size: int) -> None:
        """``size`` bytes of ``owner`` are no longer stored (deleted, or never uploaded); never below zero."""
        if size <= 0:
            return
        try:
            with transient_errors():
                self.table.update_item(
                    Key={"owner": owner},
                    UpdateExpression="ADD #b :minus",
                    ConditionExpression=Attr("bytes").gte(size),
                    ExpressionAttributeNames={"#b": "bytes"},
                    ExpressionAttributeValues={":minus": -size},
                )
        except ClientError as e:
            # fewer bytes are counted than this (an upload that arrived after its URL expired was never counted
            # again): the counter stays as it is rather than go below zero and lend the owner room
            if not is_conditional_check_failed(e):
                raise

    def _update(self, owner: str, expression: str, condition, values: dict[str, Any]) -> None:
        names = {k: v for k, v in (("#h", "hour"), ("#d", "day"), ("#b", "bytes")) if k in expression}
        with transient_errors():
            self.table.update_item(
                Key={"owner": owner},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
            )

    @staticmethod
    def _exceeded(
        limit_name: str, limit: int, now: datetime, window_end: datetime | None = None, what: str = "upload URLs"
    ) -> ApiError:
        if window_end is None:
            retry_after = STORAGE_RETRY_SECONDS
            message = f"quota {limit_name} reached: at most {limit} bytes stored (delete images to make room)"
        else:
            retry_after = max(1, int((window_end - now).total_seconds()))
            message = f"quota {limit_name} reached: at most {limit} {what}"
        return ApiError(429, "QUOTA_EXCEEDED", message, retry_after=retry_after, limit=limit_name, quota=limit)


def _as_read(item: dict[str, Any]) -> ConditionBase:
    """The condition that the item is still what was read (its windows and counts)."""
    condition: ConditionBase = Attr("owner").eq(item["owner"])
    for name in ("hour", "hourGrants", "day", "dayGrants", "bytes"):
        condition = condition & (Attr(name).eq(item[name]) if name in item else Attr(name).not_exists())
    return condition


def _next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _next_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
