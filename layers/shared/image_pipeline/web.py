"""The web page's static files, read from the web bucket and served by the API (same origin as the API, so the
page calls it with relative URLs and needs no CORS), and its ``config.json``: how it signs in. A function keeps what
it read for a minute.

Every file carries a Content-Security-Policy that names only the origins the page talks to: the API (its own), the
sign-in service, the originals bucket (uploads) and where renditions come from (their bucket, or the CDN)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

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
CONFIG = "config.json"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign_in_endpoint(settings: Settings) -> str | None:
    """Where the page calls Cognito's InitiateAuth: the local cloud's endpoint there, else the region's Cognito;
    None when the stack trusts an issuer of another kind (the page then takes a token pasted in)."""
    if (
        not settings.auth_issuer
        or urlsplit(settings.auth_issuer).hostname != f"cognito-idp.{settings.region}.amazonaws.com"
    ):
        return None
    return settings.aws_endpoint_url or f"https://cognito-idp.{settings.region}.amazonaws.com/"


def security_headers(s3, settings: Settings) -> dict[str, str]:
    """The page runs only its own files: no inline script; it connects to the API, the sign-in service and the
    originals bucket (a presigned PUT), and shows images of the renditions' bucket or CDN."""
    uploads = _origin(s3.generate_presigned_url("put_object", Params={"Bucket": settings.original_bucket, "Key": "x"}))
    renditions = (
        f"https://{settings.cdn_domain}"
        if settings.cdn_domain
        else _origin(s3.generate_presigned_url("get_object", Params={"Bucket": settings.processed_bucket, "Key": "x"}))
    )
    endpoint = sign_in_endpoint(settings)
    connect = " ".join(dict.fromkeys(["'self'", uploads, *([_origin(endpoint)] if endpoint else [])]))
    return {
        "Content-Security-Policy": f"default-src 'self'; img-src 'self' data: blob: {renditions}; "
        f"connect-src {connect}; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # presigned URLs and ids never leave in a Referer
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "Cache-Control": "no-cache",
    }


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    headers: dict[str, str]


_cache: dict[str, tuple[float, Asset]] = {}


def asset(s3, settings: Settings, name: str) -> Asset:
    """The file ``name`` of the web page (index.html, app.js, style.css …, and config.json); 404 WEB_NOT_FOUND for
    anything else."""
    kept = _cache.get(name)
    if kept and kept[0] > time.monotonic():
        return kept[1]
    if name == CONFIG:
        result = Asset(json.dumps(page_config(settings)), "application/json", security_headers(s3, settings))
        _cache[name] = (time.monotonic() + KEEP_SECONDS, result)
        return result
    match = _NAME.fullmatch(name or "")
    if match is None or not settings.web_bucket:
        raise ApiError(404, "WEB_NOT_FOUND", "no such file of the web page")
    try:
        with transient_errors():
            body = s3.get_object(Bucket=settings.web_bucket, Key=name)["Body"].read().decode()
    except ClientError as e:
        if is_not_found(e):
            raise ApiError(404, "WEB_NOT_FOUND", "no such file of the web page (was web/ published?)") from None
        raise
    result = Asset(body, CONTENT_TYPES[match.group(1)], security_headers(s3, settings))
    _cache[name] = (time.monotonic() + KEEP_SECONDS, result)
    return result


def page_config(settings: Settings) -> dict:
    """How the page signs in: Cognito's app client and endpoint, or (another issuer) a bearer token pasted in."""
    endpoint = sign_in_endpoint(settings)
    if endpoint is None:
        return {"signIn": "token", "issuer": settings.auth_issuer}
    return {"signIn": "cognito", "endpoint": endpoint, "region": settings.region, "clientId": settings.auth_audience}
