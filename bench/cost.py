"""Measured cost model: what one image really costs on AWS, counted on the local cloud and priced by a price table.

Usage: python bench/cost.py [--uploads 10] [--configs one,default] [--prices bench/prices/us-east-1.json] [--json OUT]
(deploys each configuration to the local cloud in turn; make cost)

Each image goes the way a user sends it: POST /upload, PUT to the presigned URL, the workflow, then one download
(GET /download and a GET of the rendition). Counted, per image, over the run:
- AWS requests by service and operation: the local cloud's request meter (localcloud/plugins/request_meter.py), which sees the
  functions' calls and LocalStack's own (Step Functions invoking Lambda, putting events, S3 notifying EventBridge).
  This script's own reads (waiting, histories, logs) carry a User-Agent the meter ignores. The reconciler's schedule
  is paused during the run: it is a fixed cost per month (reported apart), not a cost per image;
- Lambda invocations and GB-seconds: the REPORT lines in CloudWatch Logs (billed duration x configured memory);
  `make cost` runs the local cloud with Lambda's CPU share by memory (LOCALCLOUD_CPU_BY_MEMORY=1: a 1024 MB function
  gets 0.58 of a CPU), so durations are what each size buys, one CPU of this machine standing for one Lambda vCPU;
- Step Functions: state transitions (Standard) from the execution histories; an Express execution's billed duration
  (100 ms increments, 64 MB) from the same histories' start and end;
- DynamoDB write units: as the meter sized each write from its item before and after it, in the table and in each
  global secondary index (localcloud/capacity.py); read units: the reads times the final record's units (4 KB per
  strongly consistent read unit);
- CloudWatch Logs bytes ingested (message + 26 bytes per event) of the run's log events;
- X-Ray: traces recorded per image = the sampled fraction (the default rule samples 5% beyond 1 request/s).
Storage and data transfer out are reported apart (per GB-month, per GB), not in the per-image figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3
import requests
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import SIGNED_IN, STATE_DIR, sample_jpeg, sign_in  # noqa: E402  (bench/ is on the path: these run as scripts)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "shared"))
from image_pipeline import trace  # noqa: E402  (an Express execution's history, read from its log)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "localcloud" / "src"))
from localcloud.item_size import item_size  # noqa: E402  (DynamoDB's item size rules, as the meter counts them)

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
IGNORE = "localcloud-meter-ignore"  # localcloud/plugins/request_meter.py does not count requests with this in their User-Agent
QUIET = Config(user_agent_extra=IGNORE)
UNCOUNTED = {"User-Agent": f"python-requests {IGNORE}"}
TERMINAL = {"PROCESSED", "REJECTED", "FAILED"}

# S3 request classes as AWS prices them: PUT, COPY, POST and LIST requests (tier 1); GET, HEAD and all others
# (tier 2); DELETE is free.
S3_TIER1_PREFIXES = ("Put", "Copy", "List", "Post", "CreateMultipart", "UploadPart", "CompleteMultipart")
S3_FREE = ("DeleteObject", "DeleteObjects", "AbortMultipartUpload")
DYNAMODB_READS = {"GetItem", "Query", "Scan"}


def aws(service: str):
    return boto3.client(service, config=QUIET)


def stack_outputs(stack: str) -> dict:
    return json.loads((STATE_DIR / f"stack-{stack}.json").read_text())


def meter(method: str = "GET") -> dict:
    resp = requests.request(method, f"{ENDPOINT}/_localcloud/meter", timeout=10)
    resp.raise_for_status()
    return resp.json() if method == "GET" else {}


def reconciler_rules(stack: str) -> list[str]:
    """The stack's scheduled rules (the reconciler's): paused during the run."""
    events = aws("events")
    return [
        r["Name"]
        for r in events.list_rules()["Rules"]
        if r.get("ScheduleExpression") and r["Name"].startswith(stack) and r.get("State") == "ENABLED"
    ]


def one_image(api: str, data: bytes, dynamodb, table_name: str) -> dict:
    """Upload, wait for the record to be terminal (read from DynamoDB, not counted), download once."""
    body = {"contentType": "image/jpeg", "size": len(data)}
    grant = requests.post(f"{api}/upload", json=body, headers=SIGNED_IN, timeout=30)
    grant.raise_for_status()
    body = grant.json()
    requests.put(body["uploadUrl"], data=data, headers=body["headers"], timeout=60).raise_for_status()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=table_name, Key={"imageId": {"S": body["imageId"]}}, ConsistentRead=True)
        item = item.get("Item", {})
        if item.get("status", {}).get("S") in TERMINAL:
            break
        time.sleep(0.05)
    status = item.get("status", {}).get("S")
    if status != "PROCESSED":
        raise SystemExit(f"{body['imageId']} ended {status}")
    link = requests.get(f"{api}/download", params={"imageId": body["imageId"]}, headers=SIGNED_IN, timeout=30)
    link.raise_for_status()
    got = requests.get(link.json()["downloadUrl"], timeout=60)
    got.raise_for_status()
    return {"imageId": body["imageId"], "item": item, "rendition_bytes": len(got.content)}


def dynamodb_units(requests_by_op: dict[str, int], items: list[dict], images: int) -> dict:
    """Write and read units per image. The meter sizes every single-item write from its item before and after it,
    in the table and in each global secondary index (localcloud/capacity.py: a sparse index is written only while
    the item is in it, a key change is a delete and a put, an update of attributes the index does not project does
    not write it). A write it could not size (none in this pipeline) counts the units of the image's final record."""
    final = max(item_size(i) for i in items)
    table_units = index_units = writes = 0.0
    for op in ("PutItem", "UpdateItem", "DeleteItem"):
        n = requests_by_op.get(op, 0)
        sized, units = requests_by_op.get(f"sized:{op}", 0), requests_by_op.get(f"write_units:{op}", 0)
        writes += n
        table_units += units + (n - sized) * math.ceil(final / 1024)
    by_index = {name.split(":", 1)[1]: n for name, n in requests_by_op.items() if name.startswith("index_write_units:")}
    index_units = sum(by_index.values())
    reads = sum(requests_by_op.get(op, 0) for op in DYNAMODB_READS)
    return {
        "record_bytes": final,
        "writes": round(writes / images, 3),
        "reads": round(reads / images, 3),
        "write_units_table": round(table_units / images, 3),
        "write_units_indexes": round(index_units / images, 3),
        "write_units": round((table_units + index_units) / images, 3),
        "write_units_by_index": {name: round(n / images, 3) for name, n in by_index.items()},
        "read_units": round(reads * math.ceil(final / 4096) / images, 3),
    }


