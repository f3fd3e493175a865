"""Settings read once, at cold start, from the function's environment (set in template.yaml). Nothing else in the
app reads ``os.environ``. A required name that is missing is a deployment error: ConfigError, not a default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from image_pipeline.contracts import CROP_STRATEGIES, PROFILE_NAME, Profile
from image_pipeline.errors import ConfigError

# The defaults, once: template.yaml's parameter defaults are checked against these (tests/unit/test_template.py)
DEFAULT_MAX_DIMENSION = 800
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_URL_EXPIRY_SECONDS = 300
DEFAULT_RENDITION_SIZES = (200, 400, 800, 1600)
DEFAULT_RENDITION_FORMATS = ("avif", "webp", "jpeg")
DEFAULT_QUOTA_UPLOADS_PER_HOUR = 500
DEFAULT_QUOTA_UPLOADS_PER_DAY = 2000
DEFAULT_QUOTA_STORED_BYTES = 10 * 1024**3
RENDITION_FORMAT_NAMES = ("avif", "webp", "jpeg")  # "jpeg" is PNG for images with alpha


@dataclass(frozen=True)
class Settings:
    table_name: str
    original_bucket: str
    processed_bucket: str
    work_bucket: str  # private working storage: staged renditions, retirements, backfill manifests (WORK_BUCKET)
    max_dimension: int = DEFAULT_MAX_DIMENSION
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    url_expiry_seconds: int = DEFAULT_URL_EXPIRY_SECONDS
    accept_heic: bool = True  # HEIC/HEIF input (HEVC decoding); the AcceptHeic template parameter
    engine_backend: str = "auto"  # the image engine's backend: auto | pillow | vips
    cors_allow_origin: str = "*"
    state_machine_arn: str | None = None  # only the reconciler's environment has it
    event_bus_name: str | None = None  # the completion events' bus: the reconciler publishes on it
    rendition_sizes: tuple[int, ...] = DEFAULT_RENDITION_SIZES  # boxes of the responsive set (RenditionSizes)
    rendition_formats: tuple[str, ...] = DEFAULT_RENDITION_FORMATS  # its formats (RenditionFormats)
    rendition_profiles: tuple[Profile, ...] = ()  # named fixed-shape crops, in every format (RenditionProfiles)
    web_bucket: str | None = None  # the web page's static files (the API serves them: GET /web/{file})
    cdn_domain: str | None = None  # EnableCdn: download URLs name the CloudFront distribution, signed
    cdn_key_pair_id: str | None = None  # the CloudFront public key whose private key signs them
    cdn_signing_key_secret: str | None = None  # the Secrets Manager secret (name) holding that private key (PEM)
    workflow_log_group: str | None = None  # the state machine's log group: an Express execution's history
    encode_threads: int = 1  # encoder threads: 2 halve the latency only from 1769 MB up (a whole vCPU, more)
    # Sign-in (the API function only): the token issuer, the audience its tokens must name (an app client id), where
    # its keys are (empty: {issuer}/.well-known/jwks.json), and the claim and value that make a caller an admin
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_url: str | None = None
    auth_admin_claim: str = "cognito:groups"
    auth_admin_value: str = "admin"
    aws_endpoint_url: str | None = None  # AWS_ENDPOINT_URL: a local cloud's endpoint for every AWS service
    region: str = "us-east-1"
    # Per-owner quotas (the API function only): upload grants per hour and per day, bytes stored; the usage table
    usage_table: str | None = None
    quota_uploads_per_hour: int = DEFAULT_QUOTA_UPLOADS_PER_HOUR
    quota_uploads_per_day: int = DEFAULT_QUOTA_UPLOADS_PER_DAY
    quota_stored_bytes: int = DEFAULT_QUOTA_STORED_BYTES

    @property
    def rendition_set(self) -> str:
        """What the configured set is, e.g. "200,400,800,1600/avif,webp,jpeg/800": recorded with each image so a
        backfill can tell the images rendered with another configuration (and re-render them whole)."""
        parts = [",".join(map(str, self.rendition_sizes)), ",".join(self.rendition_formats), str(self.max_dimension)]
        return "/".join(parts)

    @property
    def profile_set(self) -> str:
        """What the configured crops are, e.g. "card:1200x630:centre,square:400x400:attention/avif,webp,jpeg" (by
        name; "" without profiles):
        recorded with each image so a backfill can tell the images whose crops are missing or pruned (and render
        only those crops)."""
        if not self.rendition_profiles:
            return ""
        by_name = sorted(self.rendition_profiles, key=lambda p: p.name)  # their order changes nothing rendered
        return ",".join(map(str, by_name)) + "/" + ",".join(self.rendition_formats)

    @property
    def configuration(self) -> str:
        """The whole configuration (the set and the crops): what a failed reprocess records it tried."""
        return self.rendition_set + (f"/{self.profile_set}" if self.profile_set else "")

    @property
    def input_formats(self) -> frozenset[str]:
        """The image formats this deployment accepts (the engine's names)."""
        from image_pipeline import engine

        return engine.ALL_FORMATS if self.accept_heic else engine.ALL_FORMATS - {engine.HEIF}

    def require_state_machine_arn(self) -> str:
        if not self.state_machine_arn:
            raise ConfigError("STATE_MACHINE_ARN is not set in this function's environment")
        return self.state_machine_arn

    def require_auth(self) -> tuple[str, str]:
        """The issuer and audience: the API refuses to start without them (it never serves anyone unverified)."""
        if not self.auth_issuer or not self.auth_audience:
            raise ConfigError("AUTH_ISSUER and AUTH_AUDIENCE must be set in the API function's environment")
        return self.auth_issuer, self.auth_audience

    def require_event_bus_name(self) -> str:
        if not self.event_bus_name:
            raise ConfigError("EVENT_BUS_NAME is not set in this function's environment")
        return self.event_bus_name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name)
            if not value:
                raise ConfigError(f"{name} is not set in this function's environment")
            return value

        return cls(
            table_name=required("TABLE_NAME"),
            original_bucket=required("ORIGINAL_BUCKET"),
            processed_bucket=required("PROCESSED_BUCKET"),
            work_bucket=required("WORK_BUCKET"),
            max_dimension=int(env.get("MAX_DIMENSION", DEFAULT_MAX_DIMENSION)),
            max_upload_bytes=int(env.get("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)),
            max_pixels=int(env.get("MAX_PIXELS", DEFAULT_MAX_PIXELS)),
            url_expiry_seconds=int(env.get("URL_EXPIRY_SECONDS", DEFAULT_URL_EXPIRY_SECONDS)),
            accept_heic=env.get("ACCEPT_HEIC", "true").lower() == "true",
            engine_backend=env.get("IMAGE_ENGINE_BACKEND", "auto"),
            cors_allow_origin=env.get("CORS_ALLOW_ORIGIN", "*"),
            state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
            event_bus_name=env.get("EVENT_BUS_NAME") or None,
            rendition_sizes=parse_sizes(env.get("RENDITION_SIZES", "")) or DEFAULT_RENDITION_SIZES,
            rendition_formats=parse_formats(env.get("RENDITION_FORMATS", "")) or DEFAULT_RENDITION_FORMATS,
            rendition_profiles=parse_profiles(env.get("RENDITION_PROFILES", "")),
            encode_threads=int(env.get("ENCODE_THREADS", 1)),
            web_bucket=env.get("WEB_BUCKET") or None,
            workflow_log_group=env.get("WORKFLOW_LOG_GROUP") or None,
            cdn_domain=env.get("CDN_DOMAIN") or None,
            cdn_key_pair_id=env.get("CDN_KEY_PAIR_ID") or None,
            cdn_signing_key_secret=env.get("CDN_SIGNING_KEY_SECRET") or None,
            auth_issuer=env.get("AUTH_ISSUER") or None,
            auth_audience=env.get("AUTH_AUDIENCE") or None,
            auth_jwks_url=env.get("AUTH_JWKS_URL") or None,
            auth_admin_claim=env.get("AUTH_ADMIN_CLAIM") or "cognito:groups",
            auth_admin_value=env.get("AUTH_ADMIN_VALUE") or "admin",
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            usage_table=env.get("USAGE_TABLE") or None,
            quota_uploads_per_hour=int(env.get("QUOTA_UPLOADS_PER_HOUR", DEFAULT_QUOTA_UPLOADS_PER_HOUR)),
            quota_uploads_per_day=int(env.get("QUOTA_UPLOADS_PER_DAY", DEFAULT_QUOTA_UPLOADS_PER_DAY)),
            quota_stored_bytes=int(env.get("QUOTA_STORED_BYTES", DEFAULT_QUOTA_STORED_BYTES)),
        )


def parse_sizes(text: str) -> tuple[int, ...]:
    """RenditionSizes, e.g. "200,400,800,1600": boxes of 16 to 8192 px, sorted, each once."""
    try:
        sizes = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError as e:
        raise ConfigError(f"RENDITION_SIZES must be a comma-separated list of pixel sizes, not {text!r}") from e
    if any(not 16 <= n <= 8192 for n in sizes):
        raise ConfigError(f"RENDITION_SIZES must lie between 16 and 8192 px, not {text!r}")
    return tuple(sizes)


def parse_formats(text: str) -> tuple[str, ...]:
    """RenditionFormats, e.g. "avif,webp,jpeg" (the order is the preference order of format=auto)."""
    formats = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in formats if f not in RENDITION_FORMAT_NAMES]
    if unknown:
        raise ConfigError(
            f"RENDITION_FORMATS has unknown formats {unknown}; known: {', '.join(RENDITION_FORMAT_NAMES)}"
        )
    return formats


def parse_profiles(text: str) -> tuple[Profile, ...]:
    """RENDITION_PROFILES: "name:WIDTHxHEIGHT[:strategy],..." (strategy attention by default); empty: none."""
    profiles: list[Profile] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, rest = item.partition(":")
        shape, _, strategy = rest.partition(":")
        width, _, height = shape.partition("x")
        strategy = strategy or "attention"
        if (
            not PROFILE_NAME.fullmatch(name)
            or name == "default"  # the default rendition's key
            or not (width.isdigit() and height.isdigit())
            or not (16 <= int(width) <= 4096 and 16 <= int(height) <= 4096)
            or strategy not in CROP_STRATEGIES
        ):
            raise ConfigError(
                f"RENDITION_PROFILES: {item!r} is not name:WIDTHxHEIGHT[:strategy] (a lower-case name, 16-4096 px,"
                f" a strategy of {', '.join(CROP_STRATEGIES)})"
            )
        if any(p.name == name for p in profiles):
            raise ConfigError(f"RENDITION_PROFILES names {name!r} twice")
        profiles.append(Profile(name, int(width), int(height), strategy))
    return tuple(profiles)
