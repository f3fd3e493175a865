"""Settings read once from the function's environment (set in template.yaml)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    table_name: str
    original_bucket: str
    processed_bucket: str
    max_dimension: int
    max_upload_bytes: int
    max_pixels: int
    url_expiry_seconds: int
    accept_heic: bool = True  # HEIC/HEIF input (HEVC decoding); the AcceptHeic template parameter

    @property
    def input_formats(self) -> frozenset[str]:
        """The image formats this deployment accepts (the engine's names)."""
        from image_pipeline import engine

        return engine.ALL_FORMATS if self.accept_heic else engine.ALL_FORMATS - {engine.HEIF}

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            table_name=env.get("TABLE_NAME", ""),
            original_bucket=env.get("ORIGINAL_BUCKET", ""),
            processed_bucket=env.get("PROCESSED_BUCKET", ""),
            max_dimension=int(env.get("MAX_DIMENSION", "800")),
            max_upload_bytes=int(env.get("MAX_UPLOAD_BYTES", str(25 * 1024 * 1024))),
            max_pixels=int(env.get("MAX_PIXELS", "50000000")),
            url_expiry_seconds=int(env.get("URL_EXPIRY_SECONDS", "300")),
            accept_heic=env.get("ACCEPT_HEIC", "true").lower() == "true",
        )