def report(message: str) -> dict[str, float] | None:
    """Billed duration (ms), memory size and peak memory (MB) from a Lambda REPORT log line; None for other lines."""
    if not message.startswith("REPORT RequestId:"):
        return None
    fields = dict(part.split(": ", 1) for part in message.split("\t") if ": " in part and "RequestId" not in part)
    return {
        "billed_ms": float(fields["Billed Duration"].split()[0]),
        "memory_mb": float(fields["Memory Size"].split()[0]),
        "peak_mb": float(fields.get("Max Memory Used", "0 MB").split()[0]),
    }


def lambda_usage(log_groups: dict[str, str], since_ms: int, until_ms: int) -> dict:
    """Invocations, billed GB-seconds and log bytes per function from its log group in [since, until]."""
    logs = aws("logs")
    usage = {}
    for function, group in log_groups.items():
        invocations, gb_s, log_bytes, peak_mb = 0, 0.0, 0, 0
        kwargs = {"logGroupName": group, "startTime": since_ms, "endTime": until_ms}
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                for event in page["events"]:
                    message = event["message"]
                    log_bytes += len(message.encode()) + 26
                    if (reported := report(message)) is not None:
                        invocations += 1
                        gb_s += reported["billed_ms"] / 1000 * reported["memory_mb"] / 1024
                        peak_mb = max(peak_mb, int(reported["peak_mb"]))
        except logs.exceptions.ResourceNotFoundException:
            pass
        usage[function] = {"invocations": invocations, "gb_seconds": gb_s, "log_bytes": log_bytes, "peak_mb": peak_mb}
    return usage


