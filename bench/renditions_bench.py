"""Rendition benchmark: the whole responsive set per input class, and the numbers behind the encoder settings and
the workflow's shape (one Resize task vs a Map fan-out). Results go to docs/benchmarks.md by hand.

1. Encoder sweep (AVIF quality x speed, WebP quality x method) on 800-px images of real photos: median ms, CPU ms,
   bytes and SSIM (luma, 11-px Gaussian window) against the uncompressed 800-px image, beside JPEG q85 (the bar).
2. The default set (200,400,800,1600 x avif,webp,jpeg) per input class through engine.render_set: wall and CPU ms
   with 1 and 2 encoder threads, bytes per format; and the fan-out alternative measured the same way: one
   render_set per format (what a Map over formats would run: a decode each), its total CPU and slowest branch.

Usage: PYTHONPATH=layers/shared:. python bench/renditions_bench.py (or make bench-renditions)
       [--images DIR] [--json OUT] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import pyvips
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

from image_pipeline import engine  # noqa: E402
from image_pipeline.config import DEFAULT_MAX_DIMENSION, DEFAULT_RENDITION_FORMATS, DEFAULT_RENDITION_SIZES  # noqa: E402

from bench import resize_bench  # noqa: E402

CORPUS = ROOT / ".venv" / "corpus"
REAL = ("iphone.heic", "fujifilm.mpo", "xiaomi.heic")  # real camera/phone files (fetched by make setup)
SWEEP = {
    "JPEG": [{"quality": 85, "progressive": True, "optimize": True}],
    "AVIF": [{"quality": q, "speed": s, "max_threads": 1} for q in (50, 60, 70) for s in (6, 8, 9)],
    "WEBP": [{"quality": q, "method": m} for q in (75, 80, 85) for m in (2, 4)],
}


def timed(call, rounds: int):
    """(median wall ms, median CPU ms, last result) over ``rounds`` runs after one warm-up."""
    call()
    walls, cpus, result = [], [], None
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        result = call()
        walls.append((time.perf_counter() - w) * 1000)
        cpus.append((time.process_time() - c) * 1000)
    return statistics.median(walls), statistics.median(cpus), result


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM of the luma of two same-sized images (Gaussian sigma 1.5, the usual constants), with libvips."""

    def luma(im: Image.Image) -> pyvips.Image:
        grey = im.convert("L")
        return pyvips.Image.new_from_memory(grey.tobytes(), grey.width, grey.height, 1, "uchar").cast("float")

    x, y = luma(a), luma(b)
    blur = lambda v: v.gaussblur(1.5, precision="float")  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).avg()


def decoded_800(data: bytes) -> Image.Image:
    """The engine's own 800-px image of ``data`` (oriented, sRGB), uncompressed: the reference."""
    info = engine.probe(data, 200_000_000)
    base, _ = engine._decode_base(data, info, DEFAULT_MAX_DIMENSION, "auto", 200_000_000)
    return base.convert("RGB")


def sweep(sources: dict[str, bytes], rounds: int) -> list[dict]:
    rows = []
    refs = {name: decoded_800(data) for name, data in sources.items()}
    for fmt, settings in SWEEP.items():
        for options in settings:
            walls, cpus, sizes, scores = [], [], [], []
            for ref in refs.values():
                wall, cpu, out = timed(lambda r=ref, f=fmt, o=options: engine._encode(r, f, o), rounds)
                with Image.open(io.BytesIO(out)) as im:
                    scores.append(ssim(ref, im.convert("RGB")))
                walls.append(wall)
                cpus.append(cpu)
                sizes.append(len(out))
            row = {
                "format": fmt,
                "options": {k: v for k, v in options.items() if k != "max_threads"},
                "ms": round(statistics.mean(walls), 1),
                "cpu_ms": round(statistics.mean(cpus), 1),
                "kib": round(statistics.mean(sizes) / 1024, 1),
                "ssim": round(statistics.mean(scores), 4),
            }
            rows.append(row)
            print(
                f"  {fmt:4} {json.dumps(row['options']):38} {row['ms']:7.1f} ms {row['cpu_ms']:7.1f} cpu-ms "
                f"{row['kib']:7.1f} KiB  SSIM {row['ssim']:.4f}",
                flush=True,
            )
    return rows


