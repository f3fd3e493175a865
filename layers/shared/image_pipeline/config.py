"""Settings read once, at cold start, from the function's environment (set in template.yaml). Nothing else in the
app reads ``os.environ``. A required name that is missing is a deployment error: ConfigError, not a default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from image_pipeline.errors import ConfigError

# The defaults, once: template.yaml's parameter defaults are checked against these (tests/unit/test_template.py)
DEFAULT_MAX_DIMENSION = 800
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_URL_EXPIRY_SECONDS = 300


@dataclass(frozen=True)
class Settings:
    table_name: str
    original_bucket: str
    processed_bucket: str
    max_dimension: int = DEFAULT_MAX_DIMENSION
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    url_expiry_seconds: int = DEFAULT_URL_EXPIRY_SECONDS
    accept_heic: bool = True  # HEIC/HEIF input (HEVC decoding); the AcceptHeic template parameter
    engine_backend: str = "auto"  # the image engine's backend: auto | pillow | vips
    cors_allow_origin: str = "*"
    state_machine_arn: str | None = None  # only the reconciler's environment has it

    @property
    def input_formats(self) -> frozenset[str]:
        """The image formats this deployment accepts (the engine's names)."""
        from image_pipeline import engine

        return engine.ALL_FORMATS if self.accept_heic else engine.ALL_FORMATS - {engine.HEIF}

    def require_state_machine_arn(self) -> str:
        if not self.state_machine_arn:
            raise ConfigError("STATE_MACHINE_ARN is not set in this function's environment")
        return self.state_machine_arn

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
            max_dimension=int(env.get("MAX_DIMENSION", DEFAULT_MAX_DIMENSION)),
            max_upload_bytes=int(env.get("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)),
            max_pixels=int(env.get("MAX_PIXELS", DEFAULT_MAX_PIXELS)),
            url_expiry_seconds=int(env.get("URL_EXPIRY_SECONDS", DEFAULT_URL_EXPIRY_SECONDS)),
            accept_heic=env.get("ACCEPT_HEIC", "true").lower() == "true",
            engine_backend=env.get("IMAGE_ENGINE_BACKEND", "auto"),
            cors_allow_origin=env.get("CORS_ALLOW_ORIGIN", "*"),
            state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
        )
