"""Object keys and image ids: the server makes them; a client never chooses a key."""

from __future__ import annotations

import re
import uuid

UPLOAD_PREFIX = "uploads/"
RENDITION_PREFIX = "renditions/"
# Objects put straight into the bucket (not through POST /upload) get an id derived from what they are,
# so a duplicate event for the same object maps to the same image.
_DIRECT_NAMESPACE = uuid.UUID("6f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a10")
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_image_id() -> str:
    return str(uuid.uuid4())


def is_image_id(value: str | None) -> bool:
    return value is not None and _ID.fullmatch(value) is not None  # the whole string: "…\n" is not an id


def upload_key(image_id: str) -> str:
    return f"{UPLOAD_PREFIX}{image_id}"


def image_id_for(bucket: str, key: str, etag: str) -> str:
    """The image id of an object: from its key when it came through POST /upload, else derived from it."""
    if key.startswith(UPLOAD_PREFIX) and is_image_id(key[len(UPLOAD_PREFIX) :]):
        return key[len(UPLOAD_PREFIX) :]
    etag = etag.strip('"')
    return str(uuid.uuid5(_DIRECT_NAMESPACE, f"s3://{bucket}/{key}#{etag}"))


def rendition_key(image_id: str, extension: str) -> str:
    return f"{RENDITION_PREFIX}{image_id}.{extension}"


def set_rendition_key(image_id: str, box: int, extension: str) -> str:
    """A rendition of the responsive set: one key per image, box and format."""
    return f"{RENDITION_PREFIX}{image_id}/{box}.{extension}"