VIPS_SAVE = {  # the engine's settings in libvips' terms (heifsave effort = 9 - libaom speed)
    "avif": lambda im: im.heifsave_buffer(Q=70, effort=0, compression="av1", keep="none"),
    "webp": lambda im: im.webpsave_buffer(Q=85, effort=2, keep="none"),
    "jpeg": lambda im: im.jpegsave_buffer(Q=85, interlace=True, optimize_coding=True, keep="none"),
    "png": lambda im: im.pngsave_buffer(compression=6, keep="none"),
}


def vips_set_decode_once(data: bytes) -> dict[str, int]:
    """libvips' decode-once pipeline: one shrink-on-load thumbnail at the largest box, then resize per box."""
    boxes = sorted(DEFAULT_RENDITION_SIZES)
    base = pyvips.Image.thumbnail_buffer(data, boxes[-1], height=boxes[-1], size="down", export_profile="srgb")
    base = base.copy_memory()
    return _vips_encode_all(lambda box: base.resize(min(1.0, box / max(base.width, base.height))), boxes, base)


def vips_set_thumbnail_each(data: bytes) -> dict[str, int]:
    """libvips' other way: thumbnail_buffer per box (a shrink-on-load decode each)."""
    boxes = sorted(DEFAULT_RENDITION_SIZES)
    thumbs = {
        b: pyvips.Image.thumbnail_buffer(data, b, height=b, size="down", export_profile="srgb").copy_memory()
        for b in boxes
    }
    return _vips_encode_all(lambda box: thumbs[box], boxes, thumbs[boxes[0]])


def _vips_encode_all(at, boxes, sample) -> dict[str, int]:
    sizes: dict[str, int] = {}
    alpha = sample.hasalpha()
    for box in boxes:
        im = at(box)
        for name in DEFAULT_RENDITION_FORMATS:
            fmt = "png" if name == "jpeg" and alpha else name
            sizes[fmt] = sizes.get(fmt, 0) + len(VIPS_SAVE[fmt](im))
    return sizes


def render(data: bytes, formats, workers: int, profiles=()) -> engine.RenditionSet:
    return engine.render_set(
        data, DEFAULT_RENDITION_SIZES, formats, DEFAULT_MAX_DIMENSION, 200_000_000, workers=workers, profiles=profiles
    )


# issue 35's target: two fixed-shape profiles add at most 20% to the default set's CPU (a 12 MP JPEG)
TWO_PROFILES = (engine.Profile("square", 400, 400, "attention"), engine.Profile("card", 1200, 630, "attention"))


def profiles_overhead(data: bytes, rounds: int) -> dict:
    """The default set's CPU without and with TWO_PROFILES, side by side: the two alternate in every round (after a
    warm-up of each), medians."""
    without = lambda: render(data, DEFAULT_RENDITION_FORMATS, 1)  # noqa: E731
    with_two = lambda: render(data, DEFAULT_RENDITION_FORMATS, 1, TWO_PROFILES)  # noqa: E731
    without(), with_two()
    cpus: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(rounds):
        for name, call in (("without", without), ("with", with_two)):
            c = time.process_time()
            call()
            cpus[name].append((time.process_time() - c) * 1000)
    a, b = statistics.median(cpus["without"]), statistics.median(cpus["with"])
    return {"cpu_ms_without": round(a), "cpu_ms_with_two_profiles": round(b), "added": round(b / a - 1, 3)}


