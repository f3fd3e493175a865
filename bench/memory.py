"""make bench-memory [N=6] [SIZES=256,512,1024,1769,3008] [JSON=bench/out/memory.json]: each pipeline function's
duration and cost per invocation at each memory size, with the CPU Lambda gives that size, to choose MemorySize on
measurements.

Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU). The local cloud emulates that when
started with LOCALCLOUD_CPU_BY_MEMORY=1 (localcloud/plugins/lambda_executor/sandbox.py CpuShare: a CFS quota of memory/1769 of a CPU on
each execution environment's runtime process; `make bench-memory` restarts it so). For each function of the
workflow in turn (the others stay at the template's sizes), for each size: set its MemorySize, warm it with one
image, then send N 12 MP JPEGs through the pipeline one at a time and read the function's REPORT lines (billed
duration, peak memory). Cost per million invocations = billed GB-seconds x the Lambda price + the request price
(bench/prices/us-east-1.json). The stack is deployed with the template's defaults (the default rendition set).

Limits: one CPU of this machine stands for one Lambda vCPU (absolute durations differ on AWS; the ratios between
sizes are what the choice rests on), and this machine has 2 CPUs, so sizes above 3,538 MB cannot get their share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cost import ROOT, aws, deploy, functions_of, one_image, reconciler_rules, report, stack_outputs  # noqa: E402
from load import sample_jpeg  # noqa: E402

sys.path.insert(0, str(ROOT / "localcloud" / "src"))
from localcloud.plugins.lambda_executor.sandbox import MB_PER_VCPU, CpuShare  # noqa: E402

FUNCTIONS = ("ValidateFunction", "ResizeFunction", "MarkProcessedFunction")


def set_memory(lam, name: str, memory_mb: int) -> None:
    lam.update_function_configuration(FunctionName=name, MemorySize=memory_mb)
    deadline = time.monotonic() + 60
    while lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus") not in ("Successful", None):
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: the configuration update did not finish")
        time.sleep(0.2)


def report_lines(log_group: str, since_ms: int, until_ms: int) -> list[dict[str, float]]:
    """Billed duration (ms) and peak memory (MB) of each invocation in the window, from its REPORT line."""
    logs = aws("logs")
    found = []
    for page in logs.get_paginator("filter_log_events").paginate(
        logGroupName=log_group, startTime=since_ms, endTime=until_ms
    ):
        found += [r for event in page["events"] if (r := report(event["message"])) is not None]
    return found


def sweep(args: argparse.Namespace, prices: dict) -> dict:
    outputs = stack_outputs(args.stack)
    api, table_name = outputs["LocalApiUrl"], outputs["ImageTableName"]
    functions = functions_of(args.stack)
    lam, dynamodb, events = aws("lambda"), aws("dynamodb"), aws("events")
    width = 4000
    data = sample_jpeg((width, width * 3 // 4))
    gb_second, request = prices["lambda"]["gb_second"]["x86_64"], prices["lambda"]["request"]
    results: dict[str, dict] = {}
    paused = reconciler_rules(args.stack)
    for rule in paused:
        events.disable_rule(Name=rule)
    try:
        for logical in FUNCTIONS:
            function = functions[logical]
            declared = function["memory_mb"]
            rows = []
            try:
                for size in args.sizes:
                    set_memory(lam, function["name"], size)
                    row: dict = {"memory_mb": size, "vcpu": round(size / MB_PER_VCPU, 3)}
                    try:
                        one_image(api, data, dynamodb, table_name)  # a cold start after the update: not measured
                        time.sleep(1.0)
                        since = int(datetime.now(UTC).timestamp() * 1000)
                        latencies = []
                        for _ in range(args.uploads):
                            start = time.monotonic()
                            one_image(api, data, dynamodb, table_name)
                            latencies.append((time.monotonic() - start) * 1000)
                        time.sleep(2.0)  # the last REPORT lines reach CloudWatch Logs
                        until = int(datetime.now(UTC).timestamp() * 1000)
                    except SystemExit as e:  # an image did not come out PROCESSED at this size
                        rows.append({**row, "failed": str(e)})
                        print(f"{logical} {size} MB: {e}", flush=True)
                        continue
                    reports = report_lines(function["log_group"], since, until)
                    billed = statistics.median(r["billed_ms"] for r in reports)
                    gb_s = billed / 1000 * size / 1024
                    row |= {
                        "invocations": len(reports),
                        "billed_ms_median": billed,
                        "peak_mb": max(r["peak_mb"] for r in reports),
                        "gb_seconds": round(gb_s, 5),
                        "usd_per_million": round((gb_s * gb_second + request) * 1e6, 2),
                        "image_ms_median": round(statistics.median(latencies)),
                    }
                    rows.append(row)
                    print(
                        f"{logical} {size} MB ({row['vcpu']} vCPU): {billed:.0f} ms, "
                        f"${row['usd_per_million']}/M, peak {row['peak_mb']:.0f} MB",
                        flush=True,
                    )
            finally:
                set_memory(lam, function["name"], declared)
            measured = [r for r in rows if "failed" not in r]
            cheapest = min(measured, key=lambda r: (r["usd_per_million"], r["billed_ms_median"]))
            fastest = min(measured, key=lambda r: (r["billed_ms_median"], r["usd_per_million"]))
            results[logical] = {
                "declared_mb": declared,
                "cheapest_mb": cheapest["memory_mb"],
                "fastest_mb": fastest["memory_mb"],
                "sizes": rows,
            }
    finally:
        for rule in paused:
            events.enable_rule(Name=rule)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=6)
    parser.add_argument("--stack", default="image-pipeline")
    parser.add_argument("--sizes", default="256,512,1024,1769,3008")
    parser.add_argument("--prices", type=Path, default=ROOT / "bench" / "prices" / "us-east-1.json")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if not CpuShare.supported():
        raise SystemExit("bench-memory needs a writable cgroup cpu controller (root) to give each size its CPU share")
    prices = json.loads(args.prices.read_text())
    deploy(args.stack, ["WorkflowType=STANDARD", "RenditionSizes=200,400,800,1600", "RenditionFormats=avif,webp,jpeg"])
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "uploads_per_size": args.uploads,
        "image": "4000x3000 JPEG",
        "prices": {"region": prices["region"], "as_of": prices["prices_as_of"]},
        "functions": sweep(args, prices),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
