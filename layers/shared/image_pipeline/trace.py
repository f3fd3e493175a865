"""An image's executions as timelines (GET /images/{id}/trace, imgpipe trace, the web page): each state with its
start, duration, attempts and the names of the errors of its failed attempts, and the execution's outcome.

Only error *names* are shown (``InvalidImageError``, ``States.Timeout``, …): their causes hold SDK and Step
Functions text (bucket names, ARNs), which stay in the execution history and the functions' logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from image_pipeline.aws import transient_errors

MAX_EXECUTIONS = 5  # the most recent ones; an image reprocessed many times keeps older ones in Step Functions
_FAILED_ATTEMPT = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
}
_END = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}


def timeline(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The states of one execution from its history events (in order): [{name, type, start, durationMs,
    attempts, errors}], its status, start, duration and (if it failed) the error name."""
    states: list[dict[str, Any]] = []
    open_states: dict[str, dict[str, Any]] = {}
    start = events[0]["timestamp"] if events else None
    status, error, end = "RUNNING", None, None
    for event in events:
        kind, at = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            state = {"name": name, "type": kind[: -len("StateEntered")], "start": _iso(at), "_at": at}
            state.update(durationMs=None, attempts=0, errors=[])
            states.append(state)
            open_states[name] = state
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_states:
                state = open_states.pop(name)
                state["durationMs"] = _ms(at - state["_at"])
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled") and states:
            states[-1]["attempts"] += 1
        elif kind in _FAILED_ATTEMPT and states:
            states[-1]["errors"].append(event.get(_FAILED_ATTEMPT[kind], {}).get("error") or kind)
        elif kind in _END:
            status, end = _END[kind], at
            error = (event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}).get("error")
    for state in states:
        del state["_at"]
        state["retries"] = max(0, state["attempts"] - 1)
    return {
        "status": status,
        "start": _iso(start) if start else None,
        "durationMs": _ms(end - start) if end and start else None,
        "error": error,
        "states": states,
    }


def image_trace(sfn, execution_arns: list[str]) -> list[dict[str, Any]]:
    """The timelines of an image's most recent executions, oldest first (only their histories are read)."""
    with transient_errors():
        described = [sfn.describe_execution(executionArn=arn) for arn in execution_arns]
    traces = []
    for execution in sorted(described, key=lambda d: d["startDate"])[-MAX_EXECUTIONS:]:
        with transient_errors():
            events: list[dict[str, Any]] = []
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"]):
                events += page["events"]
        traces.append({"name": execution["name"], **timeline(events)})  # the name, not the ARN (it names the account)
        if traces[-1]["status"] == "RUNNING" and execution["status"] != "RUNNING":
            traces[-1]["status"] = execution["status"]
    return traces


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(delta) -> int:
    return round(delta.total_seconds() * 1000)
