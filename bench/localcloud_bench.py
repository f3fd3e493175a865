"""Local cloud benchmarks (measurements, not tests): Lambda warm/cold invoke, S3 -> execution start latency,
Step Functions Lambda-task overhead. Run with the local cloud up: `make bench-localcloud`.

Usage: python bench/localcloud_bench.py [--runtime python3.13] [--warm N] [--cold N] [--puts N] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
import uuid
import zipfile
from pathlib import Path

import boto3
from stats import pct  # bench/ is on the path: these run as scripts

HERE = Path(__file__).resolve().parent
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"]},
        }
    ],
}


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50), 2),
        "p95_ms": round(pct(values, 95), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


class Bench:
    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        self.suffix = uuid.uuid4().hex[:8]
        self.lam, self.iam, self.s3 = boto3.client("lambda"), boto3.client("iam"), boto3.client("s3")
        self.sfn, self.events = boto3.client("stepfunctions"), boto3.client("events")
        self.role = self.iam.create_role(RoleName=f"bench-{self.suffix}", AssumeRolePolicyDocument=json.dumps(TRUST))[
            "Role"
        ]["Arn"]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.write(HERE / "functions" / "noop.py", "noop.py")
        self.code = buf.getvalue()
        self.functions: list[str] = []
        self.cleanup: list = []

    def function(self) -> str:
        name = f"bench-noop-{self.suffix}-{len(self.functions)}"
        self.lam.create_function(
            FunctionName=name,
            Runtime=self.runtime,
            Role=self.role,
            Handler="noop.handler",
            Code={"ZipFile": self.code},
            MemorySize=128,
            Timeout=10,
        )
        self.lam.get_waiter("function_active_v2").wait(FunctionName=name)
        self.functions.append(name)
        return name

    def timed_invoke(self, name: str) -> tuple[float, dict]:
        started = time.perf_counter()
        resp = self.lam.invoke(FunctionName=name, Payload=b"{}")
        resp["Payload"].read()
        return (time.perf_counter() - started) * 1000, resp

    def warm(self, n: int) -> dict:
        name = self.function()
        for _ in range(20):
            self.timed_invoke(name)
        return summary([self.timed_invoke(name)[0] for _ in range(n)])

    def cold(self, n: int) -> dict:
        times = []
        for _ in range(n):
            name = self.function()
            elapsed, resp = self.timed_invoke(name)
            assert "FunctionError" not in resp
            times.append(elapsed)
        return summary(times)

    def state_machine(self, definition: dict) -> str:
        arn = self.sfn.create_state_machine(
            name=f"bench-{self.suffix}-{len(self.cleanup)}", roleArn=self.role, definition=json.dumps(definition)
        )["stateMachineArn"]
        self.cleanup.append(lambda: self.sfn.delete_state_machine(stateMachineArn=arn))
        return arn

    def put_to_start(self, n: int) -> dict:
        bucket = f"bench-{self.suffix}"
        self.s3.create_bucket(Bucket=bucket)
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        arn = self.state_machine({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
        rule = f"bench-{self.suffix}"
        self.events.put_rule(
            Name=rule, EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}}})
        )
        self.events.put_targets(Rule=rule, Targets=[{"Id": "sm", "Arn": arn, "RoleArn": self.role}])
        latencies = []
        for i in range(n):
            before = {e["executionArn"] for e in self.sfn.list_executions(stateMachineArn=arn)["executions"]}
            put_at = time.time()
            self.s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                new = [
                    e
                    for e in self.sfn.list_executions(stateMachineArn=arn)["executions"]
                    if e["executionArn"] not in before
                ]
                if new:
                    latencies.append((new[0]["startDate"].timestamp() - put_at) * 1000)
                    break
                time.sleep(0.002)
        self.events.remove_targets(Rule=rule, Ids=["sm"])
        self.events.delete_rule(Name=rule)
        for i in range(n):
            self.s3.delete_object(Bucket=bucket, Key=f"k{i}")
        self.s3.delete_bucket(Bucket=bucket)
        return summary(latencies)

    def task_overhead(self, tasks: int, runs: int, warm_p50: float) -> dict:
        name = self.function()
        fn_arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        states = {}
        for i in range(tasks):
            states[f"T{i}"] = {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "OutputPath": "$.Payload",
                "Parameters": {"FunctionName": fn_arn, "Payload.$": "$"},
            }
            states[f"T{i}"].update({"End": True} if i == tasks - 1 else {"Next": f"T{i + 1}"})
        lambda_sm = self.state_machine({"StartAt": "T0", "States": states})
        pass_sm = self.state_machine(
            {
                "StartAt": "P0",
                "States": {
                    f"P{i}": (
                        {"Type": "Pass", "End": True} if i == tasks - 1 else {"Type": "Pass", "Next": f"P{i + 1}"}
                    )
                    for i in range(tasks)
                },
            }
        )

        def state_times(arn: str) -> list[float]:
            out = []
            for _ in range(runs):
                ex = self.sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
                while self.sfn.describe_execution(executionArn=ex)["status"] == "RUNNING":
                    time.sleep(0.01)
                history = self.sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]
                entered = {}
                for event in history:
                    if event["type"].endswith("StateEntered"):
                        entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
                    elif event["type"].endswith("StateExited"):
                        state = event["stateExitedEventDetails"]["name"]
                        out.append((event["timestamp"] - entered[state]).total_seconds() * 1000)
            return out

        lambda_task = summary(state_times(lambda_sm))
        pass_state = summary(state_times(pass_sm))
        return {
            "lambda_task": lambda_task,
            "pass_state": pass_state,
            "overhead_p50_ms": round(lambda_task["p50_ms"] - warm_p50, 2),
        }

    def close(self) -> None:
        for fn in self.cleanup:
            fn()
        for name in self.functions:
            self.lam.delete_function(FunctionName=name)
        self.iam.delete_role(RoleName=f"bench-{self.suffix}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.13")
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--puts", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()

    bench = Bench(args.runtime)
    try:
        results = {"runtime": args.runtime, "warm_invoke": bench.warm(args.warm), "cold_start": bench.cold(args.cold)}
        results["s3_put_to_execution_start"] = bench.put_to_start(args.puts)
        results["sfn_lambda_task"] = bench.task_overhead(args.tasks, args.runs, results["warm_invoke"]["p50_ms"])
    finally:
        bench.close()
    targets = [
        ("warm invoke (Lambda API, no-op)", results["warm_invoke"], 10),
        ("cold start (first invoke of a new function)", results["cold_start"], 400),
        ("S3 PUT -> execution start", results["s3_put_to_execution_start"], 50),
        ("Step Functions Lambda task (entered -> exited)", results["sfn_lambda_task"]["lambda_task"], None),
        ("Step Functions Pass state (engine floor)", results["sfn_lambda_task"]["pass_state"], None),
    ]
    print(f"| measure ({args.runtime}) | n | p50 ms | p95 ms | target p50 |")
    print("|---|---|---|---|---|")
    for label, s, target in targets:
        print(f"| {label} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {'<= ' + str(target) if target else ''} |")
    print(
        f"| per-task overhead (task p50 - warm invoke p50) | | {results['sfn_lambda_task']['overhead_p50_ms']} | | <= 25 |"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
