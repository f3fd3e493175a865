"""The web page's static files, read from the web bucket and served by the API (same origin as the API, so the
page calls it with relative URLs and needs no CORS). A function keeps what it read for a minute."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from image_pipeline.aws import is_not_found, transient_errors
from image_pipeline.config import Settings
from image_pipeline.errors import ApiError

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
_NAME = re.compile(r"[A-Za-z0-9_-]+\.(html|js|css|svg)")
KEEP_SECONDS = 60
# The page runs only its own files: no inline script, no other origin; images from the presigned S3 URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob: https: http:; "
    "connect-src 'self' https: http:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    headers: dict[str, str]


_cache: dict[str, tuple[float, Asset]] = {}


def asset(s3, settings: Settings, name: str) -> Asset:
    """The file ``name`` of the web page (index.html, app.js, style.css …); 404 WEB_NOT_FOUND for anything else."""
    match = _NAME.fullmatch(name or "")
    if match is None or not settings.web_bucket:
        raise ApiError(404, "WEB_NOT_FOUND", "no such file of the web page")
    kept = _cache.get(name)
    if kept and kept[0] > time.monotonic():
        return kept[1]
    try:
        with transient_errors():
            body = s3.get_object(Bucket=settings.web_bucket, Key=name)["Body"].read().decode()
    except ClientError as e:
        if is_not_found(e):
            raise ApiError(404, "WEB_NOT_FOUND", "no such file of the web page (was web/ published?)") from None
        raise
    result = Asset(body, CONTENT_TYPES[match.group(1)], dict(SECURITY_HEADERS))
    _cache[name] = (time.monotonic() + KEEP_SECONDS, result)
    return result
