"""Fixed-shape crops (issue 35, the engine's part): a subject near the edge of a wide photo stays in the attention
crop and leaves the centre one; the crop is of the upright image; sizes are exact and never upscaled."""

from __future__ import annotations

import io

import pytest
from image_pipeline import engine
from PIL import Image

from tests import images


def subject_pixels(im: Image.Image) -> int:
    """How many pixels of the subject's saturated red ring the crop holds."""
    raw = im.convert("RGB").tobytes()
    return sum(1 for i in range(0, len(raw), 3) if raw[i] > 180 and raw[i + 1] < 90 and raw[i + 2] < 90)


def test_the_attention_crop_keeps_a_small_subject_near_the_edge_that_the_centre_crop_cuts_off():
    scene, _ = images.wide_scene_with_subject()
    attention = engine.crop(scene, 400, 400, "attention")
    centre = engine.crop(scene, 400, 400, "centre")
    assert attention.size == centre.size == (400, 400)
    assert subject_pixels(attention) > 1000 and subject_pixels(centre) == 0


def test_the_focal_point_centres_the_crop_as_far_as_the_box_allows():
    scene, (cx, cy) = images.wide_scene_with_subject()
    focal = engine.crop(scene, 400, 400, "focal", focal=(cx / scene.width, cy / scene.height))
    assert subject_pixels(focal) > 1000
    corner = engine.crop(scene, 400, 400, "focal", focal=(1.0, 0.0))  # clamped to the image's edge
    assert corner.size == (400, 400)


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1800, 600), (400, 400), (400, 400)),
        ((300, 200), (400, 400), (200, 200)),
        ((300, 200), (1200, 630), (300, 158)),
    ],
)
def test_a_crop_is_exactly_its_box_or_the_largest_of_its_shape_never_upscaled(size, box, expected):
    assert engine.crop(images.photo(*size), *box, "centre").size == expected
    assert engine.crop(images.photo(*size), *box, "attention").size == expected


def test_profiles_render_from_the_same_decode_in_every_format_on_the_upright_image():
    scene, _ = images.wide_scene_with_subject()
    # stored sideways (turned 90 degrees counter-clockwise) with EXIF orientation 6: upright it is the wide scene
    exif = Image.Exif()
    exif[0x0112] = 6
    data = images.encode(scene.rotate(90, expand=True), "JPEG", quality=92, exif=exif.tobytes())
    profiles = [engine.Profile("square", 400, 400, "attention"), engine.Profile("card", 1200, 630, "centre")]
    made = engine.render_set(data, (200, 800), ("webp", "jpeg"), 800, 50_000_000, profiles=profiles)
    assert [(r.profile, r.format, r.width, r.height) for r in made.cropped] == [
        ("square", "WEBP", 400, 400),
        ("square", "JPEG", 400, 400),
        ("card", "WEBP", 1143, 600),  # 1800x600 upright: no upscaling, the largest 1200:630 crop
        ("card", "JPEG", 1143, 600),
    ]
    for r in made.cropped:
        decoded = Image.open(io.BytesIO(r.data))
        assert decoded.size == (r.width, r.height) and decoded.format == r.format
    square = Image.open(io.BytesIO(made.cropped[1].data))
    assert subject_pixels(square) > 1000  # the subject, found on the upright image
    assert all(r.profile is None for r in made.renditions)


def _encoded(fmt: str, scene: Image.Image) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        heif = pillow_heif.from_pillow(scene)
        out = io.BytesIO()
        heif.save(out, quality=90)
        return out.getvalue()
    if fmt == "PNG":  # with alpha: transparent at the left, then the scene fades in
        rgba = scene.convert("RGBA")
        fade = Image.linear_gradient("L").rotate(90).resize((scene.width // 6, scene.height))  # 0 at the left
        alpha = Image.new("L", scene.size, 255)
        alpha.paste(fade, (scene.width // 12, 0))
        alpha.paste(0, (0, 0, scene.width // 12, scene.height))
        rgba.putalpha(alpha)
        # an eraser leaves the colours under what it made transparent: here loud green-blue noise nobody sees
        width = scene.width // 12
        noise = Image.effect_noise((width, scene.height), 120)
        hidden = Image.merge(
            "RGBA",
            (Image.new("L", noise.size, 0), noise, noise.point(lambda v: 255 - v), Image.new("L", noise.size, 0)),
        )
        rgba.paste(hidden, (0, 0))
        return images.encode(rgba, "PNG")
    return images.encode(scene, fmt, quality=90)


@pytest.mark.parametrize(("fmt", "crop_format"), [("HEIF", "JPEG"), ("AVIF", "JPEG"), ("PNG", "PNG"), ("WEBP", "JPEG")])
def test_heic_avif_and_alpha_png_crop_at_their_box_and_keep_the_subject(fmt, crop_format):
    scene, _ = images.wide_scene_with_subject()
    made = engine.render_set(
        _encoded(fmt, scene), (400,), ("avif", "jpeg"), 800, 50_000_000, profiles=[engine.Profile("square", 400, 400)]
    )
    assert [(r.format, r.width, r.height) for r in made.cropped] == [("AVIF", 400, 400), (crop_format, 400, 400)]
    for r in made.cropped:  # each decodes at exactly its declared box and format
        decoded = Image.open(io.BytesIO(r.data))
        assert (decoded.size, decoded.format) == ((r.width, r.height), r.format)
    square = Image.open(io.BytesIO(made.cropped[1].data))
    assert subject_pixels(square) > 1000
    if fmt == "PNG":
        assert square.mode == "RGBA"  # the alpha channel is kept in the crop


def test_a_focal_point_is_of_the_upright_image_and_overrides_the_strategy():
    scene, (cx, cy) = images.wide_scene_with_subject()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees: upright, the subject is near the right edge
    data = images.encode(scene.rotate(90, expand=True), "JPEG", quality=92, exif=exif.tobytes())
    profiles = [engine.Profile("square", 400, 400, "centre"), engine.Profile("card", 1200, 630, "attention")]
    on_subject = engine.render_set(
        data, (400,), ("jpeg",), 800, 50_000_000, profiles=profiles, focal=(cx / scene.width, cy / scene.height)
    )
    assert all(subject_pixels(Image.open(io.BytesIO(r.data))) > 1000 for r in on_subject.cropped)
    elsewhere = engine.render_set(data, (400,), ("jpeg",), 800, 50_000_000, profiles=profiles, focal=(0.0, 0.5))
    assert all(subject_pixels(Image.open(io.BytesIO(r.data))) == 0 for r in elsewhere.cropped)  # even attention's


def test_crops_only_decode_and_encode_nothing_else():
    scene, _ = images.wide_scene_with_subject()
    made = engine.render_set(
        images.encode(scene, "JPEG"),
        (200, 400),
        ("webp",),
        800,
        50_000_000,
        profiles=[engine.Profile("square", 400, 400)],
        ladder=False,
    )
    assert (made.renditions, made.default, made.placeholder) == ((), None, None)
    assert [(r.profile, r.width, r.height) for r in made.cropped] == [("square", 400, 400)]
