"""The engine on what phones, cameras and editors really write: the real-world corpus (tests/corpus) and
generated files of the classes the corpus lacks. Each class here was REJECTED or damaged before."""

from __future__ import annotations

import io

import pytest
from image_pipeline import engine
from image_pipeline.errors import HeaderIncompleteError, InvalidImageError
from PIL import Image

from tests import corpus, images

MAX_PIXELS = 50_000_000


def render(data: bytes, max_dimension: int = 800, max_pixels: int = MAX_PIXELS, backend: str = "auto"):
    out = engine.render(data, max_dimension, max_pixels, backend=backend)
    im = Image.open(io.BytesIO(out.data))
    im.load()
    assert (im.width, im.height) == (out.width, out.height)
    assert out.content_type == Image.MIME[im.format]
    return out, im


def assert_no_metadata(im: Image.Image) -> None:
    assert not im.getexif() and "xmp" not in im.info and "icc_profile" not in im.info, im.info.keys()


# ---- headers past the first read --------------------------------------------------------------------------

LARGE_HEADERS = {
    "webp-photo": (images.webp_photo, "WEBP", (2000, 1500)),
    "jpeg-0.6MB-icc": (images.jpeg_with_large_icc, "JPEG", (1200, 800)),
    "jpeg-extended-xmp": (images.jpeg_with_large_xmp, "JPEG", (1200, 800)),
    "png-0.6MB-itxt": (images.png_with_large_text, "PNG", (600, 400)),
}


@pytest.mark.parametrize("name", LARGE_HEADERS)
def test_probe_of_a_prefix_asks_for_more_instead_of_rejecting(name):
    make, fmt, size = LARGE_HEADERS[name]
    data = make()
    assert len(data) > engine.HEADER_BYTES
    with pytest.raises(HeaderIncompleteError):
        engine.probe(data[: engine.HEADER_BYTES], MAX_PIXELS, complete=False)
    info = engine.probe(data, MAX_PIXELS)
    assert (info.format, info.width, info.height) == (fmt, *size)


@pytest.mark.parametrize("name", LARGE_HEADERS)
@pytest.mark.parametrize("backend", ["pillow", "vips", "auto"])
def test_files_with_large_headers_render(name, backend):
    make, fmt, size = LARGE_HEADERS[name]
    out, im = render(make(), backend=backend)
    assert out.format == fmt and im.size == engine.fit(*size, 800)
    assert_no_metadata(im)


def test_a_normal_photo_is_probed_from_the_first_read():
    data = images.jpeg(4000, 3000)
    info = engine.probe(data[: engine.HEADER_BYTES], MAX_PIXELS, complete=False)
    assert (info.width, info.height) == (4000, 3000)


def test_a_complete_file_whose_header_is_broken_is_corrupt_not_incomplete():
    data = images.jpeg_with_large_icc()[:300_000]  # ends inside the ICC segments
    with pytest.raises(InvalidImageError) as err:
        engine.probe(data, MAX_PIXELS, complete=True)
    assert err.value.code == "CORRUPT_IMAGE"


def test_animated_gif_frames_past_the_first_read_are_all_counted():
    data = images.gif_animated(1000, 800, 12)
    assert len(data) > 64 * 1024
    with pytest.raises(HeaderIncompleteError):
        engine.probe(data[: 64 * 1024], MAX_PIXELS, complete=False)
    assert engine.probe(data, MAX_PIXELS).frames == 12


# ---- camera JPEGs with MPF previews ------------------------------------------------------------------------


def test_mpf_previews_do_not_count_as_more_pixels():
    data = images.jpeg_with_mpf_previews(2000, 1500, previews=2)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    info = engine.probe(data, max_pixels=4_000_000)  # 3 MP main image; 9 MP if each preview counted in full
    assert (info.format, info.width, info.height, info.frames) == ("JPEG", 2000, 1500, 1)
    out, im = render(data, max_pixels=4_000_000)
    assert out.format == "JPEG" and im.size == (800, 600)


def test_real_camera_mpo_renders_its_main_image():
    data = corpus.read("fujifilm.mpo")  # 3648x2736 main image + a second image
    info = engine.probe(data, max_pixels=15_000_000)
    assert (info.width, info.height, info.frames) == (3648, 2736, 1)
    out, im = render(data, max_pixels=15_000_000)
    assert out.format == "JPEG" and im.size == (800, 600)
    assert_no_metadata(im)


def test_stereo_camera_mpo_renders():
    out, im = render(corpus.read("stereo_camera.mpo"))
    assert out.format == "JPEG" and im.size == (640, 480)