def workflow_usage(state_machine_arn: str, log_group: str, since: datetime, until: datetime, prices: dict) -> dict:
    """State transitions and Express-billed duration of the run's executions, and the bytes the state machine
    logged: from the execution histories (Standard) or from its log, where an Express execution's history is."""
    sfn = aws("stepfunctions")
    express = sfn.describe_state_machine(stateMachineArn=state_machine_arn)["type"] == "EXPRESS"
    histories: list[list[dict]] = []
    log_bytes = 0
    logs = aws("logs")
    window = {"startTime": int(since.timestamp() * 1000), "endTime": int(until.timestamp() * 1000)}
    by_execution: dict[str, list[dict]] = {}
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group, **window):
        for record in page["events"]:
            log_bytes += len(record["message"].encode()) + prices["cloudwatch_logs"]["event_overhead_bytes"]
            if express:
                event = json.loads(record["message"])
                by_execution.setdefault(event["execution_arn"], []).append(trace.history_event(event))
    if express:
        histories = [sorted(events, key=lambda e: e["id"]) for events in by_execution.values()]
    else:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
            for e in page["executions"]:
                if e["startDate"] >= since:
                    events = []
                    for hpage in sfn.get_paginator("get_execution_history").paginate(executionArn=e["executionArn"]):
                        events += hpage["events"]
                    histories.append(events)
    transitions, billed_ms, duration_ms = 0, 0, 0.0
    step = prices["stepfunctions"]["express_billing_increment_ms"]
    for events in histories:
        transitions += sum(1 for ev in events if ev["type"].endswith("StateEntered"))
        ms = (events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds() * 1000
        duration_ms += ms
        billed_ms += max(step, math.ceil(ms / step) * step)
    return {
        "type": "EXPRESS" if express else "STANDARD",
        "executions": len(histories),
        "transitions": transitions,
        "duration_ms": duration_ms,
        "billed_ms": billed_ms,
        "log_bytes": log_bytes,
    }


def s3_requests(by_op: dict[str, int]) -> dict[str, int]:
    tiers = Counter()
    for op, n in by_op.items():
        if op in S3_FREE:
            tiers["free"] += n
        elif op.startswith(S3_TIER1_PREFIXES):
            tiers["tier1"] += n
        else:
            tiers["tier2"] += n
    return dict(tiers)


def functions_of(stack: str) -> dict[str, dict]:
    """Each Lambda function of the stack: its log group, memory and architecture."""
    cfn, lam = aws("cloudformation"), aws("lambda")
    found = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            if r["ResourceType"] == "AWS::Lambda::Function":
                conf = lam.get_function_configuration(FunctionName=r["PhysicalResourceId"])
                found[r["LogicalResourceId"]] = {
                    "name": conf["FunctionName"],
                    "memory_mb": conf["MemorySize"],
                    "architecture": (conf.get("Architectures") or ["x86_64"])[0],
                    "log_group": f"/aws/lambda/{conf['FunctionName']}",
                }
    return found


def price(per_image: dict, prices: dict, xray_sampled: float) -> dict:
    """USD per million images, by item, for Standard and for Express."""
    p = prices
    lam = per_image["lambda"]
    lambda_requests = sum(f["invocations"] for f in lam.values()) * p["lambda"]["request"]
    lambda_compute = sum(f["gb_seconds"] * p["lambda"]["gb_second"][f["architecture"]] for f in lam.values())
    common = {
        "api_gateway": per_image["api_requests"] * p["apigateway"]["rest_request"],
        "lambda_requests": lambda_requests,
        "lambda_compute": lambda_compute,
        "s3_requests": per_image["s3"].get("tier1", 0) * p["s3"]["tier1_request"]
        + per_image["s3"].get("tier2", 0) * p["s3"]["tier2_request"],
        "dynamodb": per_image["dynamodb"]["write_units"] * p["dynamodb"]["write_request_unit"]
        + per_image["dynamodb"]["read_units"] * p["dynamodb"]["read_request_unit"],
        "eventbridge": per_image["eventbridge_custom_events"] * p["eventbridge"]["custom_event"],
        "cloudwatch_logs": per_image["log_bytes"] / 1e9 * p["cloudwatch_logs"]["ingested_gb"],
        "xray": xray_sampled * p["xray"]["trace_recorded"],
    }
    sf = p["stepfunctions"]
    wf = per_image["workflow"]
    standard = {**common, "step_functions": wf["transitions"] * sf["standard_state_transition"]}
    express_gb_s = wf["express_billed_ms"] / 1000 * sf["express_memory_chunk_mb"] / 1024
    express = {**common, "step_functions": sf["express_request"] + express_gb_s * sf["express_gb_second"]}
    million = lambda items: {k: round(v * 1e6, 2) for k, v in sorted(items.items(), key=lambda kv: -kv[1])}  # noqa: E731
    return {"standard": million(standard), "express": million(express)}


def measure(args: argparse.Namespace, prices: dict) -> dict:
    """Run the uploads on the deployed stack and price what they made."""
    outputs = stack_outputs(args.stack)
    api = outputs["LocalApiUrl"]
    sign_in(outputs)  # before the meter's window opens: a sign-in is per session, not per image
    table_name = outputs["ImageTableName"]
    functions = functions_of(args.stack)
    width = int((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    data = sample_jpeg((width, width * 3 // 4))
    dynamodb = aws("dynamodb")
    events = aws("events")

    one_image(
        api, data, dynamodb, table_name
    )  # warm every function first: cold starts are not what a million images pay
    paused = reconciler_rules(args.stack)
    for rule in paused:
        events.disable_rule(Name=rule)
    try:
        time.sleep(1.5)  # log events of the warm-up land before the window opens
        since = datetime.now(UTC)
        meter("DELETE")
        results = [one_image(api, data, dynamodb, table_name) for _ in range(args.uploads)]
        counted = meter()
        time.sleep(3)  # the last REPORT lines reach CloudWatch Logs
        until = datetime.now(UTC)
    finally:
        for rule in paused:
            events.enable_rule(Name=rule)

    n = args.uploads
    by_service = counted["requests"]
    usage = lambda_usage(
        {logical: f["log_group"] for logical, f in functions.items()},
        int(since.timestamp() * 1000),
        int(until.timestamp() * 1000),
    )
    workflow = workflow_usage(
        outputs["ImagePipelineStateMachineArn"], outputs["ImagePipelineStateMachineLogGroupName"], since, until, prices
    )
    s3 = s3_requests(by_service.get("s3", {}))
    per_image = {
        "api_requests": 2,  # POST /upload and GET /download (this script's waiting reads DynamoDB, uncounted)
        "lambda": {
            logical: {
                "invocations": round(usage[logical]["invocations"] / n, 3),
                "gb_seconds": round(usage[logical]["gb_seconds"] / n, 5),
                "memory_mb": f["memory_mb"],
                "max_memory_used_mb": usage[logical]["peak_mb"],
                "architecture": f["architecture"],
            }
            for logical, f in functions.items()
            if usage[logical]["invocations"]
        },
        "s3": {k: round(v / n, 3) for k, v in s3.items()},
        "s3_by_operation": {k: round(v / n, 3) for k, v in by_service.get("s3", {}).items()},
        "dynamodb": dynamodb_units(by_service.get("dynamodb", {}), [r["item"] for r in results], n),
        "dynamodb_by_operation": {
            k: round(v / n, 3) for k, v in by_service.get("dynamodb", {}).items() if ":" not in k
        },
        "eventbridge_custom_events": by_service.get("events", {}).get("entries:custom", 0) / n,
        "eventbridge_aws_events": by_service.get("events", {}).get("entries:aws", 0) / n,
        "workflow": {
            "type": workflow["type"],
            "executions": workflow["executions"] / n,
            "transitions": workflow["transitions"] / n,
            "express_billed_ms": workflow["billed_ms"] / n,
            "duration_ms": round(workflow["duration_ms"] / n),
        },
        "log_bytes": round((sum(u["log_bytes"] for u in usage.values()) + workflow["log_bytes"]) / n),
        "state_machine_log_bytes": round(workflow["log_bytes"] / n),
        "xray_traces": args.xray_sampled,
        "original_bytes": len(data),
        "stored_bytes": None,
    }
    processed = aws("s3")
    stored = 0
    for r in results[:3]:
        listed = processed.list_objects_v2(Bucket=outputs["ProcessedBucketName"], Prefix=f"renditions/{r['imageId']}")
        stored += sum(o["Size"] for o in listed.get("Contents", []))
    per_image["stored_bytes"] = round(stored / min(3, len(results)))
    per_image["other_requests"] = {
        svc: ops for svc, ops in by_service.items() if svc not in ("s3", "dynamodb", "events")
    }
    breakdown = price(per_image, prices, args.xray_sampled)
    gb = 1024**3
    result = {
        "uploads": n,
        "image": f"{width}x{width * 3 // 4} JPEG, {len(data)} bytes",
        "rendition_set": next(iter(results))["item"].get("renditionSet", {}).get("S"),
        "prices": {"region": prices["region"], "as_of": prices["prices_as_of"]},
        "standard_usd_per_million": round(sum(breakdown["standard"].values()), 2),
        "express_usd_per_million": round(sum(breakdown["express"].values()), 2),
        "breakdown_usd_per_million": breakdown,
        "per_image": per_image,
        "excluded_usd_per_million_per_month": {
            "s3_storage_originals": round(len(data) / gb * prices["s3"]["standard_gb_month"] * 1e6, 2),
            "s3_storage_renditions": round(per_image["stored_bytes"] / gb * prices["s3"]["standard_gb_month"] * 1e6, 2),
        },
        "excluded_usd_per_million_downloads": {
            "s3_egress": round(results[0]["rendition_bytes"] / gb * prices["s3"]["egress_gb"] * 1e6, 2),
            "cloudfront_egress": round(
                results[0]["rendition_bytes"] / gb * prices["cloudfront"]["egress_gb"] * 1e6
                + prices["cloudfront"]["https_request"] * 1e6,
                2,
            ),
        },
    }
    return result


# Every parameter that differs is named: sam deploy keeps a parameter's previous value when it is not given.
ONE = ["RenditionSizes=800", "RenditionFormats=jpeg"]  # the seed's single 800-px rendition (the cost target's)
DEFAULT_SET = ["RenditionSizes=200,400,800,1600", "RenditionFormats=avif,webp,jpeg"]
CONFIGURATIONS = {
    "one": [*ONE, "WorkflowType=STANDARD", "ExpressLogLevel=ALL"],
    "one-express": [*ONE, "WorkflowType=EXPRESS", "ExpressLogLevel=ALL"],
    "one-express-errors-logged": [*ONE, "WorkflowType=EXPRESS", "ExpressLogLevel=ERROR"],
    "default-express": [*DEFAULT_SET, "WorkflowType=EXPRESS", "ExpressLogLevel=ALL"],
    "default": [*DEFAULT_SET, "WorkflowType=STANDARD", "ExpressLogLevel=ALL"],  # last: the template's defaults stay
}


def deploy(stack: str, overrides: list[str]) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy_local.sh"), stack, *overrides],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def reprice(result: dict, prices: dict, xray_sampled: float) -> None:
    breakdown = price(result["per_image"], prices, xray_sampled)
    result["breakdown_usd_per_million"] = breakdown
    result["standard_usd_per_million"] = round(sum(breakdown["standard"].values()), 2)
    result["express_usd_per_million"] = round(sum(breakdown["express"].values()), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--stack", default="image-pipeline")
    parser.add_argument("--prices", type=Path, default=ROOT / "bench" / "prices" / "us-east-1.json")
    parser.add_argument("--xray-sampled", type=float, default=0.05, help="fraction of images whose trace is recorded")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGURATIONS),
        help="deploy and measure these configurations (one: an 800-px JPEG; default: the responsive set); "
        "'deployed' measures the stack as it is",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    prices = json.loads(args.prices.read_text())
    measured = {}
    for name in args.configs.split(","):
        if name != "deployed":
            deploy(args.stack, CONFIGURATIONS[name])
        measured[name] = measure(args, prices)
        workflow = measured[name]["per_image"]["workflow"]
        if workflow["executions"] == 0 and "one-express" in measured:
            # an Express workflow logging ERROR leaves no history of a successful execution: its transitions and
            # duration are those of the same workflow measured with ExpressLogLevel=ALL (its log bytes are its own)
            measured[name]["per_image"]["workflow"] = {
                **measured["one-express"]["per_image"]["workflow"],
                "measured_in": "one-express",
            }
            reprice(measured[name], prices, args.xray_sampled)
        print(
            f"{name}: standard ${measured[name]['standard_usd_per_million']} / express "
            f"${measured[name]['express_usd_per_million']} per million images",
            file=sys.stderr,
        )
    # the headline figures: each workflow type priced from a run of that type, for the one-size configuration with
    # the template's defaults (Express logs every execution's history: ExpressLogLevel=ALL)
    standard = measured.get("one") or next(iter(measured.values()))
    express = measured.get("one-express") or standard
    result = {
        "standard_usd_per_million": standard["standard_usd_per_million"],
        "express_usd_per_million": express["express_usd_per_million"],
        "express_errors_logged_usd_per_million": (measured.get("one-express-errors-logged") or express)[
            "express_usd_per_million"
        ],
        "rendition_set": standard["rendition_set"],
        "prices": standard["prices"],
        "configurations": measured,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
