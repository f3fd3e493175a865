"""A Distributed Map's Map Run fails past its failure threshold and its ResultWriter writes the children's results, as
on AWS (localcloud/patches/stepfunctions.py judge_and_report_distributed_maps): LocalStack tolerated every failed item and wrote a
manifest.json that named no result file. What the backfill counts on."""

from __future__ import annotations

import json
import time
import uuid

ROLE = "arn:aws:iam::000000000000:role/distributed-map-test"


def definition(threshold: dict, concurrency: int) -> dict:
    """Each item of items.json in the input's bucket is a child execution: it fails (ItemBroke) if told to."""
    return {
        "StartAt": "Each item",
        "States": {
            "Each item": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.bucket", "Key": "items.json"},
                },
                "ItemSelector": {"n.$": "$$.Map.Item.Value.n", "fail.$": "$$.Map.Item.Value.fail"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Told to fail?",
                    "States": {
                        "Told to fail?": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broke"}],
                            "Default": "Double",
                        },
                        "Broke": {"Type": "Fail", "Error": "ItemBroke", "Cause": "it was told to"},
                        "Double": {
                            "Type": "Pass",
                            "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"},
                            "End": True,
                        },
                    },
                },
                "MaxConcurrency": concurrency,
                **threshold,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket.$": "$.bucket", "Prefix": "runs/results"},
                },
                "End": True,
            }
        },
    }


def run(aws, bucket: str, failing: set[int], threshold: dict, concurrency: int) -> tuple[dict, dict]:
    """Run 6 items (n = 1..6, those in ``failing`` told to fail): the ended execution, and the run's result files
    by status ({"SUCCEEDED": [records], ...}, read through the ResultWriter's manifest)."""
    sfn, s3 = aws("stepfunctions"), aws("s3")
    items = [{"n": n, "fail": n in failing} for n in range(1, 7)]
    s3.put_object(Bucket=bucket, Key="items.json", Body=json.dumps(items).encode())
    machine = sfn.create_state_machine(
        name=f"distributed-{uuid.uuid4().hex[:8]}",
        roleArn=ROLE,
        definition=json.dumps(definition(threshold, concurrency)),
    )["stateMachineArn"]
    try:
        arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"bucket": bucket, "tolerated": 20}))[
            "executionArn"
        ]
        deadline = time.monotonic() + 60
        while (ended := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        manifests = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="runs/results/")["Contents"]
            if o["Key"].endswith("/manifest.json")
        ]
        assert len(manifests) == 1, manifests
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifests[0])["Body"].read())
        files = {
            status: [r for f in entries for r in json.loads(s3.get_object(Bucket=bucket, Key=f["Key"])["Body"].read())]
            for status, entries in manifest["ResultFiles"].items()
        }
        ended["mapRun"] = sfn.describe_map_run(mapRunArn=manifest["MapRunArn"])
        ended["resultsManifest"] = manifests[0]
        return ended, files
    finally:
        sfn.delete_state_machine(stateMachineArn=machine)


def test_a_failure_within_the_threshold_is_tolerated_and_written_with_the_others(aws, bucket):
    # GIVEN 6 items, one of which fails, and a run that tolerates 20% of them failing (from its input, as the backfill
    # gives it: LocalStack's parser refuses a whole number for ToleratedFailurePercentage, which AWS takes), 2 at a time
    threshold = {"ToleratedFailurePercentagePath": "$.tolerated"}
    ended, files = run(aws, bucket, failing={4}, threshold=threshold, concurrency=2)

    # THEN the run succeeds; its output names the manifest of the results, which lists a file per status
    assert ended["status"] == "SUCCEEDED", ended
    output = json.loads(ended["output"])
    assert output["ResultWriterDetails"] == {"Bucket": bucket, "Key": ended["resultsManifest"]}
    assert output["MapRunArn"] == ended["mapRun"]["mapRunArn"]
    counts = ended["mapRun"]["itemCounts"]
    assert (counts["succeeded"], counts["failed"], counts["total"]) == (5, 1, 6)
    # each child's input (after ItemSelector) and output, or its error and cause
    assert sorted(json.loads(r["Output"])["doubled"] for r in files["SUCCEEDED"]) == [2, 4, 6, 10, 12]
    assert all(r["Status"] == "SUCCEEDED" and r["StartDate"] <= r["StopDate"] for r in files["SUCCEEDED"])
    (failed,) = files["FAILED"]
    assert json.loads(failed["Input"]) == {"n": 4, "fail": True}
    assert (failed["Status"], failed["Error"], failed["Cause"]) == ("FAILED", "ItemBroke", "it was told to")
    assert files["PENDING"] == []


def test_a_run_past_its_threshold_fails_and_still_writes_its_results(aws, bucket):
    # GIVEN 6 items run one at a time, the 2nd and 3rd failing, and one failure tolerated
    ended, files = run(aws, bucket, failing={2, 3}, threshold={"ToleratedFailureCount": 1}, concurrency=1)

    # THEN the second failure fails the run, with the error a Catch can name, and no further item starts
    assert ended["status"] == "FAILED"
    assert ended["error"] == "States.ExceedToleratedFailureThreshold", ended
    assert ended["mapRun"]["status"] == "FAILED"
    # the results say what ran and what never started
    assert [json.loads(r["Input"])["n"] for r in files["SUCCEEDED"]] == [1]
    assert [json.loads(r["Input"])["n"] for r in files["FAILED"]] == [2, 3]
    assert [json.loads(r["Input"])["n"] for r in files["PENDING"]] == [4, 5, 6]


def test_without_a_threshold_one_failure_fails_the_run(aws, bucket):
    ended, files = run(aws, bucket, failing={6}, threshold={}, concurrency=1)
    assert ended["status"] == "FAILED" and ended["error"] == "States.ExceedToleratedFailureThreshold"
    assert len(files["SUCCEEDED"]) == 5 and len(files["FAILED"]) == 1
