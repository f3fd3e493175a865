"""The image engine: sniff, probe and render. Pure (bytes in, bytes out), no AWS.

- ``sniff`` tells the real format from magic bytes (never the extension or Content-Type);
- ``probe`` reads dimensions and frame count from the header, without decoding pixels, so the
  pixel limit is enforced before any decode (Pillow's bomb guard stays as a backstop);
- ``render_set`` decodes once (at a reduced scale for the largest output), applies EXIF orientation, converts to
  8-bit sRGB (alpha kept) and encodes, with no metadata, every rendition of the responsive set (AVIF, WebP,
  JPEG/PNG at each box, never upscaled), the default rendition (``max_dimension`` in the input's family) and a
  ThumbHash placeholder; ``render`` is the default rendition alone.

Animated GIF/WebP/AVIF: the rendition is the first frame (a still image), which keeps the output small and
valid in every viewer; the limits still count every frame. GIF renditions are PNG (lossless, alpha). Camera
JPEGs with MPF preview images and HEIF collections count (and decode) only their main/primary image.
HEIC/HEIF (pillow-heif: libheif + libde265) and AVIF (Pillow's own plugin: libavif) renditions are JPEG, or
PNG when the image has alpha; their irot/imir transforms are applied and 10-bit data is scaled to 8-bit.

``probe`` works on a prefix of the file too (``complete=False``): when the header does not fit in it (large
ICC/XMP/APPn segments, PNG text chunks before IDAT, a WebP that Pillow reads whole) it raises
``HeaderIncompleteError`` and the caller reads more; only a complete file that cannot be read is CORRUPT_IMAGE.

Two backends, chosen per input on measured speed (docs/benchmarks.md, Image engine): Pillow decodes JPEGs that shrink
by 2x or more (its reduced-scale DCT decode beats libvips there) and every unusual input (GIF, animation,
16-bit, CMYK, palette); libvips (pyvips, when installed) does the rest, where its SIMD resampler is 2-3x
faster. Both apply the same rules; the unit tests run on both. ``backend`` = pillow | vips | auto (the caller's
setting; the engine reads no environment).
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import thumbhash  # (thumbhash-rs: bindings of the reference ThumbHash encoder)
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageOps

from image_pipeline import containers, contracts
from image_pipeline.errors import HeaderIncompleteError, InvalidImageError

LOG = logging.getLogger(__name__)  # a decoder's own words go to the function's log, never to the image's record

try:  # the layer ships pyvips + pyvips-binary (libvips); without them everything goes through Pillow
    import pyvips
except (ImportError, OSError):
    pyvips = None

try:  # HEIC/HEIF decoding (libheif with its HEVC decoder, in pillow-heif's wheels)
    import pillow_heif

    # only the primary image is ever decoded: skip parsing thumbnails, depth maps and auxiliary images
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
except ImportError:
    pillow_heif = None  # type: ignore[assignment]

ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated data is an error, never grey-filled
BACKEND = "auto"  # the default of render(backend=None)
VIPS_MODES = ("RGB", "RGBA", "L", "LA")

JPEG, PNG, WEBP, GIF = "JPEG", "PNG", "WEBP", "GIF"
HEIF, AVIF = containers.HEIF, containers.AVIF  # the container formats
ALL_FORMATS = frozenset((JPEG, PNG, WEBP, GIF, HEIF, AVIF))
CONTENT_TYPES = contracts.FORMAT_CONTENT_TYPES
EXTENSIONS = {fmt: contracts.RENDITION_EXTENSIONS[fmt.lower()] for fmt in (JPEG, PNG, WEBP, AVIF)}
# The rendition's format family; HEIF and AVIF become PNG instead when the image has alpha (see _output_format).
OUTPUT_FORMAT = {JPEG: JPEG, PNG: PNG, WEBP: WEBP, GIF: PNG, HEIF: JPEG, AVIF: JPEG}
HEADER_BYTES = 256 * 1024  # the first read: the whole header of almost every file; probe says when it needs more
SNIFF_BYTES = 64  # enough for an ISO-BMFF ftyp box with its compatible brands
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class Probe:
    format: str
    width: int
    height: int
    frames: int
    mode: str = "RGB"
    icc: bool = False
    transparency: bool = False  # a tRNS colour (PNG) or palette transparency

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True)
class Rendition:
    data: bytes
    format: str
    width: int
    height: int
    backend: str = "pillow"
    box: int | None = None  # the responsive size (fits within box x box) it was made for; None: the default rendition
    profile: str | None = None  # the fixed-shape profile it was cropped for (then box is None)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def sniff(head: bytes, formats: frozenset[str] = ALL_FORMATS) -> str:
    """The format named by the first bytes (``SNIFF_BYTES`` suffice), or InvalidImageError (EMPTY_FILE,
    UNSUPPORTED_FORMAT); ``formats`` are the ones this deployment accepts."""
    if not head:
        raise InvalidImageError("EMPTY_FILE", "the object is empty")
    fmt = None
    if head.startswith(b"\xff\xd8\xff"):
        fmt = JPEG
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        fmt = PNG
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        fmt = GIF
    elif len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = WEBP
    elif len(head) >= 12 and head[4:8] == b"ftyp":
        fmt = containers.bmff_format(head)
    if fmt is None:
        raise InvalidImageError("UNSUPPORTED_FORMAT", "not a JPEG, PNG, WebP, GIF, HEIC/HEIF or AVIF image")
    if fmt not in formats:
        raise InvalidImageError("UNSUPPORTED_FORMAT", f"{fmt} input is turned off on this deployment")
    return fmt


def probe(data: bytes, max_pixels: int, complete: bool = True, formats: frozenset[str] = ALL_FORMATS) -> Probe:
    """Format, size and frame count from the header; rejects images over ``max_pixels`` (per frame and in total).

    ``data`` may be the start of the file (``complete=False``): if its header does not fit, HeaderIncompleteError
    says to read more. Frames are what is decoded or counted: every frame of an animation, but only the main image
    of a JPEG with MPF previews (Pillow's MPO) and the primary image of a HEIF file.
    """
    fmt = sniff(data[:SNIFF_BYTES], formats)
    ispe = None
    if fmt in (HEIF, AVIF):  # the container says the primary image's size (ispe) before any codec is involved
        ispe = containers.heif_primary_size(data)
        if ispe is None and not complete:
            raise HeaderIncompleteError(f"the {fmt} meta box goes on past the first {len(data)} bytes")
        if ispe is not None:
            _check_pixels(*ispe, 1, max_pixels)
        if complete and containers.bmff_end(data) > len(data):
            # libheif fills the tiles it cannot read (it decodes non-strictly): a cut-off file must not get that far
            raise InvalidImageError("CORRUPT_IMAGE", f"the {fmt} file is truncated")
    Image.MAX_IMAGE_PIXELS = None  # reading a header allocates no pixels: our limit below is the mechanism
    try:
        with Image.open(io.BytesIO(data), formats=[_pillow_format(fmt)]) as im:
            width, height = im.size
            if fmt == GIF:
                frames, whole = containers.count_gif_frames(data)
                if not whole and not complete:  # every frame counts: read on to the trailer
                    raise HeaderIncompleteError(f"GIF frames go on past the first {len(data)} bytes")
            elif fmt in (WEBP, AVIF):
                frames = getattr(im, "n_frames", 1)
            else:
                frames = 1  # JPEG (MPF previews are never decoded), PNG (APNG: the default image), HEIF (primary)
            mode, icc = im.mode, bool(im.info.get("icc_profile"))
            transparency = im.info.get("transparency") is not None
    except InvalidImageError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, RuntimeError) as e:
        if complete:
            LOG.info("the %s header was refused: %s", fmt, _short(e))  # the decoder's words: for the log only
            raise InvalidImageError("CORRUPT_IMAGE", f"the {fmt} header cannot be read") from e
        if ispe is None or (fmt == AVIF and containers.is_sequence(data)):
            raise HeaderIncompleteError(f"the {fmt} header does not fit in the first {len(data)} bytes") from e
        # libheif/libavif check item extents against the file's length: a prefix is enough for the meta box
        (width, height), frames, mode, icc, transparency = ispe, 1, "RGB", False, False
    _check_pixels(width, height, frames, max_pixels)
    return Probe(fmt, width, height, frames, mode, icc, transparency)


def _check_pixels(width: int, height: int, frames: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError("CORRUPT_IMAGE", f"invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise InvalidImageError("TOO_MANY_PIXELS", f"{width}x{height} is over the limit of {max_pixels} pixels")
    if width * height * frames > max_pixels:
        raise InvalidImageError(
            "TOO_MANY_PIXELS", f"{frames} frames of {width}x{height} are over the limit of {max_pixels} pixels"
        )


def _pillow_format(fmt: str) -> str:
    """The Pillow plugin for a format (its JPEG plugin opens camera JPEGs with MPF previews as MPO itself)."""
    if fmt == HEIF and pillow_heif is None:
        raise InvalidImageError("UNSUPPORTED_FORMAT", "HEIF decoding is not installed")
    return fmt


def _short(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


def fit(width: int, height: int, max_dimension: int) -> tuple[int, int]:
    """The size that fits within max_dimension x max_dimension, aspect kept, never larger than the input."""
    scale = min(1.0, max_dimension / width, max_dimension / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(
    data: bytes,
    max_dimension: int,
    max_pixels: int,
    backend: str | None = None,
    formats: frozenset[str] = ALL_FORMATS,
) -> Rendition:
    """Decode, orient, convert to 8-bit sRGB, fit within max_dimension, encode without metadata: the default
    rendition alone (render_set without sizes)."""
    rendered = render_set(
        data, (), (), max_dimension, max_pixels, backend=backend, input_formats=formats, with_placeholder=False
    )
    assert rendered.default is not None  # a ladder was asked for
    return rendered.default


# ---------------------------------------------------------------- the responsive set

SET_FORMATS = {"avif": AVIF, "webp": WEBP, "jpeg": JPEG}  # RenditionFormats' names; "jpeg" is PNG for alpha images
PLACEHOLDER_BOX = 100  # ThumbHash's largest input


@dataclass(frozen=True)
class Placeholder:
    thumbhash: str  # base64 of the ThumbHash bytes (https://evanw.github.io/thumbhash/)
    color: str  # the image's average colour, #rrggbb

    def as_dict(self) -> dict[str, str]:
        return {"thumbhash": self.thumbhash, "color": self.color}


@dataclass(frozen=True)
class RenditionSet:
    renditions: tuple[Rendition, ...]  # per box (smallest first), one per format
    default: Rendition | None  # max_dimension in the input's family: may be one of ``renditions`` (None: crops only)
    placeholder: Placeholder | None  # None: not asked for (render)
    backend: str
    cropped: tuple[Rendition, ...] = ()  # per profile (in the order given), one per format


CROP_STRATEGIES = contracts.CROP_STRATEGIES
Profile = contracts.Profile


def crop_size(width: int, height: int, box_width: int, box_height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the size to scale an upright width x height image to, the crop's size) for a box: the image scaled to cover
    the box, then cropped to it; never upscaled: a source smaller than the box gives the largest crop of the box's
    aspect ratio."""
    scale = max(box_width / width, box_height / height)
    if scale >= 1:
        if width * box_height > height * box_width:  # wider than the box
            return (width, height), (max(1, round(height * box_width / box_height)), height)
        return (width, height), (width, max(1, round(width * box_height / box_width)))
    covered = (max(box_width, round(width * scale)), max(box_height, round(height * scale)))
    return covered, (box_width, box_height)


def crop(
    im: Image.Image,
    box_width: int,
    box_height: int,
    strategy: str = "attention",
    focal: tuple[float, float] | None = None,
    use_vips: bool = True,
) -> Image.Image:
    """``im`` (upright, 8-bit) scaled to cover the box and cropped to it (crop_size). ``attention``: libvips'
    saliency (edges, skin tones, saturation); ``entropy``: the most detailed part; ``centre``; ``focal``: the centre
    until an owner sets a focal point. A ``focal`` point ((x, y), 0-1 of the upright image) overrides every strategy:
    the crop centres on it as far as the box allows. Without libvips, attention and entropy fall back to the
    centre."""
    if strategy not in CROP_STRATEGIES:
        raise ValueError(f"unknown crop strategy {strategy!r}; known: {', '.join(CROP_STRATEGIES)}")
    covered_size, (cw, ch) = crop_size(im.width, im.height, box_width, box_height)
    covered = im if covered_size == im.size else _resize(im, covered_size, use_vips)[0]
    if covered.size == (cw, ch):
        return covered
    if focal is None and strategy in ("attention", "entropy") and pyvips is not None and covered.mode in VIPS_BANDS:
        # libvips finds the window on what a viewer sees (an image with alpha: over grey, so that the colour of
        # transparent pixels counts for nothing); the window is then cut from the image itself, alpha and all
        seen = covered
        if covered.mode in ("RGBA", "LA"):
            grey = Image.new("RGBA", covered.size, (128, 128, 128, 255))
            seen = Image.alpha_composite(grey, covered.convert("RGBA")).convert("RGB")
        bands = VIPS_BANDS[seen.mode]
        image = pyvips.Image.new_from_memory(seen.tobytes(), seen.width, seen.height, bands, "uchar")
        image = image.copy(interpretation="srgb" if bands >= 3 else "b-w")
        window = image.smartcrop(cw, ch, interesting=strategy)
        left, top = -window.xoffset, -window.yoffset  # where the window lies in the image
        return covered.crop((left, top, left + cw, top + ch))
    fx, fy = focal if focal is not None else (0.5, 0.5)
    left = min(max(round(fx * covered.width - cw / 2), 0), covered.width - cw)
    top = min(max(round(fy * covered.height - ch / 2), 0), covered.height - ch)
    return covered.crop((left, top, left + cw, top + ch))


def boxes_for(width: int, height: int, sizes: Iterable[int]) -> list[int]:
    """The boxes to render for an upright width x height image: each box smaller than the image, and the smallest
    box that covers it (rendered at the original size), so nothing is upscaled and no format is left empty."""
    longest = max(width, height)
    ordered = sorted(set(sizes))
    smaller = [n for n in ordered if n < longest]
    covering = [n for n in ordered if n >= longest][:1]
    return smaller + covering


def render_set(
    data: bytes,
    sizes: Iterable[int],
    formats: Iterable[str],
    max_dimension: int,
    max_pixels: int,
    backend: str | None = None,
    input_formats: frozenset[str] = ALL_FORMATS,
    workers: int = 1,
    with_placeholder: bool = True,
    deliver: Callable[[Rendition], None] | None = None,
    profiles: Iterable[Profile] = (),
    focal: tuple[float, float] | None = None,
    ladder: bool = True,
) -> RenditionSet:
    """Every rendition of one image from one decode: ``formats`` (SET_FORMATS' names) at each of ``boxes_for``
    sizes, the default rendition (``max_dimension`` in the input's family, as ``render`` makes it) and a placeholder.

    The image is decoded once at a reduced scale for the largest output (JPEG DCT scaling, libvips' shrink-on-load),
    oriented and converted to 8-bit sRGB; each size is resampled from that; encoders run on ``workers`` threads
    (Pillow's and libavif's encoders release the GIL). The largest size is resampled first and its encodes queued,
    and the smaller sizes are resampled (and the placeholder made) while those run.

    ``deliver``, when given, is called in this thread with each distinct rendition as soon as it is encoded, so that
    the caller can store it while the rest encode: every rendition once, the default too when it is one of the set.
    Bad input is refused (probe, decode) before anything is delivered.

    ``profiles`` are cropped (``crop``, ``focal`` for the focal strategy) from the same decode and encoded in each
    of ``formats``: RenditionSet.cropped. ``ladder`` False renders the crops only (a focal point was set, a profile
    was added): no size, no default rendition, no placeholder, and the decode is only as large as the crops need."""
    sizes, names = sorted(set(sizes)), list(dict.fromkeys(formats))
    unknown = [n for n in names if n not in SET_FORMATS]
    if unknown:
        raise ValueError(f"unknown rendition formats {unknown}; known: {sorted(SET_FORMATS)}")
    info = probe(data, max_pixels, formats=input_formats)
    backend = backend or BACKEND
    boxes = boxes_for(info.width, info.height, sizes) if ladder else []  # the longest side: either way up
    profiles = list(profiles)
    covers = [max(crop_size(info.width, info.height, p.width, p.height)[0]) for p in profiles]  # either way up
    largest = max([*boxes, *([max_dimension] if ladder else []), *covers])
    base, used = _decode_base(data, info, largest, backend, max_pixels)
    if base.mode == "RGBA" and base.getchannel("A").getextrema()[0] == 255:
        base = base.convert("RGB")  # an alpha channel that is opaque everywhere: drop it (smaller, and JPEG)
    scaled: dict[tuple[int, int], Image.Image] = {}

    # sizes come from the original's upright size (as render always did), not from the reduced base's, whose
    # rounding can be a pixel off: 6000x4000 fits 800 as 800x533, its 1600x1067 base would give 800x534
    turned = (base.width > base.height) != (info.width > info.height)
    upright = (info.height, info.width) if turned else (info.width, info.height)

    def at(box: int) -> Image.Image:
        size = fit(*upright, box)
        if size not in scaled:
            scaled[size] = base if size == base.size else _resize(base, size, use_vips=backend != "pillow")[0]
        return scaled[size]

    # every size has the base's mode: one list of formats serves them all ("jpeg" is PNG for an image with alpha)
    set_formats = [PNG if SET_FORMATS[n] == JPEG and _has_alpha(base) else SET_FORMATS[n] for n in names]
    in_set = [(box, fmt) for box in boxes for fmt in set_formats]  # the set's order: smallest box first
    default_format = _output_format(info.format, base)
    default_size = fit(*upright, max_dimension)
    default = next(
        (key for key in in_set if key[1] == default_format and fit(*upright, key[0]) == default_size),
        (None, default_format),  # not one of the set: encoded on its own
    )
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        images: dict[tuple[int | str | None, str], Image.Image] = {}
        encoding: dict[tuple[int | str | None, str], Future[bytes]] = {}

        def queue(key: tuple[int | str | None, str], im: Image.Image) -> None:
            images[key] = im
            # each encode gets its own copy: Image.save keeps its options on the image object (not thread-safe)
            encoding[key] = pool.submit(_encode, im.copy() if workers > 1 else im, key[1])

        for box in sorted(boxes, reverse=True):  # the largest, the longest encodes, first
            im = at(box)
            for fmt in set_formats:
                queue((box, fmt), im)
        if default[0] is None and ladder:
            queue(default, at(max_dimension))
        cropped_keys: list[tuple[str, str]] = []
        for profile in profiles:
            im = crop(base, profile.width, profile.height, profile.strategy, focal, use_vips=backend != "pillow")
            for fmt in set_formats:
                queue((profile.name, fmt), im)
                cropped_keys.append((profile.name, fmt))
        smallest = min(scaled.values(), key=lambda im: im.width * im.height, default=None)
        hashed = placeholder(smallest) if with_placeholder and smallest is not None else None
        done: dict[tuple[int | str | None, str], Rendition] = {}
        for key, future in encoding.items():  # in the order queued, the order one worker finishes them in
            im = images[key]
            made_for, name = (None, key[0]) if isinstance(key[0], str) else (key[0], None)
            done[key] = Rendition(future.result(), key[1], im.width, im.height, used, made_for, name)
            if deliver is not None:
                deliver(done[key])
    return RenditionSet(
        tuple(done[key] for key in in_set),
        done[default] if ladder else None,
        hashed,
        used,
        tuple(done[key] for key in cropped_keys),
    )


def placeholder(im: Image.Image) -> Placeholder:
    """ThumbHash and average colour of an image (any size; it is reduced to PLACEHOLDER_BOX first)."""
    size = fit(im.width, im.height, PLACEHOLDER_BOX)
    small = (im.resize(size, Image.Resampling.BOX, reducing_gap=2.0) if size != im.size else im).convert("RGBA")
    hashed = thumbhash.rgba_to_thumb_hash(small.width, small.height, small.tobytes())
    r, g, b, _ = thumbhash.thumb_hash_to_average_rgba(hashed)
    color = "#" + "".join(f"{max(0, min(255, round(v * 255))):02x}" for v in (r, g, b))
    return Placeholder(base64.b64encode(hashed).decode(), color)


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA")


def _decode_base(data: bytes, info: Probe, largest: int, backend: str, max_pixels: int) -> tuple[Image.Image, str]:
    """The image oriented, 8-bit sRGB, fitted within largest x largest: libvips' thumbnail where ``_use_vips``
    says it is faster, else Pillow (reduced-scale DCT decode for JPEG)."""
    if _use_vips(info, largest, backend):
        options: dict[str, Any] = {"height": largest, "size": "down"}
        if info.icc:
            options["export_profile"] = "srgb"
        try:
            image = pyvips.Image.thumbnail_buffer(data, largest, option_string="fail_on=truncated", **options)
            if image.format != "uchar":
                image = image.cast("uchar")
            mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[image.bands]
            # frombuffer wraps libvips' bytes as they are (frombytes would zero-fill an image, then copy into it)
            im = Image.frombuffer(mode, (image.width, image.height), image.write_to_memory(), "raw", mode, 0, 1)
        except pyvips.Error as e:
            LOG.info("libvips refused the %s data: %s", info.format, str(e).strip()[:300])
            raise InvalidImageError("CORRUPT_IMAGE", f"the {info.format} data cannot be decoded") from e
        return (im.convert("RGBA") if mode == "LA" else im), "vips"
    Image.MAX_IMAGE_PIXELS = max_pixels  # backstop: Pillow refuses beyond twice this
    try:
        with Image.open(io.BytesIO(data), formats=[_pillow_format(info.format)]) as opened:
            im = _decode(opened, info, largest)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as e:
        LOG.info("Pillow refused a decompression bomb: %s", e)
        raise InvalidImageError("TOO_MANY_PIXELS", f"the image has over {max_pixels} pixels") from e
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, RuntimeError) as e:
        LOG.info("Pillow refused the %s data: %s", info.format, _short(e))
        raise InvalidImageError("CORRUPT_IMAGE", f"the {info.format} data cannot be decoded") from e
    size = fit(im.width, im.height, largest)
    if size == im.size:
        return im, "pillow"
    resized, by_vips = _resize(im, size, use_vips=backend != "pillow")
    return resized, "pillow+vips-resample" if by_vips else "pillow"


