"""The execution timeline of imgpipe trace, the web page and GET /images/{id}/trace, from a real Step Functions
history's shape (event types and details as the service returns them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from image_pipeline.trace import image_trace, timeline

T0 = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def entered(ms, name, kind="Task"):
    return {"type": f"{kind}StateEntered", "timestamp": at(ms), "stateEnteredEventDetails": {"name": name}}


def exited(ms, name, kind="Task"):
    return {"type": f"{kind}StateExited", "timestamp": at(ms), "stateExitedEventDetails": {"name": name}}


def test_each_state_with_its_duration_attempts_and_the_errors_of_its_retries():
    events = [
        {"type": "ExecutionStarted", "timestamp": at(0)},
        entered(1, "Validate image"),
        {"type": "TaskScheduled", "timestamp": at(2)},
        {"type": "TaskFailed", "timestamp": at(30), "taskFailedEventDetails": {"error": "TransientAWSError"}},
        {"type": "TaskScheduled", "timestamp": at(230)},
        {"type": "TaskTimedOut", "timestamp": at(400), "taskTimedOutEventDetails": {"error": "States.Timeout"}},
        {"type": "TaskScheduled", "timestamp": at(600)},
        {"type": "TaskSucceeded", "timestamp": at(650)},
        exited(651, "Validate image"),
        entered(652, "Is it a duplicate?", "Choice"),
        exited(652, "Is it a duplicate?", "Choice"),
        entered(653, "Resize image"),
        {"type": "TaskScheduled", "timestamp": at(654)},
        {"type": "TaskFailed", "timestamp": at(900), "taskFailedEventDetails": {"error": "InvalidImageError"}},
        exited(901, "Resize image"),
        entered(902, "Pipeline failed", "Fail"),
        {
            "type": "ExecutionFailed",
            "timestamp": at(910),
            "executionFailedEventDetails": {"error": "InvalidImageError"},
        },
    ]
    got = timeline(events)
    assert got["status"] == "FAILED" and got["error"] == "InvalidImageError" and got["durationMs"] == 910
    assert got["start"] == "2026-12-02T12:00:00.000Z"
    assert [(s["name"], s["type"], s["durationMs"], s["attempts"], s["retries"]) for s in got["states"]] == [
        ("Validate image", "Task", 650, 3, 2),
        ("Is it a duplicate?", "Choice", 0, 0, 0),
        ("Resize image", "Task", 248, 1, 0),
        ("Pipeline failed", "Fail", None, 0, 0),
    ]
    assert got["states"][0]["errors"] == ["TransientAWSError", "States.Timeout"]
    assert got["states"][2]["errors"] == ["InvalidImageError"]


def test_a_running_execution_has_no_end_yet():
    got = timeline([{"type": "ExecutionStarted", "timestamp": at(0)}, entered(5, "Resize image")])
    assert got["status"] == "RUNNING" and got["durationMs"] is None and got["states"][0]["durationMs"] is None


class Logs:
    """CloudWatch Logs' filter_log_events over a state machine's log events (one page), as the local cloud does:
    the filter pattern is not applied."""

    def __init__(self, events: list[dict]) -> None:
        self.events, self.calls = events, []

    def get_paginator(self, name):
        assert name == "filter_log_events"
        return self

    def paginate(self, **kwargs):
        self.calls.append(kwargs)
        return [{"events": [{"message": json.dumps(e)} for e in self.events]}]


def logged(i, arn, kind, ms, **details):
    return {
        "id": str(i),
        "type": kind,
        "execution_arn": arn,
        "event_timestamp": str(int(at(ms).timestamp() * 1000)),
        "details": details,
    }


def test_an_express_execution_is_traced_from_the_state_machines_log():
    arn = "arn:aws:states:us-east-1:123456789012:express:pipeline:run-1:5f0c"
    other = "arn:aws:states:us-east-1:123456789012:express:pipeline:run-2:9a1e"
    logs = Logs(
        [
            logged(1, arn, "ExecutionStarted", 0),
            logged(1, other, "ExecutionStarted", 1),
            logged(3, arn, "TaskStateExited", 40, name="Validate image"),
            logged(2, arn, "TaskStateEntered", 2, name="Validate image"),
            logged(4, arn, "ExecutionSucceeded", 41),
            {"not": "an execution event"},
        ]
    )
    [traced] = image_trace(None, [arn], logs=logs, log_group="/aws/vendedlogs/states/x", since=at(0))
    assert traced["name"] == "run-1" and traced["status"] == "SUCCEEDED" and traced["durationMs"] == 41
    assert [(s["name"], s["durationMs"]) for s in traced["states"]] == [("Validate image", 38)]
    assert arn in logs.calls[0]["filterPattern"] and logs.calls[0]["startTime"] < at(0).timestamp() * 1000