def sets(inputs: dict[str, bytes], rounds: int) -> list[dict]:
    rows = []
    for name, data in inputs.items():
        one_wall, one_cpu, result = timed(lambda d=data: render(d, DEFAULT_RENDITION_FORMATS, 1), rounds)
        two_wall, two_cpu, _ = timed(lambda d=data: render(d, DEFAULT_RENDITION_FORMATS, 2), rounds)
        branches = [timed(lambda d=data, f=f: render(d, (f,), 1), rounds)[:2] for f in DEFAULT_RENDITION_FORMATS]
        try:
            vips_once = timed(lambda d=data: vips_set_decode_once(d), rounds)
            vips_each = timed(lambda d=data: vips_set_thumbnail_each(d), rounds)
        except pyvips.Error as e:  # pyvips-binary's libvips has no HEVC decoder: HEIC is ours alone
            print(f"  {name:28} libvips cannot: {str(e).strip().splitlines()[-1][:100]}")
            vips_once = vips_each = (float("nan"), float("nan"), {})
        vips_best = min((vips_once, "decode once"), (vips_each, "thumbnail per size"), key=lambda v: v[0][0])
        by_format: dict[str, int] = {}
        for r in result.renditions:
            by_format[r.format] = by_format.get(r.format, 0) + len(r.data)
        row = {
            "input": name,
            "input_bytes": len(data),
            "renditions": len(result.renditions),
            "one_task_1_thread": {"ms": round(one_wall), "cpu_ms": round(one_cpu)},
            "one_task_2_threads": {"ms": round(two_wall), "cpu_ms": round(two_cpu)},
            "map_per_format": {
                "slowest_branch_ms": round(max(w for w, _ in branches)),
                "cpu_ms": round(sum(c for _, c in branches)),
            },
            "kib_per_format": {k: round(v / 1024, 1) for k, v in by_format.items()},
            "engine_ms": round(one_wall),
            "pyvips_ms": None if vips_best[0][0] != vips_best[0][0] else round(vips_best[0][0]),
            "pyvips_way": vips_best[1],
            "pyvips_decode_once_ms": None if vips_once[0] != vips_once[0] else round(vips_once[0]),
            "pyvips_thumbnail_each_ms": None if vips_each[0] != vips_each[0] else round(vips_each[0]),
            "bytes": {k.lower(): v for k, v in by_format.items()},
            "pyvips_bytes": vips_best[0][2],
        }
        rows.append(row)
        print(
            f"  {name:28} 1 task: {row['one_task_1_thread']['ms']:5} ms / {row['one_task_1_thread']['cpu_ms']:5} cpu-ms"
            f" | 2 threads: {row['one_task_2_threads']['ms']:5} ms / {row['one_task_2_threads']['cpu_ms']:5} cpu-ms"
            f" | map per format: {row['map_per_format']['slowest_branch_ms']:5} ms / {row['map_per_format']['cpu_ms']:5}"
            f" cpu-ms | KiB {row['kib_per_format']}",
            flush=True,
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="a folder of images (default: generated set + the real corpus)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "renditions.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true", help="skip the encoder sweep")
    parser.add_argument("--profiles-only", action="store_true", help="only the two profiles' added CPU (12 MP JPEG)")
    args = parser.parse_args()
    folder = args.images or ROOT / "bench" / "out" / "images"
    if args.images is None:
        resize_bench.generate(folder)
    inputs = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    real = {n: (CORPUS / n).read_bytes() for n in REAL if (CORPUS / n).exists()}
    if args.images is None:
        inputs.update(real)
    print(f"encoder sweep at 800 px on {', '.join(real) or 'the inputs'} (mean of the medians of {args.rounds} runs)")
    encoders = [] if args.no_sweep else sweep(real or dict(list(inputs.items())[:3]), args.rounds)
    twelve = inputs.get("jpeg_12mp_baseline.jpg")
    overhead = profiles_overhead(twelve, args.rounds) if twelve else None
    if overhead:
        print(f"two profiles on the 12 MP JPEG's default set: {overhead}", flush=True)
    if args.profiles_only:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"profiles": overhead}, indent=2))
        return 0
    print(f"the default set per input ({args.rounds} runs, medians)")
    per_input = sets(inputs, args.rounds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"encoders": encoders, "sets": per_input, "profiles": overhead}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
