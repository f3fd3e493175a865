"""Stack updates the local cloud gets right (localcloud/fidelity.py): an EventBridge rule whose target or pattern
changes is updated in place, as on AWS (LocalStack's own provider leaves it pointing at the old target). This is
what switching the pipeline's WorkflowType does: the state machine is replaced and its S3 rule must follow it."""

from __future__ import annotations

import json
import time
import uuid


def template(queue: str, source: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "First": {"Type": "AWS::SQS::Queue"},
                "Second": {"Type": "AWS::SQS::Queue"},
                "Rule": {
                    "Type": "AWS::Events::Rule",
                    "Properties": {
                        "EventPattern": {"source": [source]},
                        "Targets": [{"Id": "queue", "Arn": {"Fn::GetAtt": [queue, "Arn"]}}],
                    },
                },
            },
            "Outputs": {"Rule": {"Value": {"Ref": "Rule"}}},
        }
    )


def wait(cfn, name: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        assert time.monotonic() < deadline, stack["StackStatus"]
        time.sleep(0.5)


def test_an_updated_rule_sends_to_its_new_target_with_its_new_pattern(aws):
    cfn, events, sqs = aws("cloudformation"), aws("events"), aws("sqs")
    name = f"rule-update-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=template("First", "before"))
    assert wait(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    rule = wait(cfn, name)["Outputs"][0]["OutputValue"].split("|")[-1]
    first = events.list_targets_by_rule(Rule=rule)["Targets"][0]["Arn"]

    cfn.update_stack(StackName=name, TemplateBody=template("Second", "after"))
    stack = wait(cfn, name)
    try:
        assert stack["StackStatus"] == "UPDATE_COMPLETE", stack
        assert stack["Outputs"][0]["OutputValue"].split("|")[-1] == rule  # the same rule, updated in place
        [target] = events.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] != first
        assert json.loads(events.describe_rule(Name=rule)["EventPattern"]) == {"source": ["after"]}
        queues = {q.rsplit("/", 1)[-1]: q for q in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]}
        second = next(url for url in queues.values() if target["Arn"].endswith(url.rsplit("/", 1)[-1]))
        events.put_events(Entries=[{"Source": "after", "DetailType": "t", "Detail": "{}"}])
        got = sqs.receive_message(QueueUrl=second, WaitTimeSeconds=5).get("Messages", [])
        assert len(got) == 1 and json.loads(got[0]["Body"])["source"] == "after"
    finally:
        cfn.delete_stack(StackName=name)
