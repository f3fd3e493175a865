"""What the API, the workflow and the CLI agree on, in one small module with no dependencies."""

from __future__ import annotations

# A rendition's format, as the API names it (GET /download?format=, the record's renditions[].format): its file
# extension in the rendition's key and its Content-Type. "jpeg" is PNG's place for images with alpha.
RENDITION_FORMATS: dict[str, tuple[str, str]] = {
    "avif": ("avif", "image/avif"),
    "webp": ("webp", "image/webp"),
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
}
RENDITION_EXTENSIONS = {name: extension for name, (extension, _) in RENDITION_FORMATS.items()}
RENDITION_CONTENT_TYPES = {name: content_type for name, (_, content_type) in RENDITION_FORMATS.items()}
