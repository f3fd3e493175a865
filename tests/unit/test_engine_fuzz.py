"""Fuzzing the engine (bounded): random and mutated image bytes only ever give a rendition or InvalidImageError —
never another exception, a crash or a hang."""

from __future__ import annotations

import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_pipeline import engine
from image_pipeline.errors import InvalidImageError

from tests import images

SEEDS = [
    images.jpeg(64, 48),
    images.jpeg(64, 48, progressive=True),
    images.jpeg_with_orientation(6, 40, 30),
    images.png_rgba(48, 32),
    images.png_palette_transparent(40, 30),
    images.png_16bit_gray(32, 16),
    images.webp(64, 48),
    images.gif_animated(40, 30, 3),
    images.jpeg_cmyk(40, 30),
]
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)


@contextmanager
def time_limit(seconds: int):
    def on_alarm(signum, frame):
        raise TimeoutError(f"engine took more than {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "zero-run"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[pos : pos + draw(st.integers(1, 256))] = bytes(min(256, len(data) - pos))
    return bytes(data)


def only_our_errors(data: bytes, backend: str) -> None:
    with time_limit(10):
        try:
            out = engine.render(data, 64, 1_000_000, backend=backend)
        except InvalidImageError as e:
            assert e.code in {"EMPTY_FILE", "UNSUPPORTED_FORMAT", "CORRUPT_IMAGE", "TOO_MANY_PIXELS"}
            return
    assert out.data and 0 < out.width <= 64 and 0 < out.height <= 64


@pytest.mark.parametrize("backend", ["pillow", "auto"])
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow on mutated EXIF: expected noise
@FUZZ
@given(data=mutated())
def test_mutated_images_only_raise_our_errors(backend, data):
    only_our_errors(data, backend)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_only_raise_our_errors(data):
    only_our_errors(data, "auto")


@FUZZ
@given(
    prefix=st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 "]),
    rest=st.binary(max_size=512),
)
def test_magic_bytes_followed_by_garbage_only_raise_our_errors(prefix, rest):
    only_our_errors(prefix + rest, "auto")
