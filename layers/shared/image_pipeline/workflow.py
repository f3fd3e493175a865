"""The workflow's steps: validate -> resize -> store -> mark processed, and recording a failure.

Plain functions over small interfaces (an S3 client, an ImageRepository, Settings); the Lambda
handlers only parse the state input and shape the output.
"""

from __future__ import annotations

import base64
import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from image_pipeline import engine, events, keys, purge
from image_pipeline.aws import PRECONDITION_FAILED_CODES, error_code, is_not_found, transient_errors
from image_pipeline.config import Settings
from image_pipeline.errors import (
    HeaderIncompleteError,
    ImageNotOwnedError,
    InvalidImageError,
    OriginalReplacedError,
    RenditionIntegrityError,
    TransientAWSError,
)
from image_pipeline.records import DELETED, FAILED, OWNER, REJECTED, ImageRepository

# Not "immutable": reprocessing replaces a rendition under the same key, so caches must look again (within an hour).
CACHE_CONTROL = "public, max-age=3600"


# What a FAILED image shows (GET /images, /download): a fixed code and message per cause. The SDK's and Step
# Functions' own text (bucket names, ARNs, AccessDenied messages, state input) goes to the function's log only.
_REPROCESS = "; reprocess the image or upload it again"
PUBLIC_FAILURES = {
    OriginalReplacedError.__name__: (
        "ORIGINAL_REPLACED",
        "the original was replaced by another upload after it was validated; upload again with a new URL",
    ),
    RenditionIntegrityError.__name__: ("RENDITION_LOST", "the rendition could not be stored" + _REPROCESS),
    TransientAWSError.__name__: ("SERVICE_UNAVAILABLE", "a service the pipeline depends on kept failing" + _REPROCESS),
    "States.Timeout": ("TIMEOUT", "processing took too long" + _REPROCESS),
    "Sandbox.Timedout": ("TIMEOUT", "processing took too long" + _REPROCESS),
    "Runtime.OutOfMemory": ("OUT_OF_MEMORY", "processing ran out of memory" + _REPROCESS),
}
PROCESSING_FAILED = ("PROCESSING_FAILED", "the image could not be processed" + _REPROCESS)


def object_from_event(event: dict[str, Any]) -> tuple[str, str, str]:
    """(bucket, key, etag) of an S3 "Object Created" EventBridge event."""
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    if not bucket or not obj.get("key"):
        raise InvalidImageError("BAD_EVENT", "not an S3 Object Created event (detail.bucket.name, detail.object.key)")
    return bucket, obj["key"], str(obj.get("etag", ""))


def validate(s3, repo: ImageRepository, settings: Settings, event: dict, execution_arn: str) -> dict[str, Any]:
    bucket, key, etag = object_from_event(event)
    image_id = keys.image_id_for(bucket, key, etag)
    claim = repo.claim(image_id, key, etag, execution_arn, reprocess=bool(event.get("reprocess")))
    if not claim.claimed:
        if claim.status == DELETED:  # uploaded (or re-sent) after DELETE /images/{id}: the bytes must not stay
            purge.delete_original(s3, bucket, key)
        return {"imageId": image_id, "duplicate": True, "status": claim.status}
    info, size, etag = probe_object(s3, bucket, key, settings)
    # What the original is goes into the record with the image's outcome (Mark processed, or Record failure), not
    # in a write of its own: the steps pass it on.
    return {
        "imageId": image_id,
        "duplicate": False,
        "bucket": bucket,
        "key": key,
        "etag": etag,
        "bytes": size,
        "format": info.format,
        "width": info.width,
        "height": info.height,
    }


ORIGINAL_FIELDS = ("key", "bytes", "format", "width", "height")


def original_of(image: dict[str, Any]) -> dict[str, Any] | None:
    """The record's ``original`` from Validate's result (None if the state holds no validated image)."""
    if not all(field in image for field in ORIGINAL_FIELDS):
        return None
    return {field: image[field] for field in ORIGINAL_FIELDS}


