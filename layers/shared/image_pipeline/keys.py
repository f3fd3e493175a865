"""Object keys and image ids: the server makes them; a client never chooses a key."""

from __future__ import annotations

import hashlib
import re
import uuid

UPLOAD_PREFIX = "uploads/"
RENDITION_PREFIX = "renditions/"
STAGING_PREFIX = "staging/"  # in the work bucket: what Resize hands to Store
RETIRED_PREFIX = "retired/"  # in the work bucket: renditions a reprocess superseded, deleted after a grace period
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


def rendition_prefix(image_id: str) -> str:
    """Every rendition of the image, of every version (and of the unversioned layout before versions): ids are
    fixed-length UUIDs, so the prefix holds this image's objects only."""
    return f"{RENDITION_PREFIX}{image_id}"


def version_of(execution_arn: str) -> str:
    """The rendition version an execution makes: its own, so a retried step writes the same keys and no two
    executions (a reprocess, a backfill) ever write the same key. 16 hex digits of the ARN's SHA-256."""
    return hashlib.sha256(execution_arn.encode()).hexdigest()[:16]


def rendition_key(image_id: str, version: str, box: int | None, extension: str) -> str:
    """A rendition's immutable key: one per image, version, box (``default`` for the rendition outside the set)
    and format. A reprocess writes a new version, so a key's bytes never change once written."""
    return f"{RENDITION_PREFIX}{image_id}/{version}/{'default' if box is None else box}.{extension}"


def profile_key(image_id: str, version: str, profile: str, extension: str) -> str:
    """A fixed-shape profile's rendition: ``renditions/{id}/{version}/{profile}.{ext}`` (profile names start with a
    letter; the set's keys with a digit, the default's with "default")."""
    return f"{RENDITION_PREFIX}{image_id}/{version}/{profile}.{extension}"


def version_prefix(image_id: str, version: str) -> str:
    return f"{RENDITION_PREFIX}{image_id}/{version}/"


def staging_key(image_id: str, version: str) -> str:
    """The staged renditions of one execution (in the work bucket), known to every step from the state."""
    return f"{STAGING_PREFIX}{image_id}/{version}"


def retirement_key(due: int, image_id: str, version: str) -> str:
    """A marker naming renditions to delete once ``due`` (epoch seconds) has passed; listed in due order."""
    return f"{RETIRED_PREFIX}{due:010d}/{image_id}/{version}.json"
