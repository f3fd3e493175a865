"""A Standard workflow waits on an Express child with ``states:startExecution.sync:2`` (what the backfill of an
Express pipeline does), as on AWS: LocalStack polled DescribeExecution, which refuses Express executions, and
failed every such task after its child had run (localcloud/patches/stepfunctions.py sync_on_express_children). A caller's
DescribeExecution of an Express execution is still refused."""

from __future__ import annotations

import json
import time
import uuid

import pytest

ROLE = "arn:aws:iam::000000000000:role/nested-express-test"


def test_a_standard_parent_waits_on_an_express_child_and_gets_its_output(aws):
    sfn = aws("stepfunctions")
    suffix = uuid.uuid4().hex[:8]
    child = sfn.create_state_machine(
        name=f"child-{suffix}",
        type="EXPRESS",
        roleArn=ROLE,
        definition=json.dumps(
            {
                "StartAt": "Double",
                "States": {
                    "Double": {
                        "Type": "Pass",
                        "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"},
                        "End": True,
                    }
                },
            }
        ),
    )["stateMachineArn"]
    parent = sfn.create_state_machine(
        name=f"parent-{suffix}",
        roleArn=ROLE,
        definition=json.dumps(
            {
                "StartAt": "Run child",
                "States": {
                    "Run child": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::states:startExecution.sync:2",
                        "Parameters": {"StateMachineArn": child, "Input": {"n": 21}},
                        "OutputPath": "$.Output",
                        "End": True,
                    }
                },
            }
        ),
    )["stateMachineArn"]
    try:
        run = sfn.start_execution(stateMachineArn=parent, input="{}")["executionArn"]
        deadline = time.monotonic() + 60
        while (described := sfn.describe_execution(executionArn=run))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert described["status"] == "SUCCEEDED", sfn.get_execution_history(executionArn=run)["events"][-3:]
        assert json.loads(described["output"]) == {"doubled": 42}

        started = sfn.start_execution(stateMachineArn=child, input='{"n": 1}')["executionArn"]
        with pytest.raises(sfn.exceptions.InvalidArn):  # as on AWS: Express executions are not described
            sfn.describe_execution(executionArn=started)
    finally:
        sfn.delete_state_machine(stateMachineArn=parent)
        sfn.delete_state_machine(stateMachineArn=child)
