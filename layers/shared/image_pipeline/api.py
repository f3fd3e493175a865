"""The HTTP API's logic: upload URLs, status, listing, deletion, download URLs and srcsets, each for a verified
``Caller``. An image is its owner's: for anyone else but an admin it answers as an unknown id does (404), so that
its existence does not leak. Errors are ApiError(status, code, message)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from image_pipeline import contracts, keys, purge, trace
from image_pipeline.auth import Caller
from image_pipeline.config import Settings
from image_pipeline.errors import ApiError, ConfigError
from image_pipeline.quota import Quotas
from image_pipeline.records import (
    DELETED,
    EXPIRED,
    FAILED,
    GALLERY,
    GALLERY_KEY,
    LISTED_OWNER,
    OWNER,
    PROCESSED,
    PROCESSING,
    REJECTED,
    STATUSES,
    ImageRepository,
    focal_point,
    plain,
)

ACCEPTED_CONTENT_TYPES = contracts.UPLOAD_CONTENT_TYPES
HEIC_CONTENT_TYPES = contracts.HEIC_CONTENT_TYPES


@dataclass(frozen=True)
class UploadRequest:
    filename: str | None
    content_type: str | None
    size: int

    @classmethod
    def parse(cls, body: Any, settings: Settings) -> UploadRequest:
        """The request of POST /upload. ``size`` is required: it is signed into the URL as Content-Length, so S3
        itself refuses any other number of bytes and no URL admits more than MaxUploadBytes."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_REQUEST", "the body must be a JSON object")
        filename, content_type, size = body.get("filename"), body.get("contentType"), body.get("size")
        if filename is not None and (not isinstance(filename, str) or len(filename) > 255):
            raise ApiError(400, "INVALID_REQUEST", "filename must be a string of at most 255 characters")
        accepted = accepted_content_types(settings)
        if content_type is not None and (not isinstance(content_type, str) or content_type.lower() not in accepted):
            raise ApiError(400, "UNSUPPORTED_CONTENT_TYPE", f"contentType must be one of {', '.join(accepted)}")
        if size is None:
            raise ApiError(
                400, "MISSING_SIZE", "size (the file's length in bytes) is required: the URL is signed for it"
            )
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ApiError(400, "INVALID_REQUEST", "size must be a positive integer (bytes)")
        if size > settings.max_upload_bytes:
            raise ApiError(400, "TOO_LARGE", f"size {size} is over the limit of {settings.max_upload_bytes} bytes")
        return cls(filename, content_type.lower() if content_type else None, size)


def accepted_content_types(settings: Settings) -> tuple[str, ...]:
    if settings.accept_heic:
        return ACCEPTED_CONTENT_TYPES
    return tuple(t for t in ACCEPTED_CONTENT_TYPES if t not in HEIC_CONTENT_TYPES)


def create_upload(
    s3, repo: ImageRepository, quotas: Quotas, settings: Settings, caller: Caller, request: UploadRequest
) -> dict[str, Any]:
    """A new image of ``caller`` and a URL to PUT its original to, once: the URL is signed with ``If-None-Match: *``,
    so S3 refuses a second PUT to the key (412) and no second execution starts. Counted against the caller's quotas
    first (429 QUOTA_EXCEEDED)."""
    quotas.take_grant(caller.sub, request.size)
    image_id = keys.new_image_id()
    key = keys.upload_key(image_id)
    try:
        repo.create_pending(image_id, key, request.filename, request.content_type, caller.sub, request.size)
    except Exception:
        quotas.give_back(caller.sub, request.size)  # no record: nothing else would ever give these bytes back
        raise
    params: dict[str, Any] = {
        "Bucket": settings.original_bucket,
        "Key": key,
        "ContentLength": request.size,
        "IfNoneMatch": "*",
    }
    headers: dict[str, str] = {"Content-Length": str(request.size), "If-None-Match": "*"}
    if request.content_type:
        params["ContentType"] = headers["Content-Type"] = request.content_type
    url = s3.generate_presigned_url("put_object", Params=params, ExpiresIn=settings.url_expiry_seconds)
    return {
        "imageId": image_id,
        "uploadUrl": url,
        "method": "PUT",
        "headers": headers,
        "expiresIn": settings.url_expiry_seconds,
        "maxBytes": settings.max_upload_bytes,
    }


