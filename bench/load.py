"""Load benchmark: N uploads in a burst through the HTTP API; throughput, upload-to-PROCESSED latency, outcomes.

Usage: python bench/load.py [--uploads 300] [--clients 16] [--json OUT]   (stack deployed: make deploy)

Each client does what a user does (POST /upload, PUT to the presigned URL, retrying 429/5xx). Latency is
from the end of the PUT to the record's final `updatedAt` (written by the workflow's last step), read from
DynamoDB, so polling does not add load to the API under test.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import boto3
import requests
from PIL import Image, ImageDraw
from stats import pct  # bench/ is on the path: these run as scripts

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"PROCESSED", "REJECTED", "FAILED"}


def sample_jpeg() -> bytes:
    im = Image.radial_gradient("L").resize((2400, 1600)).convert("RGB")
    ImageDraw.Draw(im).ellipse((400, 300, 1400, 1300), fill=(200, 40, 40))
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


def upload(api: str, data: bytes) -> tuple[str, float]:
    grant = retrying(lambda: requests.post(f"{api}/upload", json={"contentType": "image/jpeg", "size": len(data)}))
    grant.raise_for_status()
    body = grant.json()
    put = retrying(lambda: requests.put(body["uploadUrl"], data=data, headers=body["headers"]))
    put.raise_for_status()
    return body["imageId"], time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    stack = json.loads((ROOT / ".localcloud" / "stack-image-pipeline.json").read_text())
    table = boto3.resource("dynamodb").Table(stack["ImageTableName"])
    data = sample_jpeg()
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

    def ts(value: str) -> float:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

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
        "all_terminal": statuses.get("NOT_FINISHED", 0) == 0
        and "PENDING" not in statuses
        and "PROCESSING" not in statuses,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(0 if result["all_terminal"] else 1)


if __name__ == "__main__":
    main()