# ---- PNG transparency by tRNS colour -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["1", "L", "I;16", "RGB", "P"])
@pytest.mark.parametrize("backend", ["pillow", "vips", "auto"])
def test_trns_transparent_colour_survives_in_every_png_mode(mode, backend):
    data = images.png_trns(mode)
    assert Image.open(io.BytesIO(data)).mode == mode  # no alpha channel: one colour is transparent
    out, im = render(data, backend=backend)
    assert out.format == "PNG" and im.mode in ("RGBA", "LA"), im.mode
    rgba = im.convert("RGBA")
    assert rgba.getpixel((10, 50))[3] == 0  # the tRNS colour
    assert rgba.getpixel((190, 50))[3] == 255
    expected = {"1": (255,) * 3, "L": (200,) * 3, "I;16": (195,) * 3, "RGB": (200, 30, 40), "P": (200, 30, 40)}[mode]
    assert all(abs(a - b) <= 2 for a, b in zip(rgba.getpixel((190, 50))[:3], expected, strict=True))


# ---- HEIC / HEIF ------------------------------------------------------------------------------------------

PHONE_HEICS = {
    "iphone.heic": (4032, 3024),
    "iphone_portrait.heic": (3024, 4032),
    "xiaomi.heic": (2592, 1944),
    "camera_10bit.hif": (4240, 2832),
    "camera_rotated_10bit.hif": (4672, 7008),  # stored 7008x4672 with irot: upright it is portrait
}


@pytest.mark.parametrize("name", PHONE_HEICS)
def test_phone_and_camera_heics_become_upright_srgb_jpegs(name):
    data = corpus.read(name)
    assert engine.sniff(data[: engine.SNIFF_BYTES]) == "HEIF"
    info = engine.probe(data[: engine.HEADER_BYTES], MAX_PIXELS, complete=False)  # the header is near the start
    assert (info.width, info.height) == PHONE_HEICS[name]
    out, im = render(data)
    assert out.format == "JPEG" and im.mode == "RGB"
    assert im.size == engine.fit(*PHONE_HEICS[name], 800)
    assert_no_metadata(im)


def test_heic_with_alpha_and_10_bits_becomes_png_with_alpha():
    out, im = render(corpus.read("rgba_10bit.heif"))
    assert out.format == "PNG" and im.mode == "RGBA" and im.size == (128, 128)
    assert im.getextrema()[3][0] < 255  # some pixels are transparent


def test_200_megapixel_phone_heic_is_refused_from_its_header():
    data = corpus.read("200mp.heic")  # Samsung layout: mdat first, the meta box at the end of the file
    with pytest.raises(HeaderIncompleteError):
        engine.probe(data[: engine.HEADER_BYTES], MAX_PIXELS, complete=False)
    with pytest.raises(InvalidImageError) as err:
        engine.probe(data, MAX_PIXELS)
    assert err.value.code == "TOO_MANY_PIXELS" and "12240x16320" in str(err.value)


@pytest.mark.parametrize(
    "data",
    [
        lambda: corpus.read("corrupted.heic"),
        lambda: corpus.read("truncated.heic"),
        lambda: corpus.read("iphone.heic")[:700_000],  # an upload cut off half way: libheif would grey-fill tiles
        lambda: corpus.read("xiaomi.heic")[:-100],
        lambda: corpus.read("rot1mir0.avif")[:-200],
    ],
    ids=["corrupted", "truncated", "iphone-half", "xiaomi-end-cut", "avif-end-cut"],
)
def test_broken_or_truncated_heif_and_avif_are_corrupt(data):
    with pytest.raises(InvalidImageError) as err:
        engine.render(data(), 800, MAX_PIXELS)
    assert err.value.code == "CORRUPT_IMAGE"


def oriented(orientation: int) -> tuple[Image.Image, bytes]:
    """A 300x200 picture with a red top-left quarter, and EXIF naming that orientation."""
    im = Image.new("RGB", (300, 200), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 75, 50))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return im, exif.tobytes()


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_irot_transform_is_applied(fmt):
    im, exif = oriented(6)  # 90 degrees clockwise: the encoders write it as irot (and reset EXIF orientation)
    data = images.heic(image=im, exif=exif) if fmt == "HEIF" else images.encode(im, "AVIF", exif=exif, quality=90)
    assert b"irot" in data
    out, rendition = render(data)
    assert out.format == "JPEG" and rendition.size == (200, 300)
    r, g, b = rendition.getpixel((rendition.width - 10, 10))  # the red quarter is now top-right
    assert r > 200 and b < 60, (r, g, b)
    assert_no_metadata(rendition)


@pytest.mark.parametrize("name", ["rot1mir0.avif", "rot3mir1.avif"])
def test_avif_rotation_and_mirror_turn_it_upright(name):
    data = corpus.read(name)
    stored = Image.open(io.BytesIO(data))
    assert stored.size == (427, 640)  # the stored (sideways) size; irot 90/270 makes it landscape
    out, im = render(data)
    assert out.format == "JPEG" and im.size == (640, 427)