def _is_number(text: str) -> bool:
    """Digits 0-9 only (str.isdigit alone also takes "²", which int() refuses)."""
    return text.isascii() and text.isdigit()


def checked_id(image_id: str | None) -> str:
    if not image_id:
        raise ApiError(400, "MISSING_IMAGE_ID", "imageId is required")
    if not keys.is_image_id(image_id):
        raise ApiError(400, "INVALID_IMAGE_ID", "imageId must be a UUID")
    return image_id


def visible_to(caller: Caller, record: dict[str, Any]) -> bool:
    return caller.admin or record.get(OWNER) == caller.sub


def _record(repo: ImageRepository, caller: Caller, image_id: str | None) -> dict[str, Any]:
    record = repo.get(checked_id(image_id))
    if record is None or not visible_to(caller, record):  # another's image answers as an unknown one does
        raise ApiError(404, "NOT_FOUND", "no such image")
    if record["status"] == DELETED:
        raise ApiError(404, "NOT_FOUND", "the image was deleted")
    return record


def get_image(repo: ImageRepository, caller: Caller, image_id: str | None) -> dict[str, Any]:
    return to_api(_record(repo, caller, image_id), caller)


MAX_PAGE = 100
DEFAULT_PAGE = 20


def list_images(
    repo: ImageRepository,
    caller: Caller,
    status: str | None,
    limit: str | None,
    cursor: str | None,
    owner: str | None = None,
    everyone: str | None = None,
) -> dict[str, Any]:
    """GET /images: the caller's images, newest first by upload time, of one ``status`` if given, at most ``limit``
    (1-100) per page; ``cursor`` is the previous page's, opaque to the client. A page filtered by a rare status may
    hold fewer images (ImageRepository.newest): go on while there is a cursor. An admin may list another ``owner``'s
    images, or everyone's (``everyone`` "true")."""
    if everyone not in (None, "true", "false"):
        raise ApiError(400, "INVALID_REQUEST", "all must be true or false")
    listed: str | None = caller.sub
    if everyone == "true" or (owner is not None and owner != caller.sub):
        if not caller.admin:
            raise ApiError(403, "ADMIN_ONLY", "only an admin lists other owners' images")
        listed = None if everyone == "true" else owner
    if listed is not None and not 0 < len(listed) <= 128:
        raise ApiError(400, "INVALID_REQUEST", "owner must be an owner id")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "INVALID_STATUS", f"status must be one of {', '.join(STATUSES)}")
    page_size = DEFAULT_PAGE
    if limit is not None:
        if not _is_number(limit) or not 1 <= int(limit) <= MAX_PAGE:
            raise ApiError(400, "INVALID_LIMIT", f"limit must be a whole number from 1 to {MAX_PAGE}")
        page_size = int(limit)
    start = _decode_cursor(cursor, listed, status) if cursor else None
    items, last = repo.newest(listed, status, page_size, start)
    return {
        "images": [to_api(item, caller) for item in items],
        "cursor": _encode_cursor(last, status) if last else None,
    }


# A cursor is the index position where a page stopped (these attributes, all strings: the byOwner index's, or for
# everyone's images the byUploadTime index's) and the status the listing was filtered by ("*": none): a cursor of one
# listing, or of another owner's, is refused by another.
_CURSOR_FIELDS = {"imageId", "uploadTimestamp"}
_ANY_STATUS = "*"


def _encode_cursor(last_key: dict[str, Any], status: str | None) -> str:
    position = {**last_key, "listing": status or _ANY_STATUS}
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, owner: str | None, status: str | None) -> dict[str, Any]:
    invalid = ApiError(400, "INVALID_CURSOR", "cursor is not one this API returned for this listing")
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise invalid from None
    partition = {GALLERY_KEY: GALLERY} if owner is None else {LISTED_OWNER: owner}
    if not isinstance(key, dict) or set(key) != _CURSOR_FIELDS | set(partition) | {"listing"}:
        raise invalid
    if not all(isinstance(v, str) for v in key.values()) or key.pop("listing") != (status or _ANY_STATUS):
        raise invalid
    if any(key[k] != v for k, v in partition.items()):
        raise invalid
    return key