def probe_object(s3, bucket: str, key: str, settings: Settings) -> tuple[engine.Probe, int, str]:
    """(what the image is, its size, its ETag), read from its first bytes: one ranged GET of ``engine.HEADER_BYTES``
    for almost every file, which also says the object's whole size (no HEAD first). While the header goes on past
    what was read (large ICC/XMP, a WebP, a HEIF whose meta box follows mdat), read on in growing steps (x4) up to
    the whole object, which is bounded by MaxUploadBytes."""
    window = engine.HEADER_BYTES
    try:
        with transient_errors():
            first = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{window - 1}")
            data = first["Body"].read()
    except ClientError as e:
        if error_code(e) != "InvalidRange":
            raise
        raise InvalidImageError("EMPTY_FILE", "the object is empty") from e  # it has no first byte to read
    content_range = first.get("ContentRange")  # "bytes 0-262143/5242880"; absent if the server sent it all
    size = int(content_range.rsplit("/", 1)[1]) if content_range else first["ContentLength"]
    if size == 0:
        raise InvalidImageError("EMPTY_FILE", "the object is empty")
    if size > settings.max_upload_bytes:
        raise InvalidImageError("TOO_LARGE", f"{size} bytes is over the limit of {settings.max_upload_bytes} bytes")
    etag = first["ETag"].strip('"')
    while True:
        end = min(size, window)
        if len(data) < end:
            with transient_errors():
                data += s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={len(data)}-{end - 1}")["Body"].read()
        try:
            info = engine.probe(data, settings.max_pixels, complete=len(data) >= size, formats=settings.input_formats)
            return info, size, etag
        except HeaderIncompleteError:
            if len(data) < end:  # the object is shorter than its first read said (replaced meanwhile): judge it
                return engine.probe(data, settings.max_pixels, formats=settings.input_formats), size, etag
            window *= 4


def resize(s3, settings: Settings, image: dict[str, Any]) -> dict[str, Any]:
    """Render the whole set from one decode (engine.render_set) and put each rendition at its final key, once, with
    its headers and its SHA-256 checksum, which S3 verifies before it stores the object (a PUT replaces an object
    whole: a reader sees the old rendition or the new one, never a part). Returns what Mark processed records.

    Idempotent: a retry (or a late first attempt) renders the same bytes under the same keys."""
    try:
        with transient_errors():
            obj = s3.get_object(Bucket=image["bucket"], Key=image["key"], IfMatch=f'"{image["etag"]}"')
            if obj["ContentLength"] > settings.max_upload_bytes:
                raise InvalidImageError("TOO_LARGE", f"{obj['ContentLength']} bytes is over the limit")
            data = obj["Body"].read()  # a body that breaks off while streaming is transient too
    except ClientError as e:
        if error_code(e) not in PRECONDITION_FAILED_CODES:
            raise
        raise OriginalReplacedError(
            f"{image['key']} was replaced by another upload after it was validated; upload again with a new URL"
        ) from e
    described: dict[int, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=S3_THREADS) as pool:
        puts: list[Future[None]] = []

        def store(r: engine.Rendition) -> None:  # each rendition as soon as it is encoded, while the rest encode
            described[id(r)] = _describe(r, image["imageId"])
            puts.append(pool.submit(_put, s3, settings.processed_bucket, image["imageId"], r, described[id(r)]))

        rendered = engine.render_set(
            data,
            settings.rendition_sizes,
            settings.rendition_formats,
            settings.max_dimension,
            settings.max_pixels,
            backend=settings.engine_backend,
            input_formats=settings.input_formats,
            workers=settings.encode_threads,
            deliver=store,  # the default once, whichever lists name it
        )
        for put in puts:  # the first error, in the order the puts were sent
            put.result()
    default = described[id(rendered.default)]
    return {
        "processed": {k: default[k] for k in ("key", "bytes", "width", "height")}
        | {"format": default["format"].upper()},
        "renditions": [
            {k: described[id(r)][k] for k in ("size", "width", "height", "format", "bytes", "key")}
            for r in rendered.renditions
        ],
        "placeholder": rendered.placeholder.as_dict() if rendered.placeholder else None,
        "renditionSet": settings.rendition_set,
        "engine": rendered.backend,
    }


def _describe(r: engine.Rendition, image_id: str) -> dict[str, Any]:
    """What the put and the record need of a rendition: its key, type, size and checksum."""
    if r.box is None:  # the default, outside the set
        key = keys.rendition_key(image_id, r.extension)
    else:
        key = keys.set_rendition_key(image_id, r.box, r.extension)
    return {
        "size": r.box,
        "format": r.format.lower(),  # avif | webp | jpeg | png, as the API names them
        "contentType": r.content_type,
        "width": r.width,
        "height": r.height,
        "bytes": len(r.data),
        "sha256": base64.b64encode(hashlib.sha256(r.data).digest()).decode(),
        "key": key,
    }


def _put(s3, bucket: str, image_id: str, r: engine.Rendition, described: dict[str, Any]) -> None:
    """One PUT per rendition. S3 refuses a body whose SHA-256 is not the one sent (BadDigest: the request failed,
    the step is retried) and answers with the checksum it stored, which must be ours (moto, in the unit tests,
    answers none)."""
    with transient_errors():
        put = s3.put_object(
            Bucket=bucket,
            Key=described["key"],
            Body=r.data,
            ContentType=described["contentType"],
            CacheControl=CACHE_CONTROL,
            Metadata={"image-id": image_id},
            ChecksumSHA256=described["sha256"],
        )
    if put.get("ChecksumSHA256", described["sha256"]) != described["sha256"]:
        raise RenditionIntegrityError(f"S3 stored {described['key']} with checksum {put.get('ChecksumSHA256')}")


