"""Which backend the auto engine picks for each input class (the choice docs/benchmarks.md measured)."""

from __future__ import annotations

import pytest
from image_pipeline import engine

from tests import images


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (images.jpeg(4000, 3000), "pillow+vips-resample"),  # reduced-scale DCT decode, libvips resample
        (images.jpeg(1200, 900), "vips"),
        (images.png_rgba(1000, 500), "vips"),
        (images.webp(1600, 1200), "vips"),
        (images.jpeg_cmyk(), "pillow+vips-resample"),  # Pillow decodes CMYK, libvips resamples the RGB
        (images.png_16bit_gray(2000, 100), "pillow+vips-resample"),
        (images.gif_animated(1000, 800, 3), "pillow+vips-resample"),  # first frame, RGB
        (images.png_palette_transparent(1600, 1200), "pillow"),  # RGBA: Pillow's alpha-aware resample
    ],
    ids=["jpeg-12mp", "jpeg-1mp", "png-alpha", "webp", "cmyk", "16bit", "animated-gif", "palette-alpha"],
)
def test_auto_backend_routes_by_input_class(monkeypatch, data, expected):
    monkeypatch.setattr(engine, "BACKEND", "auto")
    assert engine.pyvips is not None, "pyvips is not installed"
    assert engine.render(data, 800, 50_000_000).backend == expected
