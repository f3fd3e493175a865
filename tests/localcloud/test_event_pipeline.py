"""S3 (EventBridge notifications) -> EventBridge rule -> Step Functions -> Lambda, with a Retry on a custom error; Step
Functions' status-change events on the default bus; Retries counted per execution when executions share a program."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager

import pytest
import requests

from .conftest import in_localstack_env

SFN_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["states.amazonaws.com", "events.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def sfn_role(aws):
    """A role Step Functions and EventBridge may assume (its ARN); deleted after the test."""
    iam = aws("iam")
    name = f"lc-sfn-{uuid.uuid4().hex[:8]}"
    yield iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(SFN_TRUST))["Role"]["Arn"]
    iam.delete_role(RoleName=name)


@contextmanager
def rule_to(events, pattern: dict, target_arn: str, role_arn: str):
    """A default-bus rule of ``pattern`` whose one target is ``target_arn``, while the block runs."""
    rule = f"lc-rule-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "target", "Arn": target_arn, "RoleArn": role_arn}])
    try:
        yield
    finally:
        events.remove_targets(Rule=rule, Ids=["target"])
        events.delete_rule(Name=rule)


def definition(function_arn: str) -> dict:
    return {
        "StartAt": "Process object",
        "States": {
            "Process object": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {"action": "flaky", "token.$": "$.detail.object.key", "key.$": "$.detail.object.key"},
                },
                "ResultSelector": {"result.$": "$.Payload"},
                "Retry": [
                    {
                        "ErrorEquals": ["FlakyDependencyError"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 3,
                        "BackoffRate": 2.0,
                        "JitterStrategy": "FULL",
                    }
                ],
                "End": True,
            }
        },
    }


@pytest.fixture
def wired(aws, make_function, sfn_role):
    """A bucket whose Object Created events start a state machine that calls a flaky function."""
    s3, sfn, events = aws("s3"), aws("stepfunctions"), aws("events")
    suffix = uuid.uuid4().hex[:8]
    bucket = f"lc-events-{suffix}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    fn = make_function("behaviours", timeout=10)
    fn_arn = aws("lambda").get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    sm_arn = sfn.create_state_machine(
        name=f"lc-sm-{suffix}", definition=json.dumps(definition(fn_arn)), roleArn=sfn_role
    )["stateMachineArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}}
    with rule_to(events, pattern, sm_arn, sfn_role):
        yield {"bucket": bucket, "state_machine": sm_arn}
    sfn.delete_state_machine(stateMachineArn=sm_arn)
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)


def wait_for_execution(sfn, state_machine: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=state_machine)["executions"]
        if executions and executions[0]["status"] != "RUNNING":
            return sfn.describe_execution(executionArn=executions[0]["executionArn"])
        time.sleep(0.2)
    raise AssertionError(f"no finished execution of {state_machine} within {timeout}s")


def test_object_created_runs_the_state_machine_and_retries_the_custom_error(aws, wired):
    # GIVEN the wiring WHEN an object is put in the bucket
    key = f"photos/{uuid.uuid4().hex}.jpg"
    aws("s3").put_object(Bucket=wired["bucket"], Key=key, Body=b"not really a photo")

    # THEN an execution ran to success, after one Retry of FlakyDependencyError
    sfn = aws("stepfunctions")
    execution = wait_for_execution(sfn, wired["state_machine"])
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    assert execution["status"] == "SUCCEEDED", json.dumps(history, default=str, indent=1)
    assert json.loads(execution["output"]) == {"result": {"ok": True, "key": key}}
    started_input = json.loads(execution["input"])
    assert started_input["detail"]["object"]["key"] == key

    failures = [e for e in history if e["type"] == "TaskFailed"]
    assert len(failures) == 1
    assert failures[0]["taskFailedEventDetails"]["error"] == "FlakyDependencyError"
    assert [e["type"] for e in history].count("TaskSucceeded") == 1


def test_a_rule_on_status_change_events_gets_each_execution_start_and_end(aws, sfn_role):
    """The local cloud leaves out Step Functions' status-change events when no rule on the default bus could match
    them (localcloud.patches.stepfunctions); a rule that matches them gets both, as on AWS."""
    sfn, events = aws("stepfunctions"), aws("events")
    suffix = uuid.uuid4().hex[:8]
    passing = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    watched, sink = (
        sfn.create_state_machine(name=f"lc-{name}-{suffix}", definition=json.dumps(passing), roleArn=sfn_role)[
            "stateMachineArn"
        ]
        for name in ("watched", "sink")
    )
    pattern = {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [watched]},
    }
    try:
        with rule_to(events, pattern, sink, sfn_role):
            execution = sfn.start_execution(stateMachineArn=watched, input="{}")["executionArn"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                received = sfn.list_executions(stateMachineArn=sink)["executions"]
                if len(received) >= 2 and all(e["status"] == "SUCCEEDED" for e in received):
                    break
                time.sleep(0.2)
        inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in received]
        assert sorted(i["detail"]["status"] for i in inputs) == ["RUNNING", "SUCCEEDED"]
        assert {i["detail"]["executionArn"] for i in inputs} == {execution}
        assert {i["source"] for i in inputs} == {"aws.states"}
    finally:
        for arn in (watched, sink):
            sfn.delete_state_machine(stateMachineArn=arn)


def test_concurrent_executions_of_one_definition_count_their_own_retries(aws, make_function, sfn_role):
    """Executions of one definition share its evaluation program (localcloud.patches.stepfunctions): each still counts its own
    attempts, so each of several executions started together retries exactly MaxAttempts times."""
    sfn = aws("stepfunctions")
    suffix = uuid.uuid4().hex[:8]
    fn_arn = aws("lambda").get_function(FunctionName=make_function("behaviours", timeout=10))["Configuration"][
        "FunctionArn"
    ]
    failing = {
        "StartAt": "Fail twice more",
        "States": {
            "Fail twice more": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn_arn, "Payload": {"action": "raise"}},
                "Retry": [
                    {"ErrorEquals": ["FlakyDependencyError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}
                ],
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name=f"lc-retries-{suffix}", definition=json.dumps(failing), roleArn=sfn_role)
    try:
        started = [
            sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
            for _ in range(6)
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = [sfn.describe_execution(executionArn=arn)["status"] for arn in started]
            if "RUNNING" not in statuses:
                break
            time.sleep(0.3)
        assert statuses == ["FAILED"] * 6
        for arn in started:
            history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            failures = [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"]
            assert failures == ["FlakyDependencyError"] * 3, (arn, failures)
    finally:
        sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])


def test_finished_executions_leave_no_thread_objects_behind(aws, localcloud, sfn_role):
    """LocalStack lists thread objects for every execution (and its states) and never dropped one: the list grew with
    every image processed. Now ended ones leave it (localcloud.threadlist): 150 executions, one after another, list 300
    threads or more, and fewer than 150 remain, however many executions came before."""
    sfn = aws("stepfunctions")
    waits = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 0, "Next": "Done"}, "Done": {"Type": "Pass", "End": True}},
    }
    machine = sfn.create_state_machine(
        name=f"lc-threads-{uuid.uuid4().hex[:8]}", definition=json.dumps(waits), roleArn=sfn_role
    )["stateMachineArn"]
    try:
        before = requests.get(f"{localcloud}/_localcloud/threads").json()
        for _ in range(150):  # one at a time: what a prune keeps is then what runs besides this test (the bound's 2x)
            arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
            deadline = time.monotonic() + 30
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.01)
        after = requests.get(f"{localcloud}/_localcloud/threads").json()
        assert after["pruned"] - before["pruned"] >= 150, (before, after)
        assert after["listed"] < 150, after
    finally:
        sfn.delete_state_machine(stateMachineArn=machine)


def test_jsonpaths_asked_for_at_once_are_parsed_once_each_by_one_parser():
    """jsonpath_ng made a new ply parser, LALR tables and all (~17 ms), for every path, and a burst's first executions
    all parsed the definition's paths at once. Sixteen threads ask for five paths together: one parser is made, each
    path parsed once, and every thread gets the expression that finds what jsonpath_ng's own parse finds. A path that
    does not parse raises every time, is not kept, and the parser still parses after it."""
    code = """
