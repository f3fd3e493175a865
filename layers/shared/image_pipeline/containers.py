"""Container parsing, apart from decoding: what the image engine reads of a file's structure without decoding a pixel.

- ISO-BMFF (HEIF, AVIF): the ``ftyp`` brands, the box tree, the primary item's size (``ispe``, through ``iinf``/
  ``ipma``), and where the last top-level box ends (to tell a header that goes on past what was read);
- GIF: its frames, counted from the block structure.

Plain functions over bytes; the engine (engine.py) decides formats, limits and decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from image_pipeline.errors import InvalidImageError

AVIF, HEIF = "AVIF", "HEIF"  # the engine's names for the formats (engine.AVIF, engine.HEIF)
# ISO-BMFF brands (ftyp): AVIF images/sequences; HEVC-coded HEIF (Apple, Samsung, cameras); generic HEIF
AVIF_BRANDS = {b"avif", b"avis"}
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2"}


def brands(head: bytes) -> set[bytes]:
    """The major and compatible brands of the ISO-BMFF ftyp box at the start of ``head``."""
    size = struct.unpack_from(">I", head)[0]
    end = min(len(head), max(size, 16))
    return {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}


def bmff_format(head: bytes) -> str | None:
    """AVIF or HEIF from the ftyp brands (an MP4 video is neither)."""
    found = brands(head)
    if found & AVIF_BRANDS:
        return AVIF
    if found & HEIC_BRANDS:
        return HEIF
    return None


def box_header(data: bytes, pos: int, end: int) -> tuple[bytes, int, int] | None:
    """(type, header length, box size) of the ISO-BMFF box at ``pos`` (size 0 runs to ``end``; size 1 is 64-bit),
    or None when ``end`` cuts the header itself off."""
    if pos + 8 > end:
        return None
    size, kind = struct.unpack_from(">I4s", data, pos)
    if size == 1:
        if pos + 16 > end:
            return None
        return kind, 16, struct.unpack_from(">Q", data, pos + 8)[0]
    return kind, 8, end - pos if size == 0 else size


def bmff_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each ISO-BMFF box in data[start:end]; stops at one cut off by ``end``."""
    pos = start
    while (box := box_header(data, pos, end)) is not None:
        kind, header, size = box
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def bmff_end(data: bytes) -> int:
    """Where the file's last top-level box says it ends (past len(data) when the file was cut off)."""
    pos = 0
    while pos + 8 <= len(data):
        box = box_header(data, pos, len(data))
        if box is None:  # a 64-bit size cut off
            return len(data) + 1
        _, header, size = box
        if size < header:
            raise InvalidImageError("CORRUPT_IMAGE", "a box of the file has an impossible size")
        pos += size
    return pos


def heif_primary_size(data: bytes) -> tuple[int, int] | None:
    """Upright (width, height) of a HEIF/AVIF file's primary item: its ispe property, turned by irot.
    None while the meta box is not complete in ``data``."""
    meta = next(((a, b) for kind, a, b in bmff_boxes(data, 0, len(data)) if kind == b"meta"), None)
    if meta is None:
        return None
    primary, properties, associations = None, [], {}
    try:
        for kind, a, b in bmff_boxes(data, meta[0] + 4, meta[1]):  # meta is a full box
            if kind == b"pitm":
                primary = struct.unpack_from(">H" if data[a] == 0 else ">I", data, a + 4)[0]
            elif kind == b"iprp":
                for inner, c, d in bmff_boxes(data, a, b):
                    if inner == b"ipco":
                        properties = list(bmff_boxes(data, c, d))
                    elif inner == b"ipma":
                        associations.update(ipma(data, c, d))
    except (struct.error, IndexError) as e:
        raise InvalidImageError("CORRUPT_IMAGE", "the HEIF meta box is malformed") from e
    size, turns = None, 0
    for index in associations.get(primary, []) if primary is not None else []:
        if not 0 < index <= len(properties):
            continue
        kind, a, b = properties[index - 1]
        if kind == b"ispe" and b - a >= 12:
            size = struct.unpack_from(">II", data, a + 4)
        elif kind == b"irot" and b - a >= 1:
            turns = data[a] & 3
    if size is None:
        raise InvalidImageError("CORRUPT_IMAGE", "the HEIF file names no primary image with a size (pitm, ispe)")
    return (size[1], size[0]) if turns % 2 else (size[0], size[1])


def ipma(data: bytes, start: int, end: int) -> dict[int, list[int]]:
    """Item id -> 1-based property indices, from an ipma box."""
    version, flags = data[start], int.from_bytes(data[start + 1 : start + 4], "big")
    count, pos = struct.unpack_from(">I", data, start + 4)[0], start + 8
    found: dict[int, list[int]] = {}
    for _ in range(count):
        item, pos = struct.unpack_from(">H" if version < 1 else ">I", data, pos)[0], pos + (2 if version < 1 else 4)
        n, pos = data[pos], pos + 1
        for _ in range(n):
            if flags & 1:
                found.setdefault(item, []).append(struct.unpack_from(">H", data, pos)[0] & 0x7FFF)
                pos += 2
            else:
                found.setdefault(item, []).append(data[pos] & 0x7F)
                pos += 1
        if pos > end:
            raise InvalidImageError("CORRUPT_IMAGE", "the HEIF ipma box is cut short")
    return found


def is_sequence(data: bytes) -> bool:
    """An AVIF image sequence (brand avis): its frames are counted from the whole file."""
    return b"avis" in brands(data)


def count_gif_frames(data: bytes) -> tuple[int, bool]:
    """Count GIF image descriptors by walking the block structure (no LZW decoding); and whether the walk
    reached the trailer (else the data ended first, or the stream is broken)."""
    if len(data) < 13:
        raise InvalidImageError("CORRUPT_IMAGE", "GIF header is truncated")
    pos = 13
    if data[10] & 0x80:
        pos += 3 * (2 ** ((data[10] & 0x07) + 1))
    frames = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            return max(frames, 1), True
        if block == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            frames += 1
            flags = data[pos + 9] if pos + 9 < len(data) else 0
            pos += 10
            if flags & 0x80:
                pos += 3 * (2 ** ((flags & 0x07) + 1))
            pos = skip_sub_blocks(data, pos + 1)  # LZW minimum code size, then data sub-blocks
        else:
            break
    return max(frames, 1), False  # a truncated stream: what was seen (decoding will reject it)


def skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos
