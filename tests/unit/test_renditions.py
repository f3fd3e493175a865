"""The responsive set (engine.render_set): sizes, formats, the default rendition, placeholders, one decode."""

from __future__ import annotations

import base64
import io

import pytest
import thumbhash
from image_pipeline import engine
from PIL import Image

from tests import corpus, images

SIZES, FORMATS = (200, 400, 800, 1600), ("avif", "webp", "jpeg")


def render_set(data: bytes, sizes=SIZES, formats=FORMATS, **kwargs) -> engine.RenditionSet:
    return engine.render_set(data, sizes, formats, 800, 100_000_000, **kwargs)


@pytest.mark.parametrize(
    ("width", "height", "boxes"),
    [
        (4000, 3000, [200, 400, 800, 1600]),
        (1600, 1200, [200, 400, 800, 1600]),  # 1600 covers it exactly: the original size
        (1000, 50, [200, 400, 800, 1600]),
        (300, 200, [200, 400]),  # 400 covers it; 800 and 1600 would upscale
        (150, 150, [200]),  # smaller than every box: one rendition per format, at its own size
        (50, 1000, [200, 400, 800, 1600]),
    ],
)
def test_boxes_never_upscale_and_always_cover_the_image(width, height, boxes):
    assert engine.boxes_for(width, height, SIZES) == boxes


def test_every_rendition_decodes_at_its_declared_size_and_format_without_metadata():
    rendered = render_set(images.jpeg_with_orientation(6, 2400, 1800, gps=True))  # upright 1800x2400
    assert [(r.box, r.format) for r in rendered.renditions] == [
        (box, fmt) for box in SIZES for fmt in ("AVIF", "WEBP", "JPEG")
    ]
    for r in rendered.renditions:
        with Image.open(io.BytesIO(r.data)) as im:
            assert im.format == r.format and im.size == (r.width, r.height)
            assert max(im.size) == r.box and im.height > im.width  # upright, fitted to its box
            assert not im.getexif() and "icc_profile" not in im.info
            # the red corner of the stored image is the top right once upright
            red = im.convert("RGB").getpixel((im.width - 3, 2))
            assert red[0] > 180 and red[2] < 90, (r.box, r.format, red)


def test_the_default_rendition_is_the_sets_own_when_they_coincide():
    rendered = render_set(images.jpeg(1200, 900))
    assert rendered.default in rendered.renditions  # the 800-px JPEG: encoded once, stored once
    assert (rendered.default.format, rendered.default.width, rendered.default.box) == ("JPEG", 800, 800)
    gif = render_set(images.gif_animated())  # the default of a GIF is a PNG, the set has JPEGs
    assert gif.default not in gif.renditions and gif.default.format == "PNG" and gif.default.box is None


def test_alpha_gives_png_for_jpeg_and_keeps_transparency_in_avif_and_webp():
    rendered = render_set(images.png_rgba(1000, 500))
    assert {r.format for r in rendered.renditions} == {"AVIF", "WEBP", "PNG"}
    for r in rendered.renditions:
        with Image.open(io.BytesIO(r.data)) as im:
            assert im.mode == "RGBA" and im.getchannel("A").getextrema()[0] < 128, r.format


def test_an_alpha_channel_that_is_opaque_everywhere_is_dropped():
    opaque = images.encode(images.photo(600, 400).convert("RGBA"), "PNG")
    rendered = render_set(opaque)
    assert {r.format for r in rendered.renditions} == {"AVIF", "WEBP", "JPEG"}
    assert rendered.default.format == "PNG"  # the default keeps the input's family


def test_the_image_is_decoded_once_for_the_whole_set(monkeypatch):
    calls = []
    original = engine._decode_base
    monkeypatch.setattr(engine, "_decode_base", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    render_set(images.jpeg(4000, 3000))
    assert calls == [1600]  # one decode, at the largest box


def test_threads_give_the_same_bytes_as_one():
    data = images.jpeg(1300, 1000)
    one, two = render_set(data, workers=1), render_set(data, workers=2)
    assert [r.data for r in one.renditions] == [r.data for r in two.renditions]


@pytest.mark.parametrize("workers", [1, 2])
def test_each_rendition_is_delivered_once_as_soon_as_it_is_encoded(workers):
    # the default is one of the set (the 800-px JPEG) for a JPEG, not for a GIF (a PNG default, JPEGs in the set)
    for data, extra in ((images.jpeg(1700, 1200), 0), (images.gif_animated(), 1)):
        delivered: list[engine.Rendition] = []
        rendered = render_set(data, workers=workers, deliver=delivered.append)
        assert len(delivered) == len(rendered.renditions) + extra
        assert {id(r) for r in delivered} == {id(r) for r in (*rendered.renditions, rendered.default)}
        # the largest box first: its encodes take longest, and the smaller sizes are resampled meanwhile
        assert [r.box for r in delivered[:3]] == [max(r.box for r in rendered.renditions)] * 3


def test_bad_input_is_refused_before_anything_is_delivered():
    delivered = []
    with pytest.raises(engine.InvalidImageError):
        render_set(images.jpeg(1200, 900)[:5000], deliver=delivered.append)  # truncated
    assert delivered == []


def test_the_placeholder_is_a_thumbhash_with_the_pictures_shape_and_colour():
    data = images.encode(Image.new("RGB", (1600, 800), (200, 40, 40)), "JPEG")
    placeholder = render_set(data).placeholder
    hashed = base64.b64decode(placeholder.thumbhash)
    assert len(hashed) < 40 and thumbhash.thumb_hash_to_approximate_aspect_ratio(hashed) == pytest.approx(
        2, rel=0.15
    )  # ThumbHash keeps 7:4
    r, g, b = (int(placeholder.color[i : i + 2], 16) for i in (1, 3, 5))
    assert abs(r - 200) < 12 and abs(g - 40) < 12 and abs(b - 40) < 12


def test_transparent_images_get_a_placeholder_too():
    placeholder = render_set(corpus.read("transparency.avif")).placeholder
    assert thumbhash.thumb_hash_to_average_rgba(base64.b64decode(placeholder.thumbhash))[3] < 1


def test_unknown_formats_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown rendition formats"):
        render_set(images.jpeg(100, 100), formats=("gif",))


def test_sizes_are_fitted_from_the_original_not_from_the_reduced_decode():
    # 6000x4000 fits 800 as 800x533; the 1600x1067 reduced decode would round to 800x534
    rendered = render_set(images.jpeg(6000, 4000), formats=("jpeg",))
    assert [(r.width, r.height) for r in rendered.renditions] == [(200, 133), (400, 267), (800, 533), (1600, 1067)]
    assert (rendered.default.width, rendered.default.height) == (800, 533)