import threading
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse
from jsonpath_ng.ext.parser import ExtentedJsonPathParser
from localcloud.patches.stepfunctions import ParsedOnce
made = []
def counted():
    made.append(1)
    return ExtentedJsonPathParser()
texts = ["$.detail.object.key", "$.Execution.Id", "$.renditions[0].size", "$.renditions[?(@.size > 300)].key",
         "$.renditions[*].format"]
data = {"detail": {"object": {"key": "uploads/a.jpg"}}, "Execution": {"Id": "arn:x"},
        "renditions": [{"size": 200, "key": "r/200", "format": "avif"}, {"size": 400, "key": "r/400", "format": "webp"}]}
paths = ParsedOnce(counted)
barrier, got = threading.Barrier(16), []
def ask():
    barrier.wait()
    got.append([paths.parse(t) for t in texts])
threads = [threading.Thread(target=ask) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
assert len(made) == 1 and paths.parses == len(texts), (made, paths.parses)
assert all([id(e) for e in g] == [id(e) for e in got[0]] for g in got)
for text, expr in zip(texts, got[0]):
    assert [m.value for m in expr.find(data)] == [m.value for m in parse(text).find(data)], text
for _ in range(2):
    try:
        paths.parse("$.renditions[")
        raise AssertionError("a path that does not parse was accepted")
    except JsonPathParserError:
        pass
assert paths.parses == len(texts)
assert [m.value for m in paths.parse("$.detail.object").find(data)] == [{"key": "uploads/a.jpg"}]
small = ParsedOnce(ExtentedJsonPathParser, size=2)
for text in texts:
    assert [m.value for m in small.parse(text).find(data)] == [m.value for m in parse(text).find(data)]
assert len(small._parsed) == 2
"""
    in_localstack_env(code)


def test_requests_of_one_service_arriving_together_get_one_parser():
    """LocalStack keeps a request parser per service model, but a burst's first requests all missed together and each
    built one (~30 ms: a URL map of every operation). Sixteen threads ask at once: one parser is made, every thread
    gets it, and it parses a real Lambda Invoke request."""
    code = """
import threading
from localstack.aws.protocol.parser import create_parser
from localstack.aws.spec import load_service
from localstack.http import Request
from localcloud.patches.aws import parsers_made_once
made = []
def counted(service, protocol=None):
    made.append(service.service_name)
    return create_parser.__wrapped__(service, protocol)  # LocalStack's, without its cache
service = load_service("lambda")
parser_for = parsers_made_once(counted)
barrier, got = threading.Barrier(16), []
def ask():
    barrier.wait()
    got.append(parser_for(service))
threads = [threading.Thread(target=ask) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
assert made == ["lambda"], made
assert len({id(p) for p in got}) == 1
request = Request("POST", "/2015-03-31/functions/f/invocations", body=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
operation, params = got[0].parse(request)
assert operation.name == "Invoke" and params["FunctionName"] == "f" and params["InvocationType"] == "Event", params
assert parser_for(load_service("s3")) is not got[0] and made == ["lambda", "s3"]
"""
    in_localstack_env(code)
