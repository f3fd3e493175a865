"""The workflow's steps: validate -> resize -> store -> mark processed, and recording a failure.

Plain functions over small interfaces (an S3 client, an ImageRepository, Settings); the Lambda
handlers only parse the state input and shape the output.
"""

from __future__ import annotations

import base64
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
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
    RenditionLostError,
    TransientAWSError,
)
from image_pipeline.records import DELETED, FAILED, REJECTED, ImageRepository

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
    RenditionLostError.__name__: ("RENDITION_LOST", "the rendition could not be stored" + _REPROCESS),
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
    with transient_errors():
        head = s3.head_object(Bucket=bucket, Key=key)
    size = head["ContentLength"]
    if size == 0:
        raise InvalidImageError("EMPTY_FILE", "the object is empty")
    if size > settings.max_upload_bytes:
        raise InvalidImageError("TOO_LARGE", f"{size} bytes is over the limit of {settings.max_upload_bytes} bytes")
    info = probe_object(s3, bucket, key, size, settings)
    original = {"key": key, "bytes": size, "format": info.format, "width": info.width, "height": info.height}
    repo.record_original(image_id, execution_arn, original)
    return {
        "imageId": image_id,
        "duplicate": False,
        "bucket": bucket,
        "key": key,
        "etag": head["ETag"].strip('"'),
        **{k: v for k, v in original.items() if k != "key"},
    }


def probe_object(s3, bucket: str, key: str, size: int, settings: Settings) -> engine.Probe:
    """Probe the object from its first bytes: one ranged GET of ``engine.HEADER_BYTES`` for almost every file; while
    the header goes on past what was read (large ICC/XMP, a WebP, a HEIF whose meta box follows mdat), read on in
    growing steps (x4) up to the whole object, which is bounded by MaxUploadBytes."""
    data, window = b"", engine.HEADER_BYTES
    while True:
        end = min(size, window)
        with transient_errors():
            data += s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={len(data)}-{end - 1}")["Body"].read()
        try:
            return engine.probe(data, settings.max_pixels, complete=len(data) >= size, formats=settings.input_formats)
        except HeaderIncompleteError:
            if len(data) < end:  # the object is shorter than its HEAD said (replaced meanwhile): judge what is there
                return engine.probe(data, settings.max_pixels, formats=settings.input_formats)
            window *= 4


def resize(s3, settings: Settings, image: dict[str, Any], execution_name: str) -> dict[str, Any]:
    """Render the whole set from one decode (engine.render_set) and stage each rendition under this execution's
    staging prefix, with its SHA-256 checksum (S3 verifies the upload; Store verifies the promoted copy)."""
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
    rendered = engine.render_set(
        data,
        settings.rendition_sizes,
        settings.rendition_formats,
        settings.max_dimension,
        settings.max_pixels,
        backend=settings.engine_backend,
        input_formats=settings.input_formats,
        workers=settings.encode_threads,
    )
    # the default may be one of the set: each rendition is staged once, whichever lists name it
    unique = list({id(r): r for r in (*rendered.renditions, rendered.default)}.values())
    described = {id(r): _describe(r, image["imageId"], execution_name) for r in unique}

    def put(r: engine.Rendition) -> None:
        staged = described[id(r)]
        with transient_errors():
            s3.put_object(
                Bucket=settings.processed_bucket,
                Key=staged["stagingKey"],
                Body=r.data,
                ContentType=staged["contentType"],
                ChecksumSHA256=staged["sha256"],
            )

    _in_parallel(put, unique)
    return {
        "renditions": [described[id(r)] for r in rendered.renditions],
        "default": described[id(rendered.default)],
        "placeholder": rendered.placeholder.as_dict() if rendered.placeholder else None,
        "renditionSet": settings.rendition_set,
        "engine": rendered.backend,
    }


def _describe(r: engine.Rendition, image_id: str, execution_name: str) -> dict[str, Any]:
    """What Store and the record need of a rendition: its keys (staging and final), type, size and checksum."""
    if r.box is None:  # the default, outside the set
        name, final = f"default.{r.extension}", keys.rendition_key(image_id, r.extension)
    else:
        name, final = f"{r.box}.{r.extension}", keys.set_rendition_key(image_id, r.box, r.extension)
    return {
        "size": r.box,
        "format": r.format.lower(),  # avif | webp | jpeg | png, as the API names them
        "contentType": r.content_type,
        "width": r.width,
        "height": r.height,
        "bytes": len(r.data),
        "sha256": base64.b64encode(hashlib.sha256(r.data).digest()).decode(),
        "stagingKey": keys.staging_key(image_id, execution_name, name),
        "key": final,
    }


