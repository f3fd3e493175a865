"""make reprocess-all [STACK=name]: re-render every image made with another rendition configuration.

Starts the stack's backfill state machine (output BackfillStateMachineArn), prints its Distributed Map's progress
(images re-rendered, failed, running), then where the run's manifest and results are, how many images it listed, and
its final status. Exits non-zero if the run failed or any image failed. Safe to run again: a second run lists only
what is left. The same as:
  awslocal stepfunctions start-execution --state-machine-arn <the stack's output BackfillStateMachineArn>
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]


def map_run(sfn, arn: str) -> str | None:
    """The run's Map Run (its Distributed Map), once it started."""
    runs = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    return runs[0]["mapRunArn"] if runs else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="image-pipeline")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    state_dir = Path(os.environ.get("LOCALCLOUD_STATE_DIR") or ROOT / ".localcloud")  # scripts/lib.sh's STATE_DIR
    outputs = json.loads((state_dir / f"stack-{args.stack}.json").read_text())
    sfn = boto3.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=outputs["BackfillStateMachineArn"])["executionArn"]
    print(f"backfill started: {arn}", flush=True)
    deadline, run, last = time.monotonic() + args.timeout, None, None
    counts: dict = {}
    while True:
        described = sfn.describe_execution(executionArn=arn)
        run = run or map_run(sfn, arn)
        if run:
            counts = sfn.describe_map_run(mapRunArn=run)["itemCounts"]
            now = (counts["succeeded"], counts["failed"], counts["running"])
            if now != last:
                print(f"  re-rendered {now[0]}, failed {now[1]}, running {now[2]}", flush=True)
                last = now
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            print(f"still running; follow it with: awslocal stepfunctions describe-execution --execution-arn {arn}")
            return 1
        time.sleep(1)
    status, done, failed = described["status"], counts.get("succeeded", 0), counts.get("failed", 0)
    output = json.loads(described.get("output") or "{}")
    if manifest := output.get("manifest"):
        print(f"  manifest: s3://{manifest['bucket']}/{manifest['key']} ({manifest['count']} image(s))")
    if results := output.get("results"):
        details = results["ResultWriterDetails"]
        print(f"  results: s3://{details['Bucket']}/{details['Key']} (SUCCEEDED_n.json, FAILED_n.json beside it)")
    if status != "SUCCEEDED":
        print(f"  {described.get('error', '')}: {described.get('cause', '')}")
    print(f"backfill {status}: {done} re-rendered, {failed} failed (each failure is on its image: GET /images/ID)")
    return 0 if status == "SUCCEEDED" and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
