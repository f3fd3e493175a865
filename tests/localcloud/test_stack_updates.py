"""Stack deploys the local cloud gets right (localcloud/patches/s3.py, events.py): a bucket gets its lifecycle rules, on create and
on update (LocalStack ignored them); an EventBridge rule whose target or pattern changes is updated in place, as on
AWS (LocalStack's own provider leaves it pointing at the old target). That is what switching the pipeline's
WorkflowType does: the state machine is replaced and its S3 rule must follow it."""

from __future__ import annotations

import json
import uuid

from .conftest import wait_for_stack


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


def test_an_updated_rule_sends_to_its_new_target_with_its_new_pattern(aws):
    cfn, events, sqs = aws("cloudformation"), aws("events"), aws("sqs")
    name = f"rule-update-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=template("First", "before"))
    assert wait_for_stack(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    rule = wait_for_stack(cfn, name)["Outputs"][0]["OutputValue"].split("|")[-1]
    first = events.list_targets_by_rule(Rule=rule)["Targets"][0]["Arn"]

    cfn.update_stack(StackName=name, TemplateBody=template("Second", "after"))
    stack = wait_for_stack(cfn, name)
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


def bucket_template(days: int) -> str:
    rules = [
        {
            "Id": "expire-tagged",
            "Status": "Enabled",
            "TagFilters": [{"Key": "k", "Value": "v"}],
            "ExpirationInDays": days,
        },
        {"Id": "move", "Status": "Enabled", "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]},
    ]
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"LifecycleConfiguration": {"Rules": rules}}}
    return json.dumps({"Resources": {"Bucket": bucket}, "Outputs": {"Bucket": {"Value": {"Ref": "Bucket"}}}})


def test_a_buckets_lifecycle_rules_are_put_on_create_and_on_update(aws):
    cfn, s3 = aws("cloudformation"), aws("s3")
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=bucket_template(7))
    stack = wait_for_stack(cfn, name)
    try:
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        bucket = stack["Outputs"][0]["OutputValue"]
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        assert rules["expire-tagged"]["Filter"] == {"Tag": {"Key": "k", "Value": "v"}}
        assert rules["expire-tagged"]["Expiration"] == {"Days": 7}
        assert rules["move"]["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]

        cfn.update_stack(StackName=name, TemplateBody=bucket_template(3))
        assert wait_for_stack(cfn, name)["StackStatus"] == "UPDATE_COMPLETE"
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        assert rules["expire-tagged"]["Expiration"] == {"Days": 3}
    finally:
        cfn.delete_stack(StackName=name)