def _output_format(fmt: str, im: Image.Image) -> str:
    """The rendition's format: the input's family; HEIF/AVIF as JPEG, or PNG when the image has alpha."""
    if fmt in (HEIF, AVIF) and im.mode in ("RGBA", "LA"):
        return PNG
    return OUTPUT_FORMAT[fmt]


def _resize(im: Image.Image, size: tuple[int, int], use_vips: bool) -> tuple[Image.Image, bool]:
    """LANCZOS to size: libvips' lanczos3 (SIMD, ~4x faster) for L/RGB when available, else Pillow's."""
    if use_vips and pyvips is not None and im.mode in ("L", "RGB"):
        bands = len(im.getbands())
        image = pyvips.Image.new_from_memory(im.tobytes(), im.width, im.height, bands, "uchar")
        image = image.resize(size[0] / im.width, vscale=size[1] / im.height, kernel="lanczos3")
        if (image.width, image.height) == size:
            return Image.frombytes(im.mode, size, image.write_to_memory()), True
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), False


def _use_vips(info: Probe, max_dimension: int, backend: str) -> bool:
    if backend == "pillow" or pyvips is None:
        return False
    if info.format in (GIF, HEIF, AVIF) or info.frames > 1 or info.mode not in VIPS_MODES or info.transparency:
        return False  # Pillow handles animation, palettes, tRNS colours, 16-bit, CMYK, HEIF and AVIF
    if backend == "vips":
        return True
    # auto: Pillow's reduced-scale DCT decode wins on JPEGs that shrink by 2x or more
    return not (info.format == JPEG and max(info.width, info.height) >= 2 * max_dimension)


