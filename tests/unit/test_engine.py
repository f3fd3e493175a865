"""The image engine on real generated images, hostile ones included."""

from __future__ import annotations

import io

import pytest
from image_pipeline import engine
from image_pipeline.errors import InvalidImageError
from PIL import Image

from tests import images

MAX_PIXELS = 50_000_000


@pytest.fixture(params=["pillow", "vips", "auto"], autouse=True)
def backend(request, monkeypatch):
    """Every rule holds on both backends ("vips" prefers libvips wherever it applies)."""
    if request.param != "pillow" and engine.pyvips is None:
        pytest.fail("pyvips is not installed: the vips backend is untested")
    monkeypatch.setattr(engine, "BACKEND", request.param)
    return request.param


def render(data: bytes, max_dimension: int = 800) -> tuple[engine.Rendition, Image.Image]:
    out = engine.render(data, max_dimension, MAX_PIXELS)
    return out, Image.open(io.BytesIO(out.data))


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (images.jpeg(40, 30), "JPEG"),
        (images.png_rgba(40, 30), "PNG"),
        (images.webp(40, 30), "WEBP"),
        (images.gif_animated(40, 30, 2), "GIF"),
    ],
)
def test_sniff_reads_magic_bytes(data, fmt):
    assert engine.sniff(data[:16]) == fmt


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY_FILE"),
        (images.TEXT_AS_JPEG, "UNSUPPORTED_FORMAT"),
        (images.HTML, "UNSUPPORTED_FORMAT"),
        (images.SVG, "UNSUPPORTED_FORMAT"),
        (images.PDF, "UNSUPPORTED_FORMAT"),
        (images.encode(images.photo(20, 20), "BMP"), "UNSUPPORTED_FORMAT"),
        (images.encode(images.photo(20, 20), "TIFF"), "UNSUPPORTED_FORMAT"),
    ],
)
def test_render_rejects_what_is_not_an_accepted_image(data, code):
    with pytest.raises(InvalidImageError) as err:
        engine.render(data, 800, MAX_PIXELS)
    assert err.value.code == code


def _damaged(data: bytes, keep: int) -> bytes:
    """``data`` with every byte after the first ``keep`` of it scrambled (a header that parses, data that does not)."""
    return data[:keep] + bytes((b * 7 + 13) % 256 for b in data[keep:])


@pytest.mark.parametrize("backend", ["pillow", "vips"])
@pytest.mark.parametrize(
    "data",
    [
        _damaged(images.jpeg(300, 200), 400),
        _damaged(images.encode(images.photo(300, 200), "PNG"), 60),
        _damaged(images.webp(300, 200), 40),
        images.jpeg(300, 200)[:-600],
    ],
    ids=["jpeg", "png", "webp", "truncated-jpeg"],
)
def test_a_rejection_says_a_fixed_phrase_never_the_decoders_words(data, backend):
    # GIVEN a file whose header passes and whose data is damaged WHEN it is rendered
    with pytest.raises(InvalidImageError) as err:
        engine.render(data, 800, MAX_PIXELS, backend=backend)
    # THEN the message (what the image's record shows its owner) is one of ours, whatever the decoder said
    fixed = {
        f"the {fmt} {what}"
        for fmt in ("JPEG", "PNG", "WEBP", "WebP")
        for what in ("data cannot be decoded", "header cannot be read", "file is truncated")
    }
    assert err.value.code == "CORRUPT_IMAGE" and err.value.detail in fixed, err.value.detail


def test_large_jpeg_fits_within_max_dimension_keeping_aspect():
    out, im = render(images.jpeg(4000, 3000))
    assert (out.width, out.height) == (800, 600) == im.size
    assert out.format == "JPEG" and im.format == "JPEG" and out.content_type == "image/jpeg"
    assert im.info.get("progressive") or im.info.get("progression")


def test_portrait_jpeg_fits_by_height():
    out, _ = render(images.jpeg(1000, 3000))
    assert (out.width, out.height) == (267, 800)