S3_THREADS = 8  # requests of one step in flight at once (each rendition's put, copy, check, delete)


def _in_parallel(call, items: list) -> list:
    """``call`` on each item on S3_THREADS threads (boto3 clients are thread-safe); the first error is raised."""
    if len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(S3_THREADS, len(items))) as pool:
        return list(pool.map(call, items))


def store(s3, settings: Settings, image: dict[str, Any], resized: dict[str, Any]) -> dict[str, Any]:
    """Promote every staged rendition to its final key, each verified by checksum; idempotent.

    A retry may find a staging object gone because an earlier attempt finished after Step Functions had
    given up on it (task timeout, lost response): then the final object, if it is this rendition, is the result.
    """
    unique = {r["key"]: r for r in [*resized["renditions"], resized["default"]]}
    _in_parallel(lambda r: _promote(s3, settings.processed_bucket, image["imageId"], r), list(unique.values()))
    default = resized["default"]
    return {
        "processed": {k: default[k] for k in ("key", "bytes", "width", "height")}
        | {"format": default["format"].upper()},
        "renditions": [
            {k: r[k] for k in ("size", "width", "height", "format", "bytes", "key")} for r in resized["renditions"]
        ],
        "placeholder": resized["placeholder"],
        "renditionSet": resized["renditionSet"],
    }


def _promote(s3, bucket: str, image_id: str, rendition: dict[str, Any]) -> None:
    final = rendition["key"]
    try:
        with transient_errors():
            s3.copy_object(
                Bucket=bucket,
                Key=final,
                CopySource={"Bucket": bucket, "Key": rendition["stagingKey"]},
                MetadataDirective="REPLACE",
                ContentType=rendition["contentType"],
                CacheControl=CACHE_CONTROL,
                Metadata={"image-id": image_id},
                ChecksumAlgorithm="SHA256",
            )
    except ClientError as e:
        if not is_not_found(e):
            raise
        if not _is_stored(s3, bucket, final, rendition):
            raise RenditionLostError(f"staged {rendition['stagingKey']} is gone and {final} is not it") from e
    else:
        if not _is_stored(s3, bucket, final, rendition):
            raise RenditionIntegrityError(f"stored {final} does not match the encoded rendition")
    with transient_errors():
        s3.delete_object(Bucket=bucket, Key=rendition["stagingKey"])


def _is_stored(s3, bucket: str, key: str, rendition: dict[str, Any]) -> bool:
    """Whether ``key`` holds exactly this rendition (S3's SHA-256 checksum and size)."""
    try:
        with transient_errors():
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as e:
        if is_not_found(e):
            return False
        raise
    return head.get("ChecksumSHA256") == rendition["sha256"] and head["ContentLength"] == rendition["bytes"]


def mark_processed(repo: ImageRepository, image: dict[str, Any], stored: dict[str, Any], execution_arn: str) -> dict:
    """PROCESSED with the default rendition, the set and the placeholder; returns what the completion event says."""
    record = repo.mark_processed(image["imageId"], execution_arn, stored)
    return {
        "imageId": record["imageId"],
        "status": record["status"],
        "renditions": [{k: r[k] for k in ("size", "width", "height", "format", "bytes")} for r in stored["renditions"]],
    }


def prune_renditions(s3, settings: Settings, image_id: str, stored: dict[str, Any]) -> list[str]:
    """Delete the image's renditions that its record no longer names (sizes or formats dropped from the set, a
    default that moved into it), once the record names the new ones; returns the deleted keys. Ids are fixed-length
    UUIDs, so the prefix ``renditions/{id}`` holds this image's objects only."""
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
        record = repo.mark_failed(image_id, execution_arn, status, code, message)
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
        "status": record["status"],
        "error": record["error"],
        "detailType": events.detail_type(record["status"]),  # the state machine publishes it (Publish failure)
    }
