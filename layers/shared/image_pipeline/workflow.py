"""The workflow's steps: validate -> resize -> store -> mark processed, and recording a failure.

Resize (the CPU work, native decoders on untrusted bytes) stages its output in the private work bucket; Store
publishes it under immutable, versioned keys; Mark processed switches the record to that version and retires the
previous one.

Plain functions over small interfaces (an S3 client, an ImageRepository, Settings); the Lambda
handlers only parse the state input and shape the output.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from image_pipeline import contracts, engine, events, keys, purge
from image_pipeline.aws import PRECONDITION_FAILED_CODES, error_code, is_not_found, transient_errors
from image_pipeline.config import Settings, parse_profiles
from image_pipeline.errors import (
    ConfigError,
    HeaderIncompleteError,
    ImageNotOwnedError,
    InvalidImageError,
    OriginalReplacedError,
    RenditionIntegrityError,
    TransientAWSError,
)
from image_pipeline.payloads import (
    CropPlan,
    Duplicate,
    Marked,
    Processed,
    Recorded,
    Rendition,
    Resized,
    StagedObject,
    StagedPart,
    Stored,
    Validated,
)
from image_pipeline.records import DELETED, FAILED, OWNER, REJECTED, ImageRepository, focal_point, plain

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
logger = logging.getLogger(__name__)
PROCESSING_FAILED = ("PROCESSING_FAILED", "the image could not be processed" + _REPROCESS)


def object_from_event(event: dict[str, Any]) -> tuple[str, str, str]:
    """(bucket, key, etag) of an S3 "Object Created" EventBridge event."""
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    if not bucket or not obj.get("key"):
        raise InvalidImageError("BAD_EVENT", "not an S3 Object Created event (detail.bucket.name, detail.object.key)")
    return bucket, obj["key"], str(obj.get("etag", ""))


def validate(s3, repo: ImageRepository, settings: Settings, event: dict, execution_arn: str) -> Validated | Duplicate:
    bucket, key, etag = object_from_event(event)
    image_id = keys.image_id_for(bucket, key, etag)
    reprocess = bool(event.get("reprocess"))
    claim = repo.claim(image_id, key, etag, execution_arn, reprocess=reprocess)
    if not claim.claimed:
        if claim.status == DELETED:  # uploaded (or re-sent) after DELETE /images/{id}: the bytes must not stay
            purge.delete_original(s3, bucket, key)
        return {"imageId": image_id, "duplicate": True, "status": claim.status}
    info, size, etag = probe_object(s3, bucket, key, settings)
    scope, crops = crop_plan(settings, claim.record, reprocess and event.get("scope") == contracts.SCOPE_CROPS)
    # What the original is goes into the record with the image's outcome (Mark processed, or Record failure), not
    # in a write of its own: the steps pass it on.
    return {
        "imageId": image_id,
        "duplicate": False,
        "version": keys.version_of(execution_arn),  # the renditions' version this execution makes
        "reprocess": bool(event.get("reprocess")),  # Mark processed then retires what the record named before
        "bucket": bucket,
        "key": key,
        "etag": etag,
        "bytes": size,
        "format": info.format,
        "width": info.width,
        "height": info.height,
        "scope": scope,
        "crops": crops,
    }


def crop_plan(settings: Settings, record: Mapping[str, Any], crops_only: bool) -> tuple[str, CropPlan]:
    """(scope, the crops to render) for an image as its ``record`` stands when claimed.

    The whole set renders every configured profile. A crops-only run (``crops_only``: a focal point was set, or the
    backfill found crops missing) renders the profiles whose renditions are not current: each one the record lacks
    or recorded with another shape or strategy, and all of them when the focal point moved since they were made. It
    keeps the others and prunes the profiles the configuration dropped. A record with no current set to keep (not
    processed, or made with another RenditionSizes, RenditionFormats or MaxDimension) gets the whole set instead."""
    names = [p.name for p in settings.rendition_profiles]
    focal = focal_point(record.get("focalPoint"))
    whole: CropPlan = {"render": names, "keep": [], "prune": [], "profileSet": settings.profile_set, "focal": focal}
    if not crops_only or "processed" not in record or record.get("renditionSet") != settings.rendition_set:
        return contracts.SCOPE_ALL, whole
    had = dict(record.get("profiles") or {})
    try:
        recorded = {p.name: p for p in parse_profiles(str(record.get("profileSet") or "").split("/", 1)[0])}
    except ConfigError:  # not a set this code recorded: nothing of it is current
        recorded = {}
    focus_current = focal_point(record.get("focalRendered")) == focal
    current = [
        p.name for p in settings.rendition_profiles if focus_current and p.name in had and recorded.get(p.name) == p
    ]
    return contracts.SCOPE_CROPS, {
        **whole,
        "render": [n for n in names if n not in current],
        "keep": current,
        "prune": sorted(set(had) - set(names)),
    }


ORIGINAL_FIELDS = ("key", "bytes", "format", "width", "height")


def original_of(image: Mapping[str, Any]) -> dict[str, Any] | None:
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


def resize(s3, settings: Settings, image: Validated) -> Resized:
    """Render the whole set from one decode (engine.render_set) and stage it for Store: every rendition, one after
    another, in one private object of the work bucket (``keys.staging_key``: one PUT whatever the set's size), which
    S3 stores only if its SHA-256 is the one sent. Returns what Store needs: where each rendition lies in it and its
    own SHA-256. Resize writes nowhere clients read.

    A crops-only run (``scope``) renders the profiles its plan names and nothing else, from a decode only as large
    as they need; with none to render (the plan only prunes) it reads nothing and stages nothing.

    Idempotent: a retry (or a late first attempt) renders the same bytes under the same key."""
    plan = image.get("crops")
    crops_only = image.get("scope") == contracts.SCOPE_CROPS
    render = set(plan["render"]) if plan is not None else {p.name for p in settings.rendition_profiles}
    profiles = [p for p in settings.rendition_profiles if p.name in render]
    point = plan["focal"] if plan is not None else None
    focal = (point[0], point[1]) if point is not None else None
    key = keys.staging_key(image["imageId"], image["version"])
    if crops_only and not profiles:
        return {
            "staged": StagedObject(key=key, bytes=0, sha256=_sha256(b"")),
            "parts": [],
            "default": None,
            "inSet": 0,
            "placeholder": None,
            "renditionSet": settings.rendition_set,
            "engine": "none",
        }
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
        profiles=profiles,
        focal=focal,
        ladder=not crops_only,
    )
    parts = [*rendered.renditions, *rendered.cropped]  # the set, then each profile's crops
    if rendered.default is not None and not any(r is rendered.default for r in parts):  # outside the set: after it
        parts.append(rendered.default)
    bundle, described, offset = bytearray(), [], 0
    for r in parts:
        described.append(_describe(r, offset))
        bundle += r.data
        offset += len(r.data)
    digest = _sha256(bundle)
    _put_checked(s3, settings.work_bucket, key, bytes(bundle), digest, ContentType=STAGED_TYPE)
    staged = StagedObject(key=key, bytes=len(bundle), sha256=digest)
    return {
        "staged": staged,
        "parts": described,
        "default": next((i for i, r in enumerate(parts) if r is rendered.default), None),
        "inSet": len(rendered.renditions),  # parts[:inSet] are the set, in its order
        "placeholder": rendered.placeholder.as_dict() if rendered.placeholder else None,
        "renditionSet": settings.rendition_set,
        "engine": rendered.backend,
    }


STAGED_TYPE = "application/octet-stream"


def _sha256(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _describe(r: engine.Rendition, offset: int) -> StagedPart:
    """A staged rendition: what it is, where it lies in the staged object and its checksum."""
    return {
        "size": r.box,  # None: the default rendition, outside the set, or a profile's
        "profile": r.profile,
        "format": r.format.lower(),  # avif | webp | jpeg | png, as the API names them (contracts)
        "width": r.width,
        "height": r.height,
        "offset": offset,
        "bytes": len(r.data),
        "sha256": _sha256(r.data),
    }


def _put_checked(s3, bucket: str, key: str, body: bytes, sha256: str, **headers: Any) -> None:
    """One PUT. S3 refuses a body whose SHA-256 is not the one sent (BadDigest: the request failed, the step is
    retried) and answers with the checksum it stored, which must be ours (moto, in the unit tests, answers none)."""
    with transient_errors():
        put = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumSHA256=sha256, **headers)
    if put.get("ChecksumSHA256", sha256) != sha256:
        raise RenditionIntegrityError(f"S3 stored {key} with checksum {put.get('ChecksumSHA256')}")


# A key's bytes never change (a reprocess writes a new version): browsers and CDNs may keep them for a year.
CACHE_CONTROL = "public, max-age=31536000, immutable"
S3_THREADS = 8  # requests of one step in flight at once (each rendition's put)


def store(s3, settings: Settings, image: Validated, resized: Resized) -> Stored:
    """Publish the staged renditions under this execution's immutable keys (``keys.rendition_key``): read the
    staged object, check each rendition against the SHA-256 Resize computed, put each with its headers and that
    checksum (S3 verifies it), then delete the staged object. Store cannot read originals. Returns what Mark
    processed records.

    Resize ran native decoders on untrusted bytes: Store trusts nothing of its answer that could reach a client
    unchecked. The staged object's key, each rendition's key and Content-Type come from this execution's image and
    the rendition's format (one of ``contracts.RENDITION_FORMATS``), each size is one of the configuration's, and
    the parts must tile the staged object exactly (``_checked_parts``).

    Idempotent: a retry after a run that landed finds no staged object, and checks instead that every key holds
    the checksum it should (a HEAD each): the same result, or RenditionIntegrityError."""
    image_id, version = image["imageId"], image["version"]
    staged_key = keys.staging_key(image_id, version)
    crops_only = image.get("scope") == contracts.SCOPE_CROPS
    plan = image.get("crops")
    parts = _checked_parts(settings, resized, plan["render"] if crops_only and plan is not None else None)
    object_keys = [_part_key(image_id, version, p) for p in parts]
    if not parts:  # a crops-only run that only prunes: Resize staged nothing
        return {"version": version, "profiles": {}, "placeholder": None, "renditionSet": resized["renditionSet"]}
    try:
        with transient_errors():
            body = s3.get_object(Bucket=settings.work_bucket, Key=staged_key)["Body"].read()
    except ClientError as e:
        if not _gone(e):
            raise
        _check_stored(s3, settings, parts, object_keys)
    else:
        if len(body) != resized["staged"]["bytes"] or _sha256(body) != resized["staged"]["sha256"]:
            raise RenditionIntegrityError(f"the staged renditions {staged_key} are not the ones Resize put")
        view = memoryview(body)
        with ThreadPoolExecutor(max_workers=S3_THREADS) as pool:
            puts = [
                pool.submit(
                    _publish, s3, settings, image_id, key, part, view[part["offset"] : part["offset"] + part["bytes"]]
                )
                for key, part in zip(object_keys, parts, strict=True)
            ]
            for put in puts:  # the first error, in the order the puts were sent
                put.result()
        with transient_errors():
            s3.delete_object(Bucket=settings.work_bucket, Key=staged_key)
    described = [
        Rendition(
            size=part["size"],
            width=part["width"],
            height=part["height"],
            format=part["format"],
            bytes=part["bytes"],
            key=key,
        )
        for key, part in zip(object_keys, parts, strict=True)
    ]
    profiles: dict[str, list[Rendition]] = {}
    for part, rendition in zip(parts, described, strict=True):
        if (profile := part.get("profile")) is not None:
            profiles.setdefault(profile, []).append(rendition)
    if crops_only:
        return {"version": version, "profiles": profiles, "placeholder": None, "renditionSet": resized["renditionSet"]}
    index = resized["default"]
    assert index is not None  # _checked_parts: an index of parts, but in a crops-only run
    default = described[index]
    processed = Processed(
        key=default["key"],
        bytes=default["bytes"],
        width=default["width"],
        height=default["height"],
        format=default["format"].upper(),
    )
    return {
        "version": version,
        "processed": processed,
        "renditions": described[: resized["inSet"]],
        "profiles": profiles,
        "placeholder": resized["placeholder"],
        "renditionSet": resized["renditionSet"],
    }


def _part_key(image_id: str, version: str, part: StagedPart) -> str:
    extension = contracts.RENDITION_EXTENSIONS[part["format"]]
    profile = part.get("profile")  # absent in what Resize answered before profiles
    if profile is not None:
        return keys.profile_key(image_id, version, profile, extension)
    return keys.rendition_key(image_id, version, part["size"], extension)


def _checked_parts(settings: Settings, resized: Resized, crops: Collection[str] | None = None) -> list[StagedPart]:
    """Resize's description of the staged set, refused (RenditionIntegrityError) unless every rendition has a
    known format, a size of the configuration (or none: the default, or a profile of the configuration),
    whole-number dimensions, and the parts lie end to end from the first byte to the last. A crops-only run's
    parts (``crops``: the profiles its plan renders) are exactly those profiles, each once in every format, with no
    default: Mark processed then writes them over the record's and keeps the others."""
    crops_only = crops is not None
    parts = resized["parts"]
    sizes = set(settings.rendition_sizes)
    names = {p.name for p in settings.rendition_profiles}
    offset = 0
    for p in parts:
        if (
            p.get("format") not in contracts.RENDITION_FORMATS
            or not (p.get("size") is None or p.get("size") in sizes)
            or not (p.get("profile") is None or (p.get("profile") in names and p.get("size") is None))
            or not all(isinstance(v, int) and v > 0 for v in (p.get("width"), p.get("height"), p.get("bytes")))
            or p.get("offset") != offset
        ):
            raise RenditionIntegrityError(f"Resize described a rendition Store does not publish: {p!r:.200}")
        if crops_only and p.get("profile") not in (crops or ()):
            raise RenditionIntegrityError(f"a crops-only run staged a rendition it does not render: {p!r:.200}")
        offset += p["bytes"]
    if crops_only:
        made = [(p["profile"], p["format"]) for p in parts]
        per_profile = Counter(name for name, _ in made)
        if len(set(made)) != len(made) or per_profile != Counter(
            {name: len(settings.rendition_formats) for name in crops or ()}
        ):
            raise RenditionIntegrityError("a crops-only run did not stage each of its crops once in every format")
    bounded = len(parts) <= (len(sizes) + len(names)) * len(contracts.RENDITION_FORMATS) + 1
    default = resized["default"]
    has_default = default is None if crops_only else isinstance(default, int) and 0 <= default < len(parts)
    if not bounded or offset != resized["staged"]["bytes"] or not has_default:
        raise RenditionIntegrityError("Resize's description does not cover the staged renditions")
    if not 0 <= resized["inSet"] <= len(parts) or (crops_only and resized["inSet"]):
        raise RenditionIntegrityError("Resize's description does not cover the staged renditions")
    return parts


def _gone(e: ClientError) -> bool:
    """A missing object: 404, or 403 where the caller may not list the bucket (Store may not: S3 then hides
    whether a key exists)."""
    return is_not_found(e) or error_code(e) in ("AccessDenied", "403")


def _publish(s3, settings: Settings, image_id: str, key: str, part: StagedPart, data: memoryview) -> None:
    if _sha256(data) != part["sha256"]:
        raise RenditionIntegrityError(f"the staged bytes of {key} are not the ones Resize encoded")
    _put_checked(
        s3,
        settings.processed_bucket,
        key,
        bytes(data),
        part["sha256"],
        ContentType=contracts.RENDITION_CONTENT_TYPES[part["format"]],
        CacheControl=CACHE_CONTROL,
        Metadata={"image-id": image_id},
    )


def _check_stored(s3, settings: Settings, parts: list[StagedPart], object_keys: list[str]) -> None:
    """The staged object is gone: a run of this step landed (it deletes it last). Every key must hold its part."""
    for key, part in zip(object_keys, parts, strict=True):
        try:
            with transient_errors():
                head = s3.head_object(Bucket=settings.processed_bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as e:
            if not _gone(e):
                raise
            raise RenditionIntegrityError(f"neither the staged renditions nor {key} are stored") from e
        if head["ContentLength"] != part["bytes"] or head.get("ChecksumSHA256", part["sha256"]) != part["sha256"]:
            raise RenditionIntegrityError(f"{key} does not hold the rendition Resize encoded")


def mark_processed(
    s3, repo: ImageRepository, settings: Settings, image: Validated, stored: Stored, execution_arn: str
) -> tuple[Marked, list[str]]:
    """Switch the record to this execution's version (PROCESSED with the default rendition, the set, the crops and
    the placeholder; a crops-only run: the crops) with a write conditional on the execution owning the image; then
    retire the renditions it no longer names (retire_renditions). Returns what the completion event says and the
    retired keys."""
    record = repo.mark_processed(
        image["imageId"],
        execution_arn,
        stored,
        original_of(image),
        image.get("crops"),
        crops_only=image.get("scope") == contracts.SCOPE_CROPS,
    )
    owners = record.get("executions")  # every execution that ever owned the image (a set; absent on old records)
    first = not image.get("reprocess") and owners is not None and len(owners) <= 1
    retired = (
        []
        if first
        else retire_renditions(
            s3, settings, image["imageId"], record, time.time(), reread=lambda: repo.get(image["imageId"])
        )
    )
    detail = Marked(
        imageId=record["imageId"],
        owner=record.get(OWNER),  # a consumer routes the event by it (None: an image made before owners)
        status=record["status"],
        renditions=[{k: plain(r[k]) for k in contracts.RENDITION_FIELDS} for r in record.get("renditions") or []],
    )
    return detail, retired


def named_keys(record: Mapping[str, Any]) -> set[str]:
    """Every rendition key the record names: the default, the set and each profile's crops."""
    named = {r["key"] for r in record.get("renditions") or []}
    named |= {r["key"] for crops in (record.get("profiles") or {}).values() for r in crops}
    if record.get("processed"):
        named.add(record["processed"]["key"])
    return named


def retirement_grace(settings: Settings) -> int:
    """How long superseded renditions stay: a download URL handed out just before the switch (presigned, or
    CloudFront-signed) lives UrlExpirySeconds; a minute more for the clock and the request in flight."""
    return settings.url_expiry_seconds + 60


def retire_renditions(
    s3,
    settings: Settings,
    image_id: str,
    record: Mapping[str, Any],
    now: float,
    reread: Callable[[], Mapping[str, Any] | None] = lambda: None,
) -> list[str]:
    """Name the image's renditions that its record no longer names (an earlier version, of this configuration or
    another; keys of the layout before versions) in a marker of the work bucket, due after the grace period;
    the reconciler deletes them then (delete_retired). Returns the retired keys.

    Only needed for a reprocess, or once more than one execution has owned the image: while one execution ever
    owned it, only that execution wrote under the image's prefix and the record names all it wrote, so
    mark_processed skips the LIST. (A record made before ``executions`` existed names one execution after its first
    reprocess: the ``reprocess`` flag Validate passes on covers it.) A version is never current again once
    superseded, so a retry that retires the same keys twice is harmless.

    Another execution may have claimed the image and published its version before the LIST (an owner's PATCH the
    moment this one switched it): ``reread()``, the record read again after the LIST, keeps what it names and what
    the execution that owns it now published."""
    keep = named_keys(record)  # as just switched: a crops-only run keeps naming the set of an earlier version
    listed = purge.rendition_keys(s3, settings.processed_bucket, image_id)
    theirs = "\0"  # no key starts with it
    if (now_record := reread()) is not None:
        keep |= named_keys(now_record)
        owner = now_record.get("executionArn")
        if owner and owner != record.get("executionArn"):
            theirs = keys.version_prefix(image_id, keys.version_of(str(owner)))
    stale = [k for k in listed if k not in keep and not k.startswith(theirs)]
    if stale:
        due = int(now) + retirement_grace(settings)
        marker = json.dumps({"imageId": image_id, "keys": stale}).encode()
        with transient_errors():
            s3.put_object(
                Bucket=settings.work_bucket,
                Key=keys.retirement_key(due, image_id, str(record.get("version") or "")),
                Body=marker,
                ContentType="application/json",
            )
    return stale


def delete_retired(
    s3,
    settings: Settings,
    now: float,
    time_left: Callable[[], float] = lambda: float("inf"),
    limit: int = 1000,
    named: Callable[[str], Collection[str]] = lambda image_id: (),
) -> list[str]:
    """Delete the renditions of every retirement marker that is due (markers are listed in due order), then the
    marker; returns the deleted keys. Each marker on its own: one that cannot be read is logged and dropped (it
    would otherwise stop every later one), and one whose keys S3 did not all delete stays for the next run. A
    marker deletes only keys of its own image (``renditions/{id}/…`` or the layout before versions,
    ``renditions/{id}.{ext}``), and never one that ``named(imageId)`` (the keys its record names now) holds: a
    marker written while another run published (its LIST saw that run's keys) must not take them. Stops when
    ``time_left()`` (seconds) falls under ``RETIRE_MARGIN``."""
    deleted: list[str] = []
    with transient_errors():
        listed = s3.list_objects_v2(Bucket=settings.work_bucket, Prefix=keys.RETIRED_PREFIX, MaxKeys=limit)
    for marker in listed.get("Contents", []):
        if time_left() < RETIRE_MARGIN:
            break
        try:
            due_keys = _read_marker(s3, settings, marker["Key"], now)
        except _NotDue:
            break
        except (ValueError, KeyError, TypeError) as e:  # not a marker this code wrote: it names nothing to delete
            logger.error("unreadable retirement marker %s dropped: %s", marker["Key"], e)
            with transient_errors():
                s3.delete_object(Bucket=settings.work_bucket, Key=marker["Key"])
            continue
        image_id, listed_keys = due_keys
        current = set(named(image_id)) if listed_keys else set()
        stale = [k for k in listed_keys if k not in current]
        failed = purge.delete_keys(s3, settings.processed_bucket, stale)
        if failed:
            logger.warning("retirement marker %s kept: %d keys not deleted", marker["Key"], len(failed))
            continue
        with transient_errors():
            s3.delete_object(Bucket=settings.work_bucket, Key=marker["Key"])
        deleted += stale
    return deleted


RETIRE_MARGIN = 10.0  # seconds of the reconciler's invocation kept back


class _NotDue(Exception):
    pass


def _read_marker(s3, settings: Settings, key: str, now: float) -> tuple[str, list[str]]:
    """The image and the keys a due marker names (ValueError, KeyError or TypeError for one this code did not
    write)."""
    due = int(key[len(keys.RETIRED_PREFIX) :].split("/", 1)[0])
    if due > now:
        raise _NotDue
    with transient_errors():
        named = json.loads(s3.get_object(Bucket=settings.work_bucket, Key=key)["Body"].read())
    image_id = named["imageId"]
    if not keys.is_image_id(image_id) or not isinstance(named["keys"], list):
        raise ValueError(f"not a marker: imageId {image_id!r:.60}")
    own = (f"{keys.rendition_prefix(image_id)}/", f"{keys.rendition_prefix(image_id)}.")
    return image_id, [k for k in named["keys"] if isinstance(k, str) and k.startswith(own)]


def discard_version(s3, settings: Settings, image_id: str, version: str, keep: Collection[str] = ()) -> list[str]:
    """What a failed execution made and no record names: its staged object, and whatever Store published of its
    version before it failed, but for the keys in ``keep``: those the image's record names now (after a crops-only
    run the record names the set of an earlier version, whose execution may fail late). Returns the deleted
    rendition keys."""
    with transient_errors():
        s3.delete_object(Bucket=settings.work_bucket, Key=keys.staging_key(image_id, version))
    kept = set(keep)
    made = [
        k for k in purge.listed(s3, settings.processed_bucket, keys.version_prefix(image_id, version)) if k not in kept
    ]
    purge.delete_keys(s3, settings.processed_bucket, made)
    return made


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
) -> Recorded:
    """Record REJECTED (bad input) or FAILED (after retries) for the image this execution was processing; or, for a
    reprocess of an image that has renditions, keep it PROCESSED on them with the error as ``reprocessError`` (an
    image stays downloadable when a re-render fails, as it is while one runs).

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
    version = image.get("version")
    reprocess = bool(image.get("reprocess") if "reprocess" in image else state.get("reprocess"))
    try:
        kept = (
            repo.mark_reprocess_failed(
                image_id, execution_arn, code, message, settings.configuration, original_of(image)
            )
            if reprocess
            else None
        )
        if kept is not None:  # a failed reprocess: the image keeps serving what it served (and its original)
            if version and kept.get("version") != version:
                discard_version(s3, settings, image_id, version, named_keys(kept))
            return {
                "recorded": True,
                "imageId": image_id,
                "owner": kept.get(OWNER),
                "status": kept["status"],
                "error": kept["reprocessError"],
                "detailType": events.REPROCESS_FAILED,
            }
        record = repo.mark_failed(image_id, execution_arn, status, code, message, original_of(image))
    except ImageNotOwnedError:
        current = repo.get(image_id)
        if current is not None and current["status"] == DELETED:
            purge.delete_renditions(s3, settings.processed_bucket, image_id)
            if version:
                discard_version(s3, settings, image_id, version)
        elif version and (current is None or current.get("version") != version):
            # the record names this version when this execution switched it before failing, whatever its status
            # now (another execution may be reprocessing it, and serves it meanwhile): it is that one's to retire;
            # and it may name some of it still after a crops-only run switched only the crops
            discard_version(s3, settings, image_id, version, named_keys(current or {}))
        raise
    if version and record.get("version") != version:
        discard_version(s3, settings, image_id, version, named_keys(record))
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
