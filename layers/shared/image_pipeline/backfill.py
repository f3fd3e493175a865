"""The backfill's manifest: the images to re-render after RenditionSizes, RenditionFormats, MaxDimension or
RenditionProfiles changed.

The first step of the backfill state machine. It walks the byUploadTime index from the oldest image uploaded before
the run started (images uploaded later are rendered with the configuration already) and keeps the PROCESSED ones whose
recorded ``renditionSet`` or ``profileSet`` is not the configured one (records.ImageRepository.to_re_render). It
writes them as one JSON array of ``{imageId, key, etag, scope}`` to the work bucket at
``backfill/{run}/manifest.json``, which the state machine's Distributed Map reads (ItemReader) and runs through the
image pipeline, one child execution per image: the whole set (``scope`` "all") when the set changed, else only the
crops ("crops": the missing ones rendered, the removed ones pruned, the rest kept).

One call reads pages until its time is nearly spent (``MARGIN_SECONDS`` left) and returns where it stopped (``next``);
the state machine calls again with what it returned (the ``state`` argument) until the index is read to its end. The array is one S3
multipart upload across those calls: a part goes up whenever ``PART_BYTES`` are buffered, and a call that stops early
uploads what it holds as a part of its own. S3 takes a part under 5 MiB only as the last one, so such a part is padded
with spaces (JSON whitespace between two items) to that size. A retried call starts again from the same state and
uploads the same part numbers again (S3 keeps the last upload of a number), so retries write no item twice.

Bounds: the parts' numbers and ETags travel in the state (``MAX_PARTS``, ~60 bytes each, far under the 256 KiB a
state holds): 1,000 parts of 8 MiB, ~50 million images of ~150 bytes each; past that ManifestTooLargeError. A call
reads ~1 MB of the index per request whatever the filter keeps; the calls go on until the index ends, so the number
of images bounds only the run's time, not its success.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from image_pipeline.aws import transient_errors
from image_pipeline.config import Settings
from image_pipeline.contracts import SCOPE_ALL, SCOPE_CROPS
from image_pipeline.errors import ManifestTooLargeError
from image_pipeline.records import ImageRepository

PREFIX = "backfill/"
PART_BYTES = 8 * 1024 * 1024  # a part goes up once this much is buffered
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's least size of a part that is not the last one
MAX_PARTS = 1000
MARGIN_SECONDS = 30.0  # no page is read with less time left in the call (a page and a part upload take ~1 s)


def manifest_key(run: str) -> str:
    return f"{PREFIX}{run}/manifest.json"


def results_prefix(run: str) -> str:
    """Where the Distributed Map's ResultWriter puts the run's results (under a folder named by the Map Run)."""
    return f"{PREFIX}{run}/results"


class _Upload:
    """The manifest's multipart upload: the parts uploaded so far, and the text not uploaded yet."""

    def __init__(self, s3, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self.s3, self.bucket, self.key, self.upload_id = s3, bucket, key, upload_id
        self.parts = list(parts)
        self.pending: list[str] = []
        self.pending_bytes = 0

    def add(self, text: str) -> None:
        self.pending.append(text)
        self.pending_bytes += len(text)  # ASCII: json.dumps escapes the rest
        if self.pending_bytes >= PART_BYTES:
            self.flush()

    def flush(self, last: bool = False) -> None:
        """Upload what is pending as the next part; a part that is not the last is padded to S3's least size."""
        if not self.pending and not last:
            return
        if len(self.parts) >= MAX_PARTS:
            raise ManifestTooLargeError(
                f"the manifest needs more than {MAX_PARTS} parts of {PART_BYTES // 2**20} MiB: too many images to"
                " re-render in one run"
            )
        body = "".join(self.pending)
        if not last:
            body = body.ljust(MIN_PART_BYTES)
        number = len(self.parts) + 1
        with transient_errors():
            etag = self.s3.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body.encode()
            )["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})
        self.pending, self.pending_bytes = [], 0

    def complete(self) -> None:
        with transient_errors():
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
            )


def write_manifest(
    repo: ImageRepository,
    s3,
    bucket: str,
    run: str,
    before: str,
    settings: Settings,
    state: dict[str, Any] | None = None,
    time_left: Callable[[], float] = lambda: float("inf"),
    page_size: int | None = None,
) -> dict[str, Any]:
    """Go on writing run ``run``'s manifest from ``state`` (None or {} to begin; else what the previous call returned).

    Returns ``bucket``, ``key``, ``resultsPrefix``, ``count`` (images listed so far), ``done``, and ``next``: None
    when done, else what the next call goes on from (``uploadId``, ``parts``, ``cursor``: the index key after the last
    page read). ``page_size`` limits the index entries read per request (tests); None reads DynamoDB's 1 MB pages."""
    state = state or {}
    key = manifest_key(run)
    count = int(state.get("count") or 0)
    going_on = state.get("next") or {}
    cursor = going_on.get("cursor")
    upload_id = going_on.get("uploadId")
    if not upload_id:
        with transient_errors():
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/json")["UploadId"]
    upload = _Upload(s3, bucket, key, upload_id, going_on.get("parts") or [])
    if not upload.parts:
        upload.add("[")
    while True:
        items, cursor = repo.to_re_render(
            before, settings.rendition_set, cursor, page_size, settings.profile_set, settings.configuration
        )
        for item in items:
            # the whole set when it changed; else only the crops (missing ones rendered, removed ones pruned)
            scope = SCOPE_CROPS if item.get("renditionSet") == settings.rendition_set else SCOPE_ALL
            entry = {
                "imageId": item["imageId"],
                "key": item["originalKey"],
                "etag": item.get("etag", ""),
                "scope": scope,
            }
            upload.add(("," if count else "") + json.dumps(entry, separators=(",", ":")))
            count += 1
        listed = {"bucket": bucket, "key": key, "resultsPrefix": results_prefix(run), "count": count}
        if cursor is None:
            upload.add("]")
            upload.flush(last=True)
            upload.complete()
            return {**listed, "done": True, "next": None}
        if time_left() < MARGIN_SECONDS:
            upload.flush()
            return {**listed, "done": False, "next": {"uploadId": upload_id, "parts": upload.parts, "cursor": cursor}}
