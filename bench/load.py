"""Load benchmark: N uploads in a burst through the HTTP API; throughput, upload-to-PROCESSED latency, outcomes, CPU.

Usage: python bench/load.py [--uploads 300] [--clients 16] [--json OUT]   (stack deployed: make deploy)
       python bench/load.py --single 20 [--megapixels 12]                 (one image at a time on a warm stack)
       python bench/load.py --focus 10 [--megapixels 12]    (a focal point's crops-only run against a reprocess)

Each client does what a user does (POST /upload, PUT to the presigned URL, retrying 429/5xx). Latency is
from the end of the PUT to the record's final `updatedAt` (written by the workflow's last step), read from
DynamoDB, so polling does not add load to the API under test. CPU: the LocalStack process's CPU-seconds
(/proc/PID/stat) and the whole machine's (/proc/stat) from the first upload to the last terminal record.
Task errors are counted from the execution histories of the run's executions (retried or not).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import boto3
import requests
from PIL import Image, ImageDraw
from stats import pct  # bench/ is on the path: these run as scripts

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("LOCALCLOUD_STATE_DIR") or ROOT / ".localcloud")  # scripts/lib.sh's STATE_DIR
TERMINAL = {"PROCESSED", "REJECTED", "FAILED"}
SIGNED_IN: dict[str, str] = {}  # the Authorization header of the run's user (sign_in)


def sign_in(outputs: dict) -> dict[str, str]:
    """A new user of the stack signed in for this run (each run its own: quotas count per user and hour), as the
    Authorization header every API call carries."""
    sys.path.insert(0, str(ROOT))
    from tests.users import token_of_new_user

    SIGNED_IN["Authorization"] = f"Bearer {token_of_new_user(outputs, os.environ.get('AWS_ENDPOINT_URL'), 'bench')}"
    return SIGNED_IN


def sample_jpeg(size: tuple[int, int] = (2400, 1600)) -> bytes:
    im = Image.radial_gradient("L").resize(size).convert("RGB")
    w, h = size
    ImageDraw.Draw(im).ellipse((w // 6, h // 5, w * 7 // 12, h * 13 // 16), fill=(200, 40, 40))
    im = Image.blend(im, Image.effect_noise(im.size, 20).convert("RGB"), 0.15)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def retrying(send, attempts: int = 10) -> requests.Response:
    for attempt in range(attempts):
        resp = send()
        if resp.status_code not in (429, 500, 502, 503, 504):
            return resp
        time.sleep(min(0.1 * 2**attempt, 3.0))
    return resp


def upload(api: str, data: bytes, start_of_put: bool = False) -> tuple[str, float]:
    """POST /upload then PUT; returns the image id and the time the PUT ended (or began, with ``start_of_put``)."""
    body = {"contentType": "image/jpeg", "size": len(data)}
    grant = retrying(lambda: requests.post(f"{api}/upload", json=body, headers=SIGNED_IN))
    grant.raise_for_status()
    body = grant.json()
    began = time.time()
    put = retrying(lambda: requests.put(body["uploadUrl"], data=data, headers=body["headers"]))
    put.raise_for_status()
    return body["imageId"], began if start_of_put else time.time()


def localstack_cpu_s() -> float:
    """CPU-seconds (user + system) of the LocalStack process so far."""
    pid = (STATE_DIR / "localstack.pid").read_text().strip()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> float:
    """CPU-seconds the whole machine spent busy so far (all cores; idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def admission_stats() -> dict | None:
    """The local cloud's Lambda admission queue counters (localcloud.patches.lambda_), if it has one."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
    resp = requests.get(f"{endpoint}/_localcloud/admission", timeout=5)
    return resp.json() if resp.ok else None


def gc_stats() -> dict | None:
    """The local cloud's garbage collector counters (localcloud.gcpolicy), if it has them."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
    resp = requests.get(f"{endpoint}/_localcloud/gc", timeout=5)
    return resp.json() if resp.ok else None


def gc_delta(before: dict | None, after: dict | None) -> dict | None:
    """LocalStack's garbage collections during the burst, per generation (localcloud.gcpolicy's counters)."""
    if not before or not after:
        return None
    return {
        **after,
        "collections": [a - b for a, b in zip(after["collections"], before["collections"], strict=True)],
        "whole_heap_collections": after["whole_heap_collections"] - before["whole_heap_collections"],
    }


def task_errors(state_machine_arn: str, since: datetime) -> dict[str, int]:
    """Errors of failed tasks, timed-out tasks and failed executions in the executions started since ``since``."""
    sfn = boto3.client("stepfunctions")
    arns = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        arns += [e["executionArn"] for e in page["executions"] if e["startDate"] >= since]
    errors: dict[str, int] = {}
    for arn in arns:
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            for event in page["events"]:
                for key in ("taskFailedEventDetails", "taskTimedOutEventDetails", "lambdaFunctionFailedEventDetails"):
                    if key in event:
                        error = event[key].get("error", "?")
                        errors[error] = errors.get(error, 0) + 1
    return dict(sorted(errors.items(), key=lambda kv: -kv[1]))


def single(stack: dict, table, count: int, megapixels: float) -> dict:
    """One upload at a time on a warm stack: from the start of the PUT to PROCESSED (after 3 uploads that warm it).

    From the start, not the end: the pipeline starts when S3 has the object, and the PUT's answer can reach the client
    after the work has begun (LocalStack's threads share one GIL), so its end would understate the latency."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    data = sample_jpeg((width, width * 3 // 4))
    latencies = []
    for i in range(count + 3):
        image_id, put_began = upload(stack["LocalApiUrl"], data, start_of_put=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            item = table.get_item(Key={"imageId": image_id}, ConsistentRead=True).get("Item", {})
            if item.get("status") in TERMINAL:
                break
            time.sleep(0.01)
        if item.get("status") != "PROCESSED":
            raise SystemExit(f"{image_id} ended {item.get('status')}")
        if i >= 3:
            latencies.append((ts(item["updatedAt"]) - put_began) * 1000)
    return {
        "mode": "single",
        "uploads": count,
        "image": f"{width}x{width * 3 // 4} JPEG",
        "image_bytes": len(data),
        "latency_ms": {
            "p50": round(pct(latencies, 50)),
            "p95": round(pct(latencies, 95)),
            "min": round(min(latencies)),
        },
    }


def focus(stack: dict, table, count: int, megapixels: float) -> dict:
    """A focal point's crops against a whole re-render, side by side on a stack with RenditionProfiles: ``count``
    images (after one that warms the functions), each one PATCHed to a new focal point (a crops-only run) and
    reprocessed (the whole set), alternately, one at a time; each from the request to the record's final
    ``updatedAt``, the end of Mark processed."""
    sys.path.insert(0, str(ROOT / "layers" / "shared"))
    from image_pipeline import contracts

    sfn = boto3.client("stepfunctions")
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    data = sample_jpeg((width, width * 3 // 4))
    api, machine = stack["LocalApiUrl"], stack["ImagePipelineStateMachineArn"]

    def settled(image_id: str, execution: str, deadline: float = 120) -> dict:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            item = table.get_item(Key={"imageId": image_id}, ConsistentRead=True).get("Item", {})
            if item.get("status") in TERMINAL and str(item.get("executionArn", "")).split(":")[7:8] == [execution]:
                if item["status"] != "PROCESSED" or item.get("reprocessError"):
                    raise SystemExit(f"{image_id}: {item.get('status')} {item.get('reprocessError')}")
                return item
            time.sleep(0.01)
        raise SystemExit(f"{image_id}: execution {execution} did not record within {deadline} s")

    times: dict[str, list[float]] = {"crops": [], "whole": []}
    for i in range(count + 1):
        image_id, _ = upload(api, data)
        first = table.get_item(Key={"imageId": image_id}, ConsistentRead=True).get("Item", {})
        while first.get("status") not in TERMINAL:
            time.sleep(0.05)
            first = table.get_item(Key={"imageId": image_id}, ConsistentRead=True).get("Item", {})
        for kind in ("crops", "whole") if i % 2 else ("whole", "crops"):
            began = time.time()
            if kind == "crops":
                point = {"x": round(0.1 + 0.8 * ((i * 7) % 10) / 10, 2), "y": 0.5}
                url, body = f"{api}/images/{image_id}", {"focalPoint": point}
                answer = retrying(lambda: requests.patch(url, json=body, headers=SIGNED_IN))  # noqa: B023 (called here)
                answer.raise_for_status()
                execution = answer.json()["rendering"]
            else:
                event = contracts.reprocess_event(stack["OriginalBucketName"], first["originalKey"], first["etag"])
                arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(event))["executionArn"]
                execution = arn.split(":")[7]
            item = settled(image_id, execution)
            if i:  # the first image warms both paths
                times[kind].append((ts(item["updatedAt"]) - began) * 1000)
    return {
        "mode": "focus",
        "images": count,
        "image": f"{width}x{width * 3 // 4} JPEG",
        "crops_only_ms": {"p50": round(pct(times["crops"], 50)), "p95": round(pct(times["crops"], 95))},
        "whole_set_ms": {"p50": round(pct(times["whole"], 50)), "p95": round(pct(times["whole"], 95))},
    }


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def report(result: dict, path: Path | None) -> None:
    """Print the result, and write it to ``path`` as JSON if one is given."""
    print(json.dumps(result, indent=2))
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--single", type=int, metavar="N", help="N uploads one at a time on a warm stack instead")
    parser.add_argument("--megapixels", type=float, default=12, help="size of the --single and --focus images")
    parser.add_argument("--focus", type=int, metavar="N", help="N images: a focal point's crops against a reprocess")
    parser.add_argument("--no-errors", action="store_true", help="skip reading the execution histories")
    args = parser.parse_args()

    stack = json.loads((STATE_DIR / "stack-image-pipeline.json").read_text())
    table = boto3.resource("dynamodb").Table(stack["ImageTableName"])
    sign_in(stack)
    if args.single:
        report(single(stack, table, args.single, args.megapixels), args.json)
        return
    if args.focus:
        report(focus(stack, table, args.focus, args.megapixels), args.json)
        return
    data = sample_jpeg()
    since = datetime.now(UTC)
    cpu_localstack, cpu_machine = localstack_cpu_s(), machine_cpu_s()
    gc_before = gc_stats()
    started = time.time()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        uploaded = dict(pool.map(lambda _: upload(stack["LocalApiUrl"], data), range(args.uploads)))
    uploads_done = time.time()

    records: dict[str, dict] = {}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        pending = [i for i in uploaded if records.get(i, {}).get("status") not in TERMINAL]
        if not pending:
            break
        for chunk in range(0, len(pending), 100):
            keys = [{"imageId": i} for i in pending[chunk : chunk + 100]]
            resp = table.meta.client.batch_get_item(RequestItems={table.name: {"Keys": keys, "ConsistentRead": True}})
            for item in resp["Responses"][table.name]:
                records[item["imageId"]] = item
        time.sleep(0.5)
    cpu_localstack, cpu_machine = localstack_cpu_s() - cpu_localstack, machine_cpu_s() - cpu_machine
    gc_after = gc_stats()

    statuses: dict[str, int] = {}
    for image_id in uploaded:
        status = records.get(image_id, {}).get("status", "NOT_FINISHED")
        statuses[status] = statuses.get(status, 0) + 1
    done = [i for i in uploaded if records.get(i, {}).get("status") == "PROCESSED"]
    latencies = [(ts(records[i]["updatedAt"]) - uploaded[i]) * 1000 for i in done]
    last = max((ts(records[i]["updatedAt"]) for i in uploaded if i in records), default=uploads_done)
    result = {
        "uploads": args.uploads,
        "clients": args.clients,
        "image_bytes": len(data),
        "upload_phase_s": round(uploads_done - started, 2),
        "total_s": round(last - started, 2),
        "throughput_images_per_s": round(len(done) / (last - started), 2) if done else 0,
        "latency_ms": {
            "p50": round(pct(latencies, 50)),
            "p95": round(pct(latencies, 95)),
            "p99": round(pct(latencies, 99)),
            "max": round(max(latencies)),
        }
        if latencies
        else None,
        "statuses": statuses,
        "localstack_cpu_s": round(cpu_localstack, 1),
        "localstack_cpu_ms_per_image": round(cpu_localstack * 1000 / args.uploads),
        "machine_cpu_s": round(cpu_machine, 1),
        "machine_cpu_ms_per_image": round(cpu_machine * 1000 / args.uploads),
        "admission": admission_stats(),
        "gc": gc_delta(gc_before, gc_after),
        "task_errors": None if args.no_errors else task_errors(stack["ImagePipelineStateMachineArn"], since),
        "all_terminal": statuses.get("NOT_FINISHED", 0) == 0
        and "PENDING" not in statuses
        and "PROCESSING" not in statuses,
    }
    report(result, args.json)
    sys.exit(0 if result["all_terminal"] else 1)


if __name__ == "__main__":
    main()
