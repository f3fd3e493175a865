"""What the API, the workflow and the CLI agree on, in one small module with no dependencies: an image's statuses,
the content types an upload may declare, the rendition formats, and the API's error codes.

The layer's modules import it as ``image_pipeline.contracts``; so does imgpipe, for which it is the only module of the
layer it takes (its package ships this file alone: pyproject.toml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# ---- an image's status (GET /images/{id} "status")
PENDING = "PENDING"  # an upload URL was handed out
PROCESSING = "PROCESSING"  # one execution owns it
PROCESSED = "PROCESSED"
REJECTED = "REJECTED"  # bad input: the error says why
FAILED = "FAILED"  # the pipeline gave up after retries
EXPIRED = "EXPIRED"  # the upload URL expired unused
DELETED = "DELETED"  # a tombstone: the API answers 404, as for an id it never made
STATUSES = (PENDING, PROCESSING, PROCESSED, REJECTED, FAILED, EXPIRED)  # what an image (not a tombstone) can be
OUTCOMES = (PROCESSED, REJECTED, FAILED)  # how an execution ends an image; a reprocess may start from each
TERMINAL = (*OUTCOMES, EXPIRED)  # nothing is running for it: a waiter stops here (a reprocess or an upload may follow)

# ---- what an upload may declare (POST /upload "contentType"); HEIC/HEIF only while the stack accepts them
UPLOAD_CONTENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/avif",
)
HEIC_CONTENT_TYPES = ("image/heic", "image/heif")
# the Content-Type of each format the engine reads (its names: what ``engine.sniff`` tells from the bytes)
FORMAT_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}

# ---- a rendition's format, as the API names it (GET /download?format=, renditions[].format): its file extension in
# the rendition's key and its Content-Type. "jpeg" is PNG's place for images with alpha.
RENDITION_FORMATS: dict[str, tuple[str, str]] = {
    "avif": ("avif", "image/avif"),
    "webp": ("webp", "image/webp"),
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
}
RENDITION_EXTENSIONS = {name: extension for name, (extension, _) in RENDITION_FORMATS.items()}
RENDITION_CONTENT_TYPES = {name: content_type for name, (_, content_type) in RENDITION_FORMATS.items()}
RENDITION_FIELDS = ("size", "width", "height", "format", "bytes")  # what the API shows of each rendition

# ---- named fixed-shape renditions (RenditionProfiles: "square:400x400:attention,card:1200x630:attention")
CROP_STRATEGIES = ("attention", "entropy", "centre", "focal")
PROFILE_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class Profile:
    """A named fixed-shape rendition: ``width`` x ``height``, cropped by ``strategy`` (CROP_STRATEGIES)."""

    name: str
    width: int
    height: int
    strategy: str = "attention"

    def __str__(self) -> str:
        return f"{self.name}:{self.width}x{self.height}:{self.strategy}"


# ---- what an execution renders: the whole set (an upload, a reprocess, a backfill of a changed set) or only the
# crops (a focal point set with PATCH /images/{id}, a backfill of changed RenditionProfiles). The execution input's
# "scope"; Validate renders the whole set when the image has none to keep.
SCOPE_ALL, SCOPE_CROPS = "all", "crops"
SCOPES = (SCOPE_ALL, SCOPE_CROPS)


def reprocess_event(bucket: str, key: str, etag: str, scope: str = SCOPE_ALL) -> dict[str, Any]:
    """The image pipeline's input that runs an image's original through it again: an S3 "Object Created" event of
    the original with ``"reprocess": true`` (imgpipe reprocess, PATCH /images/{id}; the backfill's state machine
    writes the same in its ASL)."""
    return {
        "source": "image-pipeline.reprocess",
        "detail-type": "Object Created",
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "etag": etag}},
        "reprocess": True,
        "scope": scope,
    }


# ---- the API's error codes ({"error": {"code", "message"}}) and the HTTP status each comes with
ERROR_CODES = {
    "INVALID_JSON": 400,
    "INVALID_REQUEST": 400,
    "INVALID_FOCAL_POINT": 400,
    "MISSING_SIZE": 400,
    "TOO_LARGE": 400,
    "UNSUPPORTED_CONTENT_TYPE": 400,
    "MISSING_IMAGE_ID": 400,
    "INVALID_IMAGE_ID": 400,
    "INVALID_SIZE": 400,
    "INVALID_FORMAT": 400,
    "INVALID_STATUS": 400,
    "INVALID_LIMIT": 400,
    "INVALID_CURSOR": 400,
    "UNAUTHORIZED": 401,
    "INVALID_TOKEN": 401,
    "TOKEN_EXPIRED": 401,
    "ADMIN_ONLY": 403,
    "NOT_FOUND": 404,
    "NO_SUCH_RENDITION": 404,
    "NO_SUCH_PROFILE": 404,
    "WEB_NOT_FOUND": 404,
    "NOT_READY": 409,
    "QUOTA_EXCEEDED": 429,
    "SERVICE_UNAVAILABLE": 503,
}
