"""make reprocess-all [STACK=name]: re-render every image made with another rendition configuration.

Starts the stack's backfill state machine (output BackfillStateMachineArn), prints its progress from the execution
history (images re-rendered so far, and any that failed) and its final status. Safe to run again: a second run finds
only what is left. The same as:
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


def progress(sfn, arn: str) -> tuple[int, int]:
    """(images re-rendered, images whose re-rendering failed) so far, from the execution's history."""
    done = failed = 0
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            # an image's pipeline run (startExecution.sync); the run's own continuation is a plain startExecution
            if event["type"] == "TaskSucceeded" and ".sync" in event["taskSucceededEventDetails"]["resource"]:
                done += 1
            elif event["type"] == "PassStateExited" and event["stateExitedEventDetails"]["name"] == "Not re-rendered":
                failed += 1
    return done, failed


def continuation(sfn, arn: str) -> str | None:
    """The execution a finished one continued in (after BackfillPagesPerExecution pages), if any."""
    output = json.loads(sfn.describe_execution(executionArn=arn).get("output") or "{}")
    return (output.get("continuation") or {}).get("continuedIn")


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
    deadline, finished, last = time.monotonic() + args.timeout, (0, 0), None
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        current = progress(sfn, arn)
        now = (finished[0] + current[0], finished[1] + current[1])
        if now != last:
            print(f"  re-rendered {now[0]} image(s), {now[1]} failed", flush=True)
            last = now
        if status == "SUCCEEDED" and (following := continuation(sfn, arn)):
            print(f"  continued in {following}", flush=True)
            finished, arn = now, following
            continue
        if status != "RUNNING":
            break
        if time.monotonic() > deadline:
            print("still running; follow it with: awslocal stepfunctions describe-execution --execution-arn " + arn)
            return 1
        time.sleep(1)
    print(f"backfill {status}: {now[0]} re-rendered, {now[1]} failed (each failure is on its image: GET /images/ID)")
    return 0 if status == "SUCCEEDED" and not now[1] else 1


if __name__ == "__main__":
    sys.exit(main())