def get_trace(
    sfn, repo: ImageRepository, caller: Caller, image_id: str | None, logs=None, log_group: str | None = None
) -> dict[str, Any]:
    """GET /images/{id}/trace: the timelines of the image's executions (image_pipeline.trace; an Express
    execution's from the state machine's log group)."""
    record = _record(repo, caller, image_id)
    arns = sorted(
        set(record.get("executions") or []) | ({record["executionArn"]} if record.get("executionArn") else set())
    )
    uploaded = record.get("uploadTimestamp")
    since = datetime.fromisoformat(uploaded.replace("Z", "+00:00")) if uploaded else None
    executions = trace.image_trace(sfn, arns, logs=logs, log_group=log_group, since=since)
    return {"imageId": record["imageId"], "status": record["status"], "executions": executions}


def delete_image(
    s3,
    repo: ImageRepository,
    quotas: Quotas,
    settings: Settings,
    caller: Caller,
    image_id: str | None,
    publish: Callable[[str, dict], None] | None,
) -> None:
    """DELETE /images/{id}: the record becomes a tombstone first (no execution can write the image after that, and
    a late upload of it is refused and deleted by Validate), then every version of the original, every rendition and
    anything staged go; ``Image Deleted`` is published once. Idempotent: a deleted image is deleted again (in case an
    earlier call stopped half-way) and answers the same; an id never issued, or another owner's (unless the caller is
    an admin), is 404 and nothing is written. The bytes the image held are given back to its owner's quota once."""
    old = repo.delete(checked_id(image_id), None if caller.admin else caller.sub)
    if old is None:
        raise ApiError(404, "NOT_FOUND", "no such image")
    if old["status"] != DELETED and old.get(OWNER):
        quotas.give_back(old[OWNER], int(old.get("declaredSize") or 0))
    purge.delete_original(s3, settings.original_bucket, old.get("originalKey") or keys.upload_key(old["imageId"]))
    purge.delete_renditions(s3, settings.processed_bucket, old["imageId"])
    if publish is not None and not old.get("deletionAnnounced"):
        publish(
            DELETED,
            {"imageId": old["imageId"], "owner": old.get(OWNER), "status": DELETED, "previousStatus": old["status"]},
        )
        repo.mark_announced(old["imageId"])


def set_focal_point(
    repo: ImageRepository,
    quotas: Quotas,
    settings: Settings,
    caller: Caller,
    image_id: str | None,
    body: Any,
    start: Callable[[dict[str, Any]], str],
) -> tuple[int, dict[str, Any]]:
    """PATCH /images/{id} ``{"focalPoint": {"x", "y"}}`` (0-1 of the upright image; null clears it): the owner's
    (or an admin's) focal point of a PROCESSED image, on which its crops then centre. When RenditionProfiles has
    crops and they were made with another focal point, ``start(execution input)`` starts a crops-only run (its
    execution's name is ``rendering``; the image is PROCESSING until it ends, its renditions served meanwhile):
    202. Else nothing is rendered: 200. Not PROCESSED (in flight, failed): 409 NOT_READY.

    A run counts as one upload grant (of no bytes) against the caller's UploadsPerHour and UploadsPerDay, so that
    nobody starts renders without bound: 429 QUOTA_EXCEEDED, with the point saved (PATCH again later to render
    it). A run that could not be started (503) leaves the point saved too: the same PATCH again starts it."""
    record = _record(repo, caller, image_id)
    focal = _focal_of(body)
    updated = None
    if record["status"] == PROCESSED:
        updated = repo.set_focal_point(record["imageId"], None if caller.admin else caller.sub, focal)
    if updated is None:  # not PROCESSED, or it moved on since it was read (a run claimed it)
        current = repo.get(record["imageId"]) or record
        raise ApiError(
            409,
            "NOT_READY",
            "a focal point is set on a PROCESSED image: wait until it is no longer in flight",
            status=current["status"],
        )
    rendering = None
    if settings.rendition_profiles and focal_point(updated.get("focalRendered")) != focal_point(
        updated.get("focalPoint")
    ):
        event = contracts.reprocess_event(
            settings.original_bucket, updated["originalKey"], str(updated.get("etag") or ""), contracts.SCOPE_CROPS
        )
        quotas.take_grant(caller.sub, 0, what="upload URLs and re-renders")
        rendering = trace.execution_name(start(event))
    return (202 if rendering else 200), {**to_api(updated, caller), "rendering": rendering}


