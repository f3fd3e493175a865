"""Real images made on the fly (nothing binary is committed), including hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A photo-like image: gradients plus shapes, so resizing and encoding do real work."""
    im = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    r = Image.radial_gradient("L").resize((width, height))
    im = Image.merge("RGB", (im.getchannel(0), r, im.getchannel(0).transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    draw = ImageDraw.Draw(im)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(220, 40, 40))
    draw.rectangle((width // 2, height // 2, width * 3 // 4, height * 3 // 4), fill=(30, 200, 60))
    return im.convert(mode)


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def jpeg(width: int = 1200, height: int = 800, **kwargs) -> bytes:
    return encode(photo(width, height), "JPEG", quality=90, **kwargs)


def jpeg_with_orientation(orientation: int, width: int = 300, height: int = 200, gps: bool = False) -> bytes:
    """A JPEG whose stored pixels are sideways; EXIF says how to turn it upright. Top-left pixel is red."""
    im = Image.new("RGB", (width, height), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, width // 4, height // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    return encode(im, "JPEG", quality=95, exif=exif.tobytes())


def png_rgba(width: int = 1000, height: int = 500) -> bytes:
    im = photo(width, height, "RGBA")
    alpha = Image.new("L", (width, height), 0)
    ImageDraw.Draw(alpha).rectangle((0, 0, width // 2, height), fill=255)
    im.putalpha(alpha)
    return encode(im, "PNG")


def png_palette_transparent(width: int = 400, height: int = 300) -> bytes:
    im = photo(width, height).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(im, "PNG", transparency=0)


def png_16bit_gray(width: int = 256, height: int = 64) -> bytes:
    """16-bit grayscale: left half 65535 (white), right half 32768 (mid grey)."""
    im = Image.new("I;16", (width, height), 32768)
    im.paste(Image.new("I;16", (width // 2, height), 65535), (0, 0))
    return encode(im, "PNG")


def jpeg_cmyk(width: int = 900, height: int = 600) -> bytes:
    return encode(photo(width, height).convert("CMYK"), "JPEG", quality=90)


def webp(width: int = 1600, height: int = 1200) -> bytes:
    return encode(photo(width, height), "WEBP", quality=85)


def gif_animated(width: int = 500, height: int = 400, frames: int = 4) -> bytes:
    images = [photo(width, height).rotate(i * 15).convert("P", palette=Image.Palette.ADAPTIVE) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def truncated_jpeg() -> bytes:
    data = jpeg(1200, 800)
    return data[: len(data) // 2]


def png_bomb(side: int = 10_000) -> bytes:
    """A real, valid PNG of side x side pixels that is small on disk (all zero)."""
    raw = zlib.compress(b"\x00" * (side + 1) * side, 9)
    return _png(side, side, raw)


def png_header_claiming(width: int = 60_000, height: int = 60_000) -> bytes:
    """A PNG header that claims a huge size, followed by a few bytes of data."""
    return _png(width, height, zlib.compress(b"\x00" * 64))


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


TEXT_AS_JPEG = b"Hello, this is a text file renamed to photo.jpg\n" * 20
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def p3_red(width: int = 64, height: int = 64, fmt: str = "jpeg") -> bytes:
    """sRGB pure red, stored as Display P3 pixels (~231, 49, 35) with the P3 profile embedded.

    An engine that ignores the profile renders a dull orange-red; one that converts to sRGB renders ~(255, 0, 0).
    """
    import pyvips

    red = pyvips.Image.black(width, height, bands=3).new_from_image([255, 0, 0]).cast("uchar")
    p3 = red.copy(interpretation="srgb").icc_export(output_profile="p3")
    if fmt == "png":
        return p3.pngsave_buffer(profile="p3")
    return p3.jpegsave_buffer(Q=95, profile="p3")


# ---- what phones, cameras and editors write (issue: real-world inputs) ----


def noisy_photo(width: int, height: int) -> Image.Image:
    """A photo-like image with sensor-like noise, so it compresses like a real photo (not like a gradient)."""
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    return Image.blend(photo(width, height), noise, 0.25)


def webp_photo(width: int = 2000, height: int = 1500) -> bytes:
    """A WebP photo of a few hundred KiB or more, as phones and web exports write them."""
    return encode(noisy_photo(width, height), "WEBP", quality=90)


def icc_with_padding(extra_bytes: int) -> bytes:
    """A valid sRGB ICC profile grown by a private tag to the size of a press/print profile (~0.5 MB)."""
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", icc[128:132])[0]
    table_end = 132 + 12 * count
    tags, data = icc[132:table_end], icc[table_end:]
    # shift every tag's offset by the new 12-byte entry, then append the private tag ('zzzz', type 'data')
    shifted = b"".join(
        tags[i : i + 4] + struct.pack(">I", struct.unpack(">I", tags[i + 4 : i + 8])[0] + 12) + tags[i + 8 : i + 12]
        for i in range(0, len(tags), 12)
    )
    body = b"data" + b"\0" * 8 + bytes(extra_bytes)
    offset = table_end + 12 + len(data)
    offset += (-offset) % 4
    new = icc[:128] + struct.pack(">I", count + 1) + shifted + b"zzzz" + struct.pack(">II", offset, len(body)) + data
    new += b"\0" * (offset - len(new)) + body
    new[0:4] = struct.pack(">I", len(new))
    return bytes(new)


def jpeg_with_large_icc(width: int = 1200, height: int = 800, icc_bytes: int = 600_000) -> bytes:
    """A JPEG whose ICC profile (split over ~10 APP2 segments) puts the frame header ~0.6 MB into the file."""
    return encode(photo(width, height), "JPEG", quality=90, icc_profile=icc_with_padding(icc_bytes))


def jpeg_with_large_xmp(width: int = 1200, height: int = 800, segments: int = 10) -> bytes:
    """A JPEG with an editor's extended XMP: many 64 KB APP1 segments before the frame header."""
    base = encode(photo(width, height), "JPEG", quality=90)
    header = b"http://ns.adobe.com/xmp/extension/\0" + b"0" * 32 + struct.pack(">II", 65000 * segments, 0)
    app1 = b"".join(
        b"\xff\xe1" + struct.pack(">H", 2 + len(header) + 65000) + header + b"<x>" + b" " * 64994 + b"</x>"
        for _ in range(segments)
    )
    return base[:2] + app1 + base[2:]  # right after SOI


def png_with_large_text(width: int = 600, height: int = 400, text_bytes: int = 600_000) -> bytes:
    """A PNG whose iTXt chunk (an editor's history, XMP) sits before IDAT and is larger than the first read."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + "history " * (text_bytes // 8) + "</x:xmpmeta>")
    return encode(photo(width, height), "PNG", pnginfo=info)


def png_trns(mode: str, width: int = 200, height: int = 100) -> bytes:
    """A PNG with one transparent colour (tRNS, no alpha channel): the left half is that colour, the right opaque."""
    values = {"1": (0, 1), "L": (7, 200), "I;16": (1000, 50000), "RGB": ((1, 2, 3), (200, 30, 40))}
    if mode == "P":
        im = Image.new("P", (width, height), 0)
        im.putpalette([1, 2, 3, 200, 30, 40] + [0] * 762)
        im.paste(1, (width // 2, 0, width, height))
        return encode(im, "PNG", transparency=0)
    clear, opaque = values[mode]
    im = Image.new(mode, (width, height), clear)
    im.paste(Image.new(mode, (width - width // 2, height), opaque), (width // 2, 0))
    return encode(im, "PNG", transparency=clear)


def jpeg_with_mpf_previews(width: int = 6000, height: int = 4000, previews: int = 2) -> bytes:
    """A camera JPEG: the main image plus small MPF preview images (Pillow writes it as MPO)."""
    main = noisy_photo(width, height)
    small = [main.resize((width // d, height // d)) for d in (4, 8, 16)[:previews]]
    return encode(main, "MPO", save_all=True, append_images=small, quality=85)


def heic(width: int = 1200, height: int = 800, **kwargs) -> bytes:
    """A HEIC written by libheif's HEVC encoder (x265), as phones write them (kwargs: exif, icc_profile, ...)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(kwargs.pop("image", None) or photo(width, height), "HEIF", quality=80, **kwargs)


def wide_scene_with_subject(width: int = 1800, height: int = 600) -> tuple[Image.Image, tuple[int, int]]:
    """A 3:1 photo-like scene (soft, low-saturation gradients with a little noise) and a small, saturated,
    high-contrast subject near its right edge; returns the image and the subject's centre."""
    sky = Image.linear_gradient("L").resize((width, height)).point(lambda v: 90 + v // 3)
    noise = Image.effect_noise((width, height), 12).point(lambda v: v // 8)
    grey = Image.blend(sky, Image.merge("L", (noise,)), 0.1)
    im = Image.merge("RGB", (grey, grey.point(lambda v: v + 8), grey.point(lambda v: v + 16)))
    cx, cy = width * 11 // 12, height // 2
    draw = ImageDraw.Draw(im)
    draw.ellipse((cx - 46, cy - 46, cx + 46, cy + 46), fill=(10, 10, 10))
    draw.ellipse((cx - 40, cy - 40, cx + 40, cy + 40), fill=(235, 40, 30))
    draw.ellipse((cx - 14, cy - 14, cx + 14, cy + 14), fill=(250, 220, 30))
    return im, (cx, cy)
