"""The execution timeline of imgpipe trace, the web page and GET /images/{id}/trace, from a real Step Functions
history's shape (event types and details as the service returns them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from image_pipeline.trace import timeline

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