def _focal_of(body: Any) -> tuple[float, float] | None:
    """The focal point of a PATCH body: {"focalPoint": {"x": 0-1, "y": 0-1}} or {"focalPoint": null}."""
    if not isinstance(body, dict) or set(body) != {"focalPoint"}:
        raise ApiError(400, "INVALID_REQUEST", 'send {"focalPoint": {"x": 0-1, "y": 0-1}}, or {"focalPoint": null}')
    point = body["focalPoint"]
    if point is None:
        return None
    if (
        not isinstance(point, dict)
        or set(point) != {"x", "y"}
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point.values())
        or not all(0 <= v <= 1 for v in point.values())  # NaN fails this too
    ):
        raise ApiError(
            400,
            "INVALID_FOCAL_POINT",
            "focalPoint must be {x, y}, each a number from 0 to 1 (a fraction of the upright image's width, height)",
        )
    return round(float(point["x"]), 6), round(float(point["y"]), 6)  # a millionth of the image is plenty


DOWNLOAD_FORMATS = ("avif", "webp", "jpeg", "png", "auto")
CONTENT_TYPES = contracts.RENDITION_CONTENT_TYPES
AUTO_PREFERENCE = ("avif", "webp")  # then the JPEG/PNG of the size, which every browser shows


def _servable(repo: ImageRepository, caller: Caller, image_id: str | None) -> dict[str, Any]:
    """The record of an image that has renditions: PROCESSED, or being reprocessed (its renditions stay served
    until the new ones replace them); else the image's error (422) or NOT_READY (409)."""
    record = _record(repo, caller, image_id)
    status = record["status"]
    if status == PROCESSED or (status == PROCESSING and record.get("processed")):
        return record
    if status in (REJECTED, FAILED, EXPIRED):
        error = plain(record.get("error")) or {"code": status, "message": "the image has no rendition"}
        raise ApiError(422, error["code"], error["message"], status=status)
    raise ApiError(409, "NOT_READY", "the image is not processed yet", status=status)


CdnUrl = Callable[[str], str]  # a rendition's key -> its signed CloudFront URL (image_pipeline.cdn)


def _presign(s3, settings: Settings, key: str, cdn: CdnUrl | None) -> str:
    """A URL of a rendition, valid for URL_EXPIRY_SECONDS: the CloudFront distribution's, signed (EnableCdn), or a
    presigned GET of the bucket."""
    if settings.cdn_domain:
        if cdn is None:
            raise ConfigError("EnableCdn: the API function has no CDN URL signer")
        return cdn(quote(key))
    return s3.generate_presigned_url(
        "get_object", ExpiresIn=settings.url_expiry_seconds, Params={"Bucket": settings.processed_bucket, "Key": key}
    )