def test_heic_display_p3_is_converted_to_srgb():
    p3 = Image.open(io.BytesIO(images.p3_red(128, 128, "png")))
    data = images.heic(image=p3.convert("RGB"), icc_profile=p3.info["icc_profile"])
    out, im = render(data, 64)
    r, g, b = im.getpixel((32, 32))
    assert r >= 240 and g <= 25 and b <= 25, (r, g, b)  # P3's (~231, 49, 35) read as sRGB would be orange-red


def test_heic_with_nclx_display_p3_is_converted_to_srgb():
    # some phones describe colour with an nclx box (primaries 12 = Display P3) instead of an ICC profile
    p3_pixels = Image.open(io.BytesIO(images.p3_red(128, 128, "png"))).convert("RGB")
    p3_pixels.info = {}  # the colour is described by nclx alone
    nclx = {"color_primaries": 12, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
    data = images.heic(image=p3_pixels, nclx_profile=nclx)
    assert "icc_profile" not in Image.open(io.BytesIO(data)).info
    out, im = render(data, 64)
    r, g, b = im.getpixel((32, 32))
    assert r >= 240 and g <= 25 and b <= 25, (r, g, b)


def test_avif_with_alpha_becomes_png_and_with_icc_is_converted():
    out, im = render(corpus.read("transparency.avif"))
    assert out.format == "PNG" and im.mode == "RGBA" and im.getextrema()[3][0] == 0
    out, im = render(corpus.read("icc_profile.avif"))
    assert out.format == "JPEG" and "icc_profile" not in im.info


def test_animated_avif_and_webp_render_their_first_frame_and_count_every_frame():
    for name, fmt in (("animated.avifs", "JPEG"), ("animated.webp", "WEBP")):
        data = corpus.read(name)
        info = engine.probe(data, MAX_PIXELS)
        assert info.frames > 1
        with pytest.raises(InvalidImageError) as err:
            engine.probe(data, info.width * info.height * (info.frames - 1))
        assert err.value.code == "TOO_MANY_PIXELS"
        out, _ = render(data)
        assert out.format in (fmt, "PNG")


def test_real_webp_photo_keeps_its_format_and_drops_exif():
    out, im = render(corpus.read("photo.webp"))
    assert out.format == "WEBP" and im.size == (480, 360)
    assert_no_metadata(im)


def test_heic_can_be_turned_off():
    data = corpus.read("xiaomi.heic")
    formats = engine.ALL_FORMATS - {"HEIF"}
    with pytest.raises(InvalidImageError) as err:
        engine.probe(data, MAX_PIXELS, formats=formats)
    assert err.value.code == "UNSUPPORTED_FORMAT" and "turned off" in str(err.value)
    assert engine.probe(corpus.read("rot1mir0.avif"), MAX_PIXELS, formats=formats).format == "AVIF"


def test_an_mp4_video_is_not_taken_for_heif():
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    with pytest.raises(InvalidImageError) as err:
        engine.sniff(head)
    assert err.value.code == "UNSUPPORTED_FORMAT"


@pytest.mark.parametrize(
    ("name", "alpha"),
    [("iphone_portrait.heic", False), ("rot1mir0.avif", False), ("transparency.avif", True), ("fujifilm.mpo", False)],
)
def test_real_photos_crop_to_exact_boxes_of_the_upright_image(name, alpha):
    """Fixed-shape crops of real files: each decodes at its declared box (or the largest of its shape, never
    upscaled) and format, cut from the upright image (a portrait iPhone photo, an AVIF with irot), alpha kept."""
    data = corpus.read(name)
    profiles = [engine.Profile("square", 400, 400, "attention"), engine.Profile("card", 1200, 630, "entropy")]
    made = engine.render_set(data, (400,), ("webp", "jpeg"), 800, MAX_PIXELS, profiles=profiles)
    for r in made.cropped:
        box = next(p for p in profiles if p.name == r.profile)
        decoded = Image.open(io.BytesIO(r.data))
        assert (decoded.size, decoded.format) == ((r.width, r.height), r.format)
        assert r.width <= box.width and r.height <= box.height
        # the box's shape, to the pixel (a source smaller than the box gives the largest crop of it)
        assert r.height == round(r.width * box.height / box.width) or r.width == round(
            r.height * box.width / box.height
        )
        assert (decoded.mode == "RGBA") == alpha
        if r.format != "WEBP":
            assert r.format == ("PNG" if alpha else "JPEG")
    if name == "iphone_portrait.heic":  # held upright: the set (and the crops' source) is portrait
        assert made.renditions[-1].height > made.renditions[-1].width
