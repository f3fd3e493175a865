"""Image engine benchmark: our engine vs libvips thumbnail_buffer vs a naive Pillow resize, side by side.

For every image: decode + fit within 800x800 + encode (JPEG q85 / PNG / WebP q80 as the engine does),
warm-up then several rounds (medians), peak RSS of one run in a fresh process, and PSNR against a
full-resolution LANCZOS reference. For baseline JPEGs also the floor: a reduced-scale DCT decode plus
the encode, the least work any engine must do.

Usage: PYTHONPATH=layers/shared:. python bench/resize_bench.py (or make bench-resize) [--images DIR] [--json OUT] [--rounds N]
       (no --images: generates the default set under bench/out/images)
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

ROOT = Path(__file__).resolve().parents[1]

from image_pipeline import engine  # noqa: E402
from image_pipeline.config import DEFAULT_MAX_DIMENSION  # noqa: E402

MAX_DIMENSION = DEFAULT_MAX_DIMENSION
MAX_PIXELS = 100_000_000
METHODS = ("engine", "pyvips", "naive")


# ---------------------------------------------------------------- the default image set
def _photo(width: int, height: int) -> Image.Image:
    """Photo-like content: smooth gradients, shapes and sensor-like noise (so codecs do realistic work)."""
    base = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize((width, height)),
            Image.radial_gradient("L").resize((width, height)),
            Image.linear_gradient("L").rotate(90).resize((width, height)),
        ],
    )
    draw = ImageDraw.Draw(base)
    for i in range(24):
        x, y = (i * 7919) % width, (i * 104729) % height
        r = max(8, min(width, height) // (6 + i % 5))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=((i * 53) % 256, (i * 97) % 256, (i * 31) % 256))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(base, noise, 0.18)


def generate(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "jpeg_1mp_baseline.jpg": lambda: _save(_photo(1200, 900), "JPEG", quality=90),
        "jpeg_12mp_baseline.jpg": lambda: _save(_photo(4000, 3000), "JPEG", quality=90),
        "jpeg_24mp_baseline.jpg": lambda: _save(_photo(6000, 4000), "JPEG", quality=90),
        "jpeg_12mp_progressive.jpg": lambda: _save(_photo(4000, 3000), "JPEG", quality=90, progressive=True),
        "jpeg_12mp_exif_rotated.jpg": lambda: _save(_photo(3000, 4000), "JPEG", quality=90, exif=_exif(6)),
        "png_4mp_alpha.png": lambda: _save(_alpha(_photo(2400, 1600)), "PNG"),
        "webp_12mp.webp": lambda: _save(_photo(4000, 3000), "WEBP", quality=85),
    }
    for name, make in specs.items():
        if not (folder / name).exists():
            (folder / name).write_bytes(make())


def _save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _alpha(im: Image.Image) -> Image.Image:
    mask = Image.radial_gradient("L").resize(im.size)
    im = im.convert("RGBA")
    im.putalpha(ImageOps.invert(mask))
    return im


# ---------------------------------------------------------------- the contenders
def run_engine(data: bytes) -> bytes:
    return engine.render(data, MAX_DIMENSION, MAX_PIXELS).data


def run_pyvips(data: bytes) -> bytes:
    import pyvips

    fmt = engine.sniff(data[: engine.SNIFF_BYTES])
    image = pyvips.Image.thumbnail_buffer(data, MAX_DIMENSION, height=MAX_DIMENSION, size="down")
    if fmt == "JPEG":
        return image.write_to_buffer(".jpg", Q=85, interlace=True, keep="none")
    if fmt == "WEBP":
        return image.write_to_buffer(".webp", Q=80, keep="none")
    return image.write_to_buffer(".png", compression=6, keep="none")


def run_naive(data: bytes) -> bytes:
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    im = im.resize(engine.fit(im.width, im.height, MAX_DIMENSION), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    fmt = engine.OUTPUT_FORMAT[engine.sniff(data[: engine.SNIFF_BYTES])]
    im.save(
        buf,
        fmt,
        **({"quality": 85, "progressive": True} if fmt == "JPEG" else {"quality": 80} if fmt == "WEBP" else {}),
    )
    return buf.getvalue()


RUNNERS = {"engine": run_engine, "pyvips": run_pyvips, "naive": run_naive}


def floor_fn(data: bytes):
    """Reduced-scale DCT decode (the smallest scale >= the output) plus the JPEG encode of the output."""
    with Image.open(io.BytesIO(data)) as probe:
        if probe.format != "JPEG" or probe.info.get("progressive") or probe.getexif().get(0x0112, 1) != 1:
            return None
        size = engine.fit(probe.width, probe.height, MAX_DIMENSION)
    out = Image.new("RGB", size)

    def once() -> None:
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", size)
        im.load()
        out.save(io.BytesIO(), "JPEG", quality=85, progressive=True)

    return once


def median_ms(fn, rounds: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def interleaved_ms(fns: dict, rounds: int) -> dict[str, float]:
    """Median ms of each function, the contenders taking turns in every round (same machine state)."""
    for fn in fns.values():
        fn()
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_rss_mb(method: str, path: Path) -> float:
    """Peak RSS of one run in a fresh process (interpreter and libraries included)."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", method, str(path)], capture_output=True, text=True, check=True
    )
    return round(float(out.stdout.strip()), 1)


