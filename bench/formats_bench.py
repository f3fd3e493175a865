"""What phone formats cost: the engine's render (probe + decode + fit within 800 + encode) of the same 12 MP
picture as JPEG, HEIC and AVIF, side by side in one run (interleaved rounds, medians), plus real phone files
from the test corpus. libvips is timed beside the engine where its build can decode the input (AVIF; the
pyvips-binary wheels carry no HEVC decoder).

Usage: PYTHONPATH=layers/shared:. python bench/formats_bench.py (or make bench-formats) [--rounds N] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import pillow_heif  # noqa: E402
import pyvips  # noqa: E402
from image_pipeline import engine  # noqa: E402
from image_pipeline.config import DEFAULT_MAX_DIMENSION  # noqa: E402
from PIL import Image  # noqa: E402

from bench.resize_bench import _photo  # noqa: E402
from bench.stats import pct  # noqa: E402

MAX_DIMENSION, MAX_PIXELS = DEFAULT_MAX_DIMENSION, 100_000_000
CORPUS = ROOT / ".venv" / "corpus"


def _encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def inputs() -> dict[str, bytes]:
    pillow_heif.register_heif_opener()
    photo = _photo(4032, 3024)  # an iPhone's 12 MP
    cases = {
        "12mp.jpg (q90)": _encode(photo, "JPEG", quality=90),
        "12mp.heic (x265 q80)": _encode(photo, "HEIF", quality=80),
        "12mp.avif (q80)": _encode(photo, "AVIF", quality=80),
    }
    for name in ("iphone.heic", "xiaomi.heic", "camera_rotated_10bit.hif"):
        cases[f"corpus/{name}"] = (CORPUS / name).read_bytes()
    return cases


def vips_render(data: bytes) -> bytes:
    return pyvips.Image.thumbnail_buffer(data, MAX_DIMENSION, size="down").write_to_buffer(".jpg", Q=85, keep="none")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases = inputs()
    methods = {"engine": lambda d: engine.render(d, MAX_DIMENSION, MAX_PIXELS).data, "libvips": vips_render}
    usable = {
        (name, method)
        for name, data in cases.items()
        for method, run in methods.items()
        if method == "engine" or engine.sniff(data[: engine.SNIFF_BYTES]) == engine.AVIF
    }
    times: dict[tuple[str, str], list[float]] = {key: [] for key in usable}
    for key in usable:  # warm-up: plugins loaded, caches filled
        methods[key[1]](cases[key[0]])
    for _ in range(args.rounds):  # interleaved, so drift in the machine's speed hits every case alike
        for key in sorted(usable):
            start = time.perf_counter()
            methods[key[1]](cases[key[0]])
            times[key].append(time.perf_counter() - start)
    base = statistics.median(times[("12mp.jpg (q90)", "engine")])
    rows = []
    for name, data in cases.items():
        for method in methods:
            if (name, method) not in times:
                continue
            median = statistics.median(times[(name, method)])
            rows.append(
                {
                    "input": name,
                    "method": method,
                    "bytes": len(data),
                    "median_ms": round(median * 1000, 1),
                    "p90_ms": round(pct(times[(name, method)], 90) * 1000, 1),
                    "vs_12mp_jpeg_engine": round(median / base, 2),
                }
            )
    print(f"{'input':32} {'method':8} {'bytes':>9} {'median ms':>10} {'p90 ms':>8} {'x 12MP JPEG':>12}")
    for r in rows:
        print(
            f"{r['input']:32} {r['method']:8} {r['bytes']:>9} {r['median_ms']:>10} {r['p90_ms']:>8}"
            f" {r['vs_12mp_jpeg_engine']:>12}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rounds": args.rounds, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