def download(
    s3,
    repo: ImageRepository,
    settings: Settings,
    caller: Caller,
    image_id: str | None,
    size: str | None = None,
    format: str | None = None,
    accept: str | None = None,
    cdn: CdnUrl | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """A presigned URL of one rendition: without ``size`` and ``format`` the default one (MaxDimension, the
    input's family); else the set's rendition of that box (``size``; default: the box of MaxDimension) in
    ``format`` (default ``auto``: AVIF if ``accept`` allows it, else WebP, else JPEG/PNG); with ``profile``, that
    fixed-shape profile's rendition in ``format`` (404 NO_SUCH_PROFILE names the image's profiles)."""
    fmt = (format or "").lower() or None
    if fmt is not None and fmt not in DOWNLOAD_FORMATS:
        raise ApiError(400, "INVALID_FORMAT", f"format must be one of {', '.join(DOWNLOAD_FORMATS)}")
    if profile is not None:
        if size is not None:
            raise ApiError(400, "INVALID_REQUEST", "size and profile are exclusive: a profile has its own shape")
        return _download_profile(s3, repo, settings, caller, image_id, profile, fmt, accept, cdn)
    box = None
    if size is not None:
        if not _is_number(size) or not 0 < int(size) <= 100_000:
            raise ApiError(400, "INVALID_SIZE", "size must be a positive number of pixels (a box of the set)")
        box = int(size)
    record = _servable(repo, caller, image_id)
    result = {"imageId": record["imageId"], "expiresIn": settings.url_expiry_seconds}
    if box is None and fmt is None:
        processed = plain(record["processed"])
        return {"downloadUrl": _presign(s3, settings, processed["key"], cdn), **result}
    renditions = plain(record.get("renditions") or [])
    if box is None:  # the box holding the default size, else the largest there is
        boxes = sorted({r["size"] for r in renditions})
        box = next((b for b in boxes if b >= settings.max_dimension), boxes[-1] if boxes else 0)
    of_box = {r["format"]: r for r in renditions if r["size"] == box}
    chosen = pick_format(of_box, fmt or "auto", accept)
    if chosen is None:
        available = ", ".join(f"{r['size']}/{r['format']}" for r in renditions) or "none"
        raise ApiError(404, "NO_SUCH_RENDITION", f"no {fmt or 'auto'} rendition of size {box}; there are: {available}")
    rendition = of_box[chosen]
    return {
        "downloadUrl": _presign(s3, settings, rendition["key"], cdn),
        **result,
        **{k: rendition[k] for k in ("size", "format", "width", "height", "bytes")},
        "contentType": CONTENT_TYPES[rendition["format"]],
    }


def _download_profile(
    s3,
    repo: ImageRepository,
    settings: Settings,
    caller: Caller,
    image_id: str | None,
    profile: str,
    fmt: str | None,
    accept: str | None,
    cdn: CdnUrl | None,
) -> dict[str, Any]:
    record = _servable(repo, caller, image_id)
    profiles = plain(record.get("profiles") or {})
    if profile not in profiles:
        there = sorted(profiles)
        raise ApiError(
            404,
            "NO_SUCH_PROFILE",
            f"no profile {profile[:40]!r}; this image has: {', '.join(there) or 'none'}",
            profiles=there,
        )
    of_format = {r["format"]: r for r in profiles[profile]}
    chosen = pick_format(of_format, fmt or "auto", accept)
    if chosen is None:
        raise ApiError(
            404, "NO_SUCH_RENDITION", f"no {fmt} rendition of profile {profile}; there are: {', '.join(of_format)}"
        )
    rendition = of_format[chosen]
    return {
        "downloadUrl": _presign(s3, settings, rendition["key"], cdn),
        "imageId": record["imageId"],
        "expiresIn": settings.url_expiry_seconds,
        "profile": profile,
        **{k: rendition[k] for k in ("format", "width", "height", "bytes")},
        "contentType": CONTENT_TYPES[rendition["format"]],
    }


def pick_format(available: dict[str, Any], fmt: str, accept: str | None) -> str | None:
    """The format to serve among ``available``: ``fmt`` itself, or for ``auto`` the best the Accept header allows."""
    if fmt != "auto":
        return fmt if fmt in available else None
    accepted = _accepted_types(accept)
    for name in AUTO_PREFERENCE:
        if name in available and CONTENT_TYPES[name] in accepted:
            return name
    return next((name for name in ("jpeg", "png") if name in available), None)


def _accepted_types(accept: str | None) -> set[str]:
    """Media types an Accept header allows (q > 0); wildcards do not count for AVIF/WebP, which a browser names."""
    types = set()
    for part in (accept or "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = next((p[2:] for p in params if p.replace(" ", "").startswith("q=")), "1")
        try:
            weight = float(q)
        except ValueError:
            weight = 1.0
        if media and weight > 0:
            types.add(media.lower())
    return types


def srcset(
    s3, repo: ImageRepository, settings: Settings, caller: Caller, image_id: str | None, cdn: CdnUrl | None = None
) -> dict[str, Any]:
    """Per format (the configured preference order), a srcset of presigned URLs ready for <picture><source>, the
    default rendition as the <img> fallback, and the placeholder; and the same for each fixed-shape profile."""
    record = _servable(repo, caller, image_id)
    order = [f for f in settings.rendition_formats if f != "jpeg"] + ["jpeg", "png"]

    def sources_of(renditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sources = []
        for fmt in sorted(
            {r["format"] for r in renditions}, key=lambda f: order.index(f) if f in order else len(order)
        ):
            of_format = sorted((r for r in renditions if r["format"] == fmt), key=lambda r: r["width"])
            sources.append(
                {
                    "format": fmt,
                    "type": CONTENT_TYPES[fmt],
                    "srcset": ", ".join(f"{_presign(s3, settings, r['key'], cdn)} {r['width']}w" for r in of_format),
                }
            )
        return sources

    sources = sources_of(plain(record.get("renditions") or []))
    profiles = {}
    for name, renditions in sorted(plain(record.get("profiles") or {}).items()):
        fallback = next((r for r in renditions if r["format"] in ("jpeg", "png")), renditions[-1])
        profiles[name] = {
            "sources": sources_of(renditions),
            "fallback": {
                "src": _presign(s3, settings, fallback["key"], cdn),
                "width": fallback["width"],
                "height": fallback["height"],
            },
        }
    processed = plain(record["processed"])
    return {
        "imageId": record["imageId"],
        "sources": sources,
        "fallback": {
            "src": _presign(s3, settings, processed["key"], cdn),
            "width": processed.get("width"),
            "height": processed.get("height"),
        },
        "placeholder": plain(record.get("placeholder")),
        "profiles": profiles,
        "expiresIn": settings.url_expiry_seconds,
    }


def to_api(record: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The public shape of GET /images/{imageId} (the owner's id only to an admin, who may see others')."""
    shown = {
        "imageId": record["imageId"],
        "status": record["status"],
        "filename": record.get("filename"),  # as the client declared it (POST /upload), for people only
        "uploadTimestamp": record.get("uploadTimestamp"),
        "updatedAt": record.get("updatedAt"),
        "original": plain(record.get("original")),
        "processed": plain(record.get("processed")),
        "renditions": [{k: r[k] for k in RENDITION_FIELDS} for r in plain(record.get("renditions") or [])],
        # each fixed-shape profile's renditions (RenditionProfiles), one per format
        "profiles": {
            name: [{k: r[k] for k in RENDITION_FIELDS if k != "size"} for r in renditions]
            for name, renditions in sorted(plain(record.get("profiles") or {}).items())
        },
        "placeholder": plain(record.get("placeholder")),
        # the owner's focal point ({x, y}, 0-1 of the upright image), on which the crops centre; null: none set
        "focalPoint": plain(record.get("focalPoint")),
        "error": plain(record.get("error")),
        # the last reprocess's error, when it failed: the image is still PROCESSED on its earlier renditions
        "reprocessError": plain(record.get("reprocessError")),
        # Step Functions execution *names*, not ARNs (an ARN names the account): the one that processes or processed
        # it last, and every one that owned it; the ARN is the state machine's with ":execution:" and the name
        "execution": _execution_name(record.get("executionArn")),
        "executions": sorted(_execution_name(arn) for arn in record.get("executions") or []),
    }
    if caller.admin:
        shown["owner"] = record.get(OWNER)
    return shown


def _execution_name(arn: str | None) -> str | None:
    return trace.execution_name(arn) if arn else None


RENDITION_FIELDS = contracts.RENDITION_FIELDS  # what GET /images shows of each (not its key)