def psnr_db(data: bytes, rendition: bytes) -> float:
    """PSNR of a rendition against full decode + EXIF transpose + LANCZOS at the same size (over white)."""
    ref = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    got = Image.open(io.BytesIO(rendition))
    ref = ref.resize(got.size, Image.Resampling.LANCZOS)
    a, b = _flatten(ref), _flatten(got)
    mse = statistics.fmean(v * v for v in ImageStat.Stat(ImageChops.difference(a, b)).rms)
    return round(99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse), 2)


def _flatten(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        method, path = args.one
        RUNNERS[method](Path(path).read_bytes())
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the parent
        hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
        print(int(hwm.split()[1]) / 1024)
        return

    folder = args.images or ROOT / "bench" / "out" / "images"
    if args.images is None:
        generate(folder)
    rows = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        data = path.read_bytes()
        row: dict = {"image": path.name, "bytes": len(data)}
        contenders = {m: (lambda m=m, data=data: RUNNERS[m](data)) for m in METHODS}
        floor = floor_fn(data)
        if floor:
            contenders["floor"] = floor
        times = interleaved_ms(contenders, args.rounds)
        for method in METHODS:
            rendition = RUNNERS[method](data)
            row[f"{method}_ms"] = round(times[method], 2)
            row[f"{method}_peak_mb"] = peak_rss_mb(method, path)
            row[f"{method}_psnr_db"] = psnr_db(data, rendition)
        row["psnr_db"] = row["engine_psnr_db"]
        floor = times.get("floor")
        row["floor_ms"] = round(floor, 2) if floor else None
        row["engine_vs_pyvips"] = round(row["engine_ms"] / row["pyvips_ms"], 2)
        row["engine_vs_naive"] = round(row["engine_ms"] / row["naive_ms"], 2)
        row["engine_vs_floor"] = round(row["engine_ms"] / floor, 2) if floor else None
        rows.append(row)
        print(f"{path.name}: done", file=sys.stderr)

    print(
        "| image | engine ms | pyvips ms | naive ms | floor ms | engine/pyvips | engine/floor | "
        "peak MB engine / pyvips / naive | PSNR dB engine / pyvips / naive |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['image']} | {r['engine_ms']} | {r['pyvips_ms']} | {r['naive_ms']} | {r['floor_ms'] or ''} | "
            f"{r['engine_vs_pyvips']} | {r['engine_vs_floor'] or ''} | "
            f"{r['engine_peak_mb']} / {r['pyvips_peak_mb']} / {r['naive_peak_mb']} | "
            f"{r['engine_psnr_db']} / {r['pyvips_psnr_db']} / {r['naive_psnr_db']} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