S3_THREADS = 8  # requests of one step in flight at once (each rendition's put)


def mark_processed(
    s3, repo: ImageRepository, settings: Settings, image: dict[str, Any], stored: dict[str, Any], execution_arn: str
) -> tuple[dict[str, Any], list[str]]:
    """PROCESSED with the default rendition, the set and the placeholder; then the renditions of an earlier
    configuration are deleted (prune_renditions). Returns what the completion event says and the deleted keys."""
    record = repo.mark_processed(image["imageId"], execution_arn, stored, original_of(image))
    owners = record.get("executions")  # every execution that ever owned the image (a set; absent on old records)
    pruned = [] if owners is not None and len(owners) <= 1 else prune_renditions(s3, settings, image["imageId"], stored)
    detail = {
        "imageId": record["imageId"],
        "owner": record.get(OWNER),  # a consumer routes the event by it (None: an image made before owners)
        "status": record["status"],
        "renditions": [{k: r[k] for k in ("size", "width", "height", "format", "bytes")} for r in stored["renditions"]],
    }
    return detail, pruned


def prune_renditions(s3, settings: Settings, image_id: str, stored: dict[str, Any]) -> list[str]:
    """Delete the image's renditions that its record no longer names (sizes or formats dropped from the set, a
    default that moved into it), once the record names the new ones; returns the deleted keys. Ids are fixed-length
    UUIDs, so the prefix ``renditions/{id}`` holds this image's objects only.

    Only needed once more than one execution has owned the image (reprocessing): while one execution ever owned it,
    only that execution wrote under the prefix and the record names all it wrote, so mark_processed skips the
    LIST."""
    keep = {stored["processed"]["key"], *(r["key"] for r in stored.get("renditions", []))}
    stale = [k for k in purge.rendition_keys(s3, settings.processed_bucket, image_id) if k not in keep]
    purge.delete_keys(s3, settings.processed_bucket, stale)
    return stale


def classify(error: dict[str, Any]) -> tuple[str, str, str]:
    """(status, code, message) that the image shows for a Step Functions error {Error, Cause}: REJECTED with the
    engine's own code and words for bad input; FAILED with a fixed, public-safe code and message otherwise."""
    name = error.get("Error") or "States.Runtime"
    if name == InvalidImageError.__name__:
        cause = error.get("Cause") or ""
        try:
            message = json.loads(cause).get("errorMessage", cause)
        except (ValueError, AttributeError):
            message = cause
        code, _, detail = str(message).partition(": ")
        return REJECTED, code or "INVALID_IMAGE", detail or str(message)
    return (FAILED, *PUBLIC_FAILURES.get(name, PROCESSING_FAILED))


REJECTED_TAG = {"Key": "image-pipeline-status", "Value": "rejected"}  # the originals bucket's lifecycle expires these


def record_failure(
    s3, repo: ImageRepository, settings: Settings, state: dict[str, Any], execution_arn: str
) -> dict[str, Any]:
    """Record REJECTED (bad input) or FAILED (after retries) for the image this execution was processing.

    The original of a REJECTED image is tagged so that the bucket's lifecycle expires it (RejectedOriginalDays);
    a FAILED image's original is kept for reprocessing. When the image was deleted while this execution ran (its
    Mark processed, or any step, then fails), what the execution stored is deleted here: DELETE /images/{id} may
    have cleaned up before it.
    """
    image = state.get("image") or {}
    if image.get("imageId") and image.get("key"):  # validated: the state is validate's result
        image_id, bucket, key = image["imageId"], image["bucket"], image["key"]
    else:  # validate failed: the state is the execution's input, the S3 event
        try:
            bucket, key, etag = object_from_event(state)
        except InvalidImageError:
            return {"recorded": False, "reason": "no image in the execution input"}
        image_id = keys.image_id_for(bucket, key, etag)
    status, code, message = classify(state.get("error") or {})
    try:
        record = repo.mark_failed(image_id, execution_arn, status, code, message, original_of(image))
    except ImageNotOwnedError:
        current = repo.get(image_id)
        if current is not None and current["status"] == DELETED:
            purge.delete_renditions(s3, settings.processed_bucket, image_id)
        raise
    if status == REJECTED:
        try:
            with transient_errors():
                s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [REJECTED_TAG]})
        except ClientError as e:
            if not is_not_found(e):
                raise
    return {
        "recorded": True,
        "imageId": image_id,
        "owner": record.get(OWNER),
        "status": record["status"],
        "error": record["error"],
        "detailType": events.detail_type(record["status"]),  # the state machine publishes it (Publish failure)
    }