def _decode(im: Image.Image, info: Probe, max_dimension: int) -> Image.Image:
    orientation = im.getexif().get(0x0112, 1)
    if info.format == JPEG:
        # Ask the DCT decoder for a reduced scale no smaller than the final size (accounting for a 90° turn).
        w, h = fit(info.width, info.height, max_dimension)
        if orientation in (5, 6, 7, 8):
            w, h = fit(info.height, info.width, max_dimension)
            w, h = h, w
        im.draft(im.mode if im.mode in ("RGB", "L", "CMYK") else None, (w, h))
    if info.format != HEIF:  # a HEIF file opens at its primary image, which need not be the first
        im.seek(0)
    im.load()
    icc = im.info.get("icc_profile") or _nclx_profile(im.info.get("nclx_profile"))
    im = ImageOps.exif_transpose(im) if orientation != 1 else im  # HEIF: pillow-heif applied irot/imir already
    im = _to_8bit(im)
    if icc and im.mode in ("RGB", "RGBA", "CMYK"):
        im = _to_srgb(im, icc)
    if im.mode == "CMYK":
        im = im.convert("RGB")
    im.info = {}
    return im


def _to_8bit(im: Image.Image) -> Image.Image:
    """8-bit modes only; 16-bit data is scaled (v / 257), never clipped; a tRNS colour becomes alpha."""
    if im.info.get("transparency") is not None and im.mode in ("1", "L", "RGB", "I", "I;16", "I;16B", "I;16L"):
        return _trns_to_alpha(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        top = 65535 if im.mode.startswith("I;16") or int(im.getextrema()[1] or 0) > 255 else 255  # type: ignore[arg-type]
        im = im.convert("I").point(lambda v: v * (255 / top)).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode == "P":
        alpha = "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if alpha else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode == "LA":
        im = im.convert("RGBA")
    elif im.mode in ("RGBX", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif im.mode == "RGBa":
        im = im.convert("RGBA")
    return im


def _trns_to_alpha(im: Image.Image) -> Image.Image:
    """A PNG whose tRNS chunk names one transparent colour (grey or RGB, 1 to 16 bits): that colour gets alpha 0."""
    trns = im.info.pop("transparency")
    if im.mode in ("1", "L", "RGB"):
        im.info["transparency"] = trns
        return im.convert("RGBA")  # Pillow applies the tRNS colour itself for 8-bit modes
    # 16-bit grey: compare both bytes of each sample with the tRNS value, then scale the grey to 8 bits
    wide = im if im.mode == "I;16" else im.convert("I;16")
    raw = wide.tobytes("raw", "I;16")
    low, high = (Image.frombytes("L", wide.size, raw[i::2]) for i in (0, 1))
    opaque_low = low.point(lambda v: 0 if v == (int(trns) & 0xFF) else 255)
    opaque_high = high.point(lambda v: 0 if v == (int(trns) >> 8 & 0xFF) else 255)
    alpha = ImageChops.lighter(opaque_low, opaque_high)
    grey = _to_8bit(wide)
    return Image.merge("RGBA", (grey, grey, grey, alpha))


DISPLAY_P3_PRIMARIES = 12  # ISO/IEC 23091-2 ColourPrimaries: SMPTE EG 432-1, i.e. Display P3 (D65)


def _nclx_profile(nclx: dict[str, Any] | None) -> bytes | None:
    """An ICC profile for a HEIF's nclx colour description where it is not sRGB's: Display P3 primaries (phones
    that describe colour by nclx instead of an ICC profile). BT.709 primaries are sRGB's: nothing to convert."""
    if nclx and nclx.get("color_primaries") == DISPLAY_P3_PRIMARIES:
        return _display_p3_icc()
    return None


@functools.cache
def _display_p3_icc() -> bytes | None:
    """libvips' built-in Display P3 profile (the layer ships libvips; without it, no conversion)."""
    if pyvips is None:
        return None
    png = pyvips.Image.black(1, 1, bands=3).copy(interpretation="srgb").pngsave_buffer(profile="p3")
    return Image.open(io.BytesIO(png)).info.get("icc_profile")


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        return im  # an unreadable profile: keep the pixels as they are
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    try:
        converted = ImageCms.profileToProfile(im, source, _SRGB, outputMode=out_mode)
    except ImageCms.PyCMSError:
        converted = None
    return converted if converted is not None else im.convert(out_mode)


# Encoder settings, chosen on measured time, bytes and SSIM (make bench-renditions; docs/benchmarks.md, Responsive
# renditions)
JPEG_OPTIONS: dict[str, Any] = {"quality": 85, "progressive": True, "optimize": True}
PNG_OPTIONS: dict[str, Any] = {"compress_level": 6}
VIPS_BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
# AVIF q70 and WebP q85 are the settings that reach JPEG q85's SSIM (0.971 on real phone/camera photos at 800 px);
# AVIF speed 9 and WebP method 2 cost 2% more bytes than speed 8 / method 4 for a quarter / half of the time.
WEBP_OPTIONS: dict[str, Any] = {"quality": 85, "method": 2}
AVIF_OPTIONS: dict[str, Any] = {"quality": 70, "speed": 9, "max_threads": 1}


def _encode(im: Image.Image, fmt: str, options: dict[str, Any] | None = None) -> bytes:
    """Encode without metadata; ``options`` override the format's settings (the benchmark's sweeps)."""
    buf = io.BytesIO()
    if fmt == JPEG:
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        im.save(buf, "JPEG", **(options or JPEG_OPTIONS))
    elif fmt == PNG and pyvips is not None and options is None and im.mode in VIPS_BANDS:
        # libvips' deflate: same bytes as Pillow's on graphics, +24% on photographic alpha, 4-8x faster
        image = pyvips.Image.new_from_memory(im.tobytes(), im.width, im.height, VIPS_BANDS[im.mode], "uchar")
        return image.pngsave_buffer(compression=PNG_OPTIONS["compress_level"], keep="none")
    elif fmt == PNG:
        im.save(buf, "PNG", **(options or PNG_OPTIONS))
    elif fmt == AVIF:
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.mode else "RGB")
        im.save(buf, "AVIF", **(options or AVIF_OPTIONS))
    else:
        im.save(buf, "WEBP", **(options or WEBP_OPTIONS))
    return buf.getvalue()
