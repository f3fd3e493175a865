"""The workflow's step payloads: what each Lambda step answers and the next one takes (through the state machine's
state, statemachine/image_pipeline.asl.json). events/step_*.json holds a real sample of each step's input."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class CropPlan(TypedDict):
    """Which fixed-shape crops an execution renders, decided by Validate from the record and the configuration."""

    render: list[str]  # the profiles to render now, in the configuration's order
    keep: list[str]  # the profiles whose recorded renditions stay (a crops-only run: their spec and focus are current)
    prune: list[str]  # the profiles the record names that the configuration no longer has
    profileSet: str  # the configured crops (Settings.profile_set), recorded when the run ends
    focal: list[float] | None  # the owner's focal point [x, y], 0-1 of the upright image; None: each strategy's own


class Validated(TypedDict):
    """Validate's answer for an image it claimed: the original as it read it, and the version this execution makes."""

    imageId: str
    duplicate: bool  # False here
    version: str  # keys.version_of(the execution's ARN)
    reprocess: bool
    bucket: str
    key: str
    etag: str
    bytes: int
    format: str  # the engine's name: JPEG, PNG, WEBP, GIF, HEIF, AVIF
    width: int
    height: int
    scope: NotRequired[str]  # contracts.SCOPE_ALL (absent: the same) or contracts.SCOPE_CROPS: the crops only
    crops: NotRequired[CropPlan]


class Duplicate(TypedDict):
    """Validate's answer for an image another execution owns, or owned (the state machine skips the rest)."""

    imageId: str
    duplicate: bool  # True here
    status: str


class StagedObject(TypedDict):
    key: str  # keys.staging_key(imageId, version), in the work bucket
    bytes: int
    sha256: str  # base64, as S3 takes ChecksumSHA256


class StagedPart(TypedDict):
    """One rendition in the staged object."""

    size: int | None  # its box; None: the default rendition, outside the set, or a profile's
    profile: str | None  # the fixed-shape profile it was cropped for (RenditionProfiles)
    format: str  # contracts.RENDITION_FORMATS
    width: int
    height: int
    offset: int
    bytes: int
    sha256: str


class Resized(TypedDict):
    """Resize's answer: where each rendition lies in the staged object. Store checks all of it."""

    staged: StagedObject
    parts: list[StagedPart]
    default: int | None  # the index of the default rendition in parts (None: a crops-only run)
    inSet: int  # parts[:inSet] are the responsive set, in its order
    placeholder: dict[str, Any] | None
    renditionSet: str
    engine: str


class Rendition(TypedDict):
    size: int | None
    width: int
    height: int
    format: str
    bytes: int
    key: str


class Processed(TypedDict):
    key: str
    bytes: int
    width: int
    height: int
    format: str  # upper case: JPEG, PNG, WEBP, AVIF


class Stored(TypedDict):
    """Store's answer, which Mark processed records (a crops-only run's: the version and the profiles)."""

    version: str
    processed: NotRequired[Processed]
    renditions: NotRequired[list[Rendition]]
    profiles: dict[str, list[Rendition]]  # each fixed-shape profile's renditions, one per format
    placeholder: dict[str, Any] | None
    renditionSet: str


class Marked(TypedDict):
    """Mark processed's answer: the completion event's detail (Publish processed)."""

    imageId: str
    owner: str | None
    status: str
    renditions: list[dict[str, Any]]


class Recorded(TypedDict):
    """Record failure's answer (Publish failure announces it when ``recorded``)."""

    recorded: bool
    reason: NotRequired[str]
    imageId: NotRequired[str]
    owner: NotRequired[str | None]
    status: NotRequired[str]
    error: NotRequired[dict[str, Any]]
    detailType: NotRequired[str]
