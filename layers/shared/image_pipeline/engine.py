"""The image engine: sniff, probe and render. Pure (bytes in, bytes out), no AWS.

- ``sniff`` tells the real format from magic bytes (never the extension or Content-Type);
- ``probe`` reads dimensions and frame count from the header, without decoding pixels, so the
  pixel limit is enforced before any decode (Pillow's bomb guard stays as a backstop);
- ``render`` decodes, applies EXIF orientation, converts to 8-bit sRGB (alpha kept), fits within
  ``max_dimension`` (never upscales) and encodes the rendition with no metadata.

Animated GIF/WebP: the rendition is the first frame (a still image), which keeps the output small and
valid in every viewer; the limits still count every frame. GIF renditions are PNG (lossless, alpha).

Two backends, chosen per input on measured speed (docs/benchmarks.md): Pillow decodes JPEGs that shrink
by 2x or more (its reduced-scale DCT decode beats libvips there) and every unusual input (GIF, animation,
16-bit, CMYK, palette); libvips (pyvips, when installed) does the rest, where its SIMD resampler is 2-3x
faster. Both apply the same rules; the unit tests run on both. IMAGE_ENGINE_BACKEND=pillow|vips|auto.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, ImageOps

from image_pipeline.errors import InvalidImageError

try:  # the layer ships pyvips + pyvips-binary (libvips); without them everything goes through Pillow
    import pyvips
except (ImportError, OSError):
    pyvips = None

ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated data is an error, never grey-filled
BACKEND = os.environ.get("IMAGE_ENGINE_BACKEND", "auto")
VIPS_MODES = ("RGB", "RGBA", "L", "LA")

JPEG, PNG, WEBP, GIF = "JPEG", "PNG", "WEBP", "GIF"
CONTENT_TYPES = {JPEG: "image/jpeg", PNG: "image/png", WEBP: "image/webp", GIF: "image/gif"}
EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp"}
OUTPUT_FORMAT = {JPEG: JPEG, PNG: PNG, WEBP: WEBP, GIF: PNG}
HEADER_BYTES = 256 * 1024  # enough for the header of any accepted format (JPEG APPn segments included)
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class Probe:
    format: str
    width: int
    height: int
    frames: int
    mode: str = "RGB"
    icc: bool = False

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

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def sniff(head: bytes) -> str:
    """The format named by the first bytes, or InvalidImageError (EMPTY_FILE, UNSUPPORTED_FORMAT)."""
    if not head:
        raise InvalidImageError("EMPTY_FILE", "the object is empty")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    raise InvalidImageError("UNSUPPORTED_FORMAT", "not a JPEG, PNG, WebP or GIF image")


def probe(data: bytes, max_pixels: int) -> Probe:
    """Format, size and frame count from the header; rejects images over ``max_pixels`` (per frame and in total)."""
    fmt = sniff(data[:16])
    Image.MAX_IMAGE_PIXELS = None  # reading a header allocates no pixels: our limit below is the mechanism
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            frames = _count_gif_frames(data) if fmt == GIF else getattr(im, "n_frames", 1)
            mode, icc = im.mode, bool(im.info.get("icc_profile"))
    except InvalidImageError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise InvalidImageError("CORRUPT_IMAGE", f"cannot read the {fmt} header: {e}") from e
    if width <= 0 or height <= 0:
        raise InvalidImageError("CORRUPT_IMAGE", f"invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise InvalidImageError("TOO_MANY_PIXELS", f"{width}x{height} is over the limit of {max_pixels} pixels")
    if width * height * frames > max_pixels:
        raise InvalidImageError(
            "TOO_MANY_PIXELS", f"{frames} frames of {width}x{height} are over the limit of {max_pixels} pixels"
        )
    return Probe(fmt, width, height, frames, mode, icc)


def fit(width: int, height: int, max_dimension: int) -> tuple[int, int]:
    """The size that fits within max_dimension x max_dimension, aspect kept, never larger than the input."""
    scale = min(1.0, max_dimension / width, max_dimension / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(data: bytes, max_dimension: int, max_pixels: int, backend: str | None = None) -> Rendition:
    """Decode, orient, convert to 8-bit sRGB, fit within max_dimension, encode without metadata."""
    info = probe(data, max_pixels)
    backend = backend or BACKEND
    if _use_vips(info, max_dimension, backend):
        return _render_vips(data, info, max_dimension)
    Image.MAX_IMAGE_PIXELS = max_pixels  # backstop: Pillow refuses beyond twice this
    try:
        with Image.open(io.BytesIO(data), formats=[info.format]) as im:
            im = _decode(im, info, max_dimension)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as e:
        raise InvalidImageError("TOO_MANY_PIXELS", str(e)) from e
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise InvalidImageError("CORRUPT_IMAGE", f"cannot decode the {info.format} data: {e}") from e
    size = fit(im.width, im.height, max_dimension)
    resampled_by_vips = False
    if size != im.size:
        im, resampled_by_vips = _resize(im, size, use_vips=backend != "pillow")
    out_format = OUTPUT_FORMAT[info.format]
    used = "pillow+vips-resample" if resampled_by_vips else "pillow"
    return Rendition(_encode(im, out_format), out_format, im.width, im.height, used)


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
    if info.format == GIF or info.frames > 1 or info.mode not in VIPS_MODES:
        return False  # Pillow handles animation, palettes, 16-bit and CMYK
    if backend == "vips":
        return True
    # auto: Pillow's reduced-scale DCT decode wins on JPEGs that shrink by 2x or more
    return not (info.format == JPEG and max(info.width, info.height) >= 2 * max_dimension)


def _render_vips(data: bytes, info: Probe, max_dimension: int) -> Rendition:
    out_format = OUTPUT_FORMAT[info.format]
    options = {"height": max_dimension, "size": "down"}
    if info.icc:
        options["export_profile"] = "srgb"
    try:
        # fail_on=truncated: truncated or corrupt data is an error, never grey-filled (auto-rotates by EXIF)
        image = pyvips.Image.thumbnail_buffer(data, max_dimension, option_string="fail_on=truncated", **options)
        if out_format == JPEG:
            encoded = image.write_to_buffer(".jpg", Q=85, interlace=True, keep="none")
        elif out_format == PNG:
            encoded = image.write_to_buffer(".png", compression=6, keep="none")
        else:
            encoded = image.write_to_buffer(".webp", Q=80, effort=4, keep="none")
    except pyvips.Error as e:
        raise InvalidImageError("CORRUPT_IMAGE", f"cannot decode the {info.format} data: {str(e).strip()[:300]}") from e
    return Rendition(encoded, out_format, image.width, image.height, "vips")


def _decode(im: Image.Image, info: Probe, max_dimension: int) -> Image.Image:
    orientation = im.getexif().get(0x0112, 1)
    if info.format == JPEG:
        # Ask the DCT decoder for a reduced scale no smaller than the final size (accounting for a 90° turn).
        w, h = fit(info.width, info.height, max_dimension)
        if orientation in (5, 6, 7, 8):
            w, h = fit(info.height, info.width, max_dimension)
            w, h = h, w
        im.draft(im.mode if im.mode in ("RGB", "L", "CMYK") else None, (w, h))
    im.seek(0)
    im.load()
    icc = im.info.get("icc_profile")
    im = ImageOps.exif_transpose(im) if orientation != 1 else im
    im = _to_8bit(im)
    if icc and im.mode in ("RGB", "RGBA", "CMYK"):
        im = _to_srgb(im, icc)
    if im.mode == "CMYK":
        im = im.convert("RGB")
    im.info = {}
    return im


def _to_8bit(im: Image.Image) -> Image.Image:
    """8-bit modes only; 16-bit data is scaled (v / 257), never clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        top = 65535 if im.mode.startswith("I;16") or (im.getextrema()[1] or 0) > 255 else 255
        im = im.convert("I").point(lambda v: v * (255 / top)).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info or im.palette.mode == "RGBA" else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode == "LA":
        im = im.convert("RGBA")
    elif im.mode in ("RGBX", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif im.mode == "RGBa":
        im = im.convert("RGBA")
    return im


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        return im  # an unreadable profile: keep the pixels as they are
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    try:
        return ImageCms.profileToProfile(im, source, _SRGB, outputMode=out_mode)
    except ImageCms.PyCMSError:
        return im.convert(out_mode)


def _encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == JPEG:
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        im.save(buf, "JPEG", quality=85, progressive=True, optimize=True)
    elif fmt == PNG:
        im.save(buf, "PNG", compress_level=6)
    else:
        im.save(buf, "WEBP", quality=80, method=4)
    return buf.getvalue()


def _count_gif_frames(data: bytes) -> int:
    """Count GIF image descriptors by walking the block structure (no LZW decoding)."""
    if len(data) < 13:
        raise InvalidImageError("CORRUPT_IMAGE", "GIF header is truncated")
    pos = 13
    if data[10] & 0x80:
        pos += 3 * (2 ** ((data[10] & 0x07) + 1))
    frames = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            return max(frames, 1)
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            frames += 1
            flags = data[pos + 9] if pos + 9 < len(data) else 0
            pos += 10
            if flags & 0x80:
                pos += 3 * (2 ** ((flags & 0x07) + 1))
            pos = _skip_sub_blocks(data, pos + 1)  # LZW minimum code size, then data sub-blocks
        else:
            break
    return max(frames, 1)  # a truncated stream: what was seen (decoding will reject it)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos
