"""The HTTP API's logic: upload URLs, status, download URLs. Errors are ApiError(status, code, message)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from image_pipeline import keys
from image_pipeline.config import Settings
from image_pipeline.errors import ApiError
from image_pipeline.records import EXPIRED, FAILED, PROCESSED, REJECTED, ImageRepository

ACCEPTED_CONTENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/avif",
)
HEIC_CONTENT_TYPES = ("image/heic", "image/heif")


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


def create_upload(s3, repo: ImageRepository, settings: Settings, request: UploadRequest) -> dict[str, Any]:
    image_id = keys.new_image_id()
    key = keys.upload_key(image_id)
    repo.create_pending(image_id, key, request.filename, request.content_type)
    params: dict[str, Any] = {"Bucket": settings.original_bucket, "Key": key, "ContentLength": request.size}
    headers: dict[str, str] = {"Content-Length": str(request.size)}
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


def checked_id(image_id: str | None) -> str:
    if not image_id:
        raise ApiError(400, "MISSING_IMAGE_ID", "imageId is required")
    if not keys.is_image_id(image_id):
        raise ApiError(400, "INVALID_IMAGE_ID", "imageId must be a UUID")
    return image_id


def get_image(repo: ImageRepository, image_id: str | None) -> dict[str, Any]:
    record = repo.get(checked_id(image_id))
    if record is None:
        raise ApiError(404, "NOT_FOUND", "no such image")
    return to_api(record)


def download(s3, repo: ImageRepository, settings: Settings, image_id: str | None) -> dict[str, Any]:
    image = get_image(repo, image_id)
    status = image["status"]
    if status in (REJECTED, FAILED, EXPIRED):
        error = image["error"] or {"code": status, "message": "the image has no rendition"}
        raise ApiError(422, error["code"], error["message"], status=status)
    if status != PROCESSED:
        raise ApiError(409, "NOT_READY", "the image is not processed yet", status=status)
    url = s3.generate_presigned_url(
        "get_object",
        ExpiresIn=settings.url_expiry_seconds,
        Params={"Bucket": settings.processed_bucket, "Key": image["processed"]["key"]},
    )
    return {"imageId": image["imageId"], "downloadUrl": url, "expiresIn": settings.url_expiry_seconds}


def to_api(record: dict[str, Any]) -> dict[str, Any]:
    """The public shape of GET /images/{imageId}."""
    return {
        "imageId": record["imageId"],
        "status": record["status"],
        "uploadTimestamp": record.get("uploadTimestamp"),
        "updatedAt": record.get("updatedAt"),
        "original": _plain(record.get("original")),
        "processed": _plain(record.get("processed")),
        "error": _plain(record.get("error")),
    }


def _plain(value: Any) -> Any:
    """DynamoDB Decimals back to ints for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
        return int(value) if value == int(value) else float(value)
    return value
