"""Every named error of the app, in one place. Their class names are what Step Functions Retry/Catch match on
(tests/unit/test_template.py checks that every custom name in the ASL is a class here)."""

from __future__ import annotations

from typing import Any


class InvalidImageError(Exception):
    """Bad input: never retried; the image ends REJECTED with this code.

    The message starts with the machine-readable code (``"TOO_LARGE: ..."``) so the code survives
    the trip through Step Functions, which only keeps the error name and message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.detail = message


class TransientAWSError(Exception):
    """An AWS call failed in a way worth retrying (5xx, throttling, timeouts): the state machine retries it."""


class ImageNotOwnedError(Exception):
    """Another execution owns this image (or it moved on): this execution must not write its status."""


class HeaderIncompleteError(Exception):
    """The bytes read so far end before the image's header does: read more of the object (never a verdict)."""


class RenditionIntegrityError(TransientAWSError):
    """S3 stored a rendition whose checksum is not the encoded one's (retried: the step renders and puts it again)."""


class OriginalReplacedError(Exception):
    """The original changed between validate and resize (a second PUT to the same upload URL): FAILED, not retried;
    what was validated is no longer what is there."""


class ApiError(Exception):
    """An HTTP API refusal: status, machine-readable code, message (and extra fields of the body); ``retry_after``
    (seconds) becomes the Retry-After header."""

    def __init__(
        self, http_status: int, code: str, message: str, *, retry_after: int | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message, self.extra = http_status, code, message, extra
        self.retry_after = retry_after


class ManifestTooLargeError(Exception):
    """The backfill's manifest would need more parts than one multipart upload carried through the state machine
    holds (backfill.MAX_PARTS): too many images to re-render in one run (never retried)."""


class ConfigError(Exception):
    """A required setting is missing from the function's environment (a deployment error: fail loudly)."""