def test_small_image_is_not_upscaled():
    out, im = render(images.jpeg(120, 80))
    assert im.size == (120, 80)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_for_all_eight_values(orientation):
    out, im = render(images.jpeg_with_orientation(orientation))
    turned = orientation in (5, 6, 7, 8)
    assert im.size == ((200, 300) if turned else (300, 200))
    # the red quarter was at the stored top-left; upright it lands where the orientation puts it
    expected_corner = {1: (0, 0), 2: (1, 0), 3: (1, 1), 4: (0, 1), 5: (0, 0), 6: (1, 0), 7: (1, 1), 8: (0, 1)}[
        orientation
    ]
    x = 5 if expected_corner[0] == 0 else im.width - 6
    y = 5 if expected_corner[1] == 0 else im.height - 6
    r, g, b = im.convert("RGB").getpixel((x, y))
    assert r > 200 and b < 60, (orientation, (r, g, b))


def test_exif_and_gps_are_stripped():
    _, im = render(images.jpeg_with_orientation(6, gps=True))
    assert not im.getexif()
    assert "exif" not in im.info and "xmp" not in im.info


def test_png_alpha_is_kept():
    out, im = render(images.png_rgba(1000, 500))
    assert out.format == "PNG" and im.mode == "RGBA" and im.size == (800, 400)
    assert im.getpixel((10, 200))[3] == 255 and im.getpixel((790, 200))[3] == 0


def test_palette_with_transparency_becomes_rgba():
    _, im = render(images.png_palette_transparent())
    assert im.mode == "RGBA"


def test_cmyk_jpeg_becomes_rgb():
    out, im = render(images.jpeg_cmyk())
    assert out.format == "JPEG" and im.mode == "RGB" and im.size == (800, 533)


def test_16bit_is_scaled_not_clipped():
    _, im = render(images.png_16bit_gray())
    assert im.mode == "L"
    assert im.getpixel((10, 10)) == 255
    assert 120 <= im.getpixel((250, 10)) <= 135


def test_webp_stays_webp():
    out, im = render(images.webp(1600, 1200))
    assert out.format == "WEBP" and im.format == "WEBP" and im.size == (800, 600)


def test_animated_gif_gives_a_valid_still_png():
    out, im = render(images.gif_animated(1000, 800, 4))
    assert out.format == "PNG" and im.size == (800, 640)
    im.load()


def test_truncated_jpeg_is_corrupt_not_grey():
    with pytest.raises(InvalidImageError) as err:
        engine.render(images.truncated_jpeg(), 800, MAX_PIXELS)
    assert err.value.code == "CORRUPT_IMAGE"


def test_decompression_bomb_is_refused_from_the_header():
    bomb = images.png_bomb(10_000)
    assert len(bomb) < 200_000  # small on disk, 100 megapixels decoded
    with pytest.raises(InvalidImageError) as err:
        engine.probe(bomb, MAX_PIXELS)
    assert err.value.code == "TOO_MANY_PIXELS"


def test_header_claiming_60000_square_is_refused_before_decoding():
    with pytest.raises(InvalidImageError) as err:
        engine.render(images.png_header_claiming(60_000, 60_000), 800, MAX_PIXELS)
    assert err.value.code == "TOO_MANY_PIXELS"


def test_animation_limit_counts_every_frame():
    data = images.gif_animated(100, 100, 6)
    assert engine.probe(data, MAX_PIXELS).frames == 6
    with pytest.raises(InvalidImageError) as err:
        engine.probe(data, 100 * 100 * 5)
    assert err.value.code == "TOO_MANY_PIXELS"


@pytest.mark.parametrize(
    "data",
    [images.p3_red(1600, 1200), images.p3_red(64, 64), images.p3_red(300, 200, "png")],
    ids=["large JPEG", "small JPEG", "PNG"],
)
def test_colour_profile_is_converted_to_srgb(data):
    assert Image.open(io.BytesIO(data)).getpixel((5, 5))[1] > 40  # the stored pixels are P3's, not sRGB's
    out, im = render(data, 100)
    r, g, b = im.convert("RGB").getpixel((im.width // 2, im.height // 2))[:3]
    assert r >= 250 and g <= 8 and b <= 8, (r, g, b)  # sRGB red, not the P3 numbers read as sRGB
    profile = im.info.get("icc_profile")
    assert not profile or b"sRGB" in profile or b"srgb" in profile.lower()
