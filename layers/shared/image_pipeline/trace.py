"""An image's executions as timelines (GET /images/{id}/trace, imgpipe trace, the web page): each state with its
start, duration, attempts and the names of the errors of its failed attempts, and the execution's outcome.

Only error *names* are shown (``InvalidImageError``, ``States.Timeout``, …): their causes hold SDK and Step
Functions text (bucket names, ARNs), which stay in the execution history and the functions' logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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


def execution_name(arn: str) -> str:
    """An execution's name: the 8th field of its ARN, Standard (``…:execution:SM:NAME``) or Express
    (``…:express:SM:NAME:ID``); the last field of anything shorter."""
    parts = arn.split(":")
    return parts[7] if len(parts) > 7 else parts[-1]


def is_express(arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) > 5 and parts[5] == "express"


def image_trace(sfn, execution_arns: list[str], logs=None, log_group: str | None = None, since=None) -> list[dict]:
    """The timelines of an image's most recent executions, oldest first (only their histories are read).

    A Standard execution's history comes from Step Functions; an Express execution has none there (DescribeExecution
    and GetExecutionHistory refuse its ARN): its history is the state machine's log (level ALL) in ``log_group``,
    read from ``since`` (the image's upload time) on."""
    traces = []
    standard = [arn for arn in execution_arns if not is_express(arn)]
    with transient_errors():
        described = [sfn.describe_execution(executionArn=arn) for arn in standard]
    for execution in sorted(described, key=lambda d: d["startDate"])[-MAX_EXECUTIONS:]:  # only these histories
        with transient_errors():
            events: list[dict[str, Any]] = []
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"]):
                events += page["events"]
        traces.append({"name": execution["name"], **timeline(events)})  # the name, not the ARN (it names the account)
        if traces[-1]["status"] == "RUNNING" and execution["status"] != "RUNNING":
            traces[-1]["status"] = execution["status"]
    express = [arn for arn in execution_arns if is_express(arn)]
    if express and logs is not None and log_group:
        logged = express_histories(logs, log_group, set(express), since)
        traces += [{"name": execution_name(arn), **timeline(logged.get(arn, []))} for arn in express]
    traces.sort(key=lambda t: t["start"] or "")
    return traces[-MAX_EXECUTIONS:]


def express_histories(logs, log_group: str, arns: set[str], since: datetime | None) -> dict[str, list[dict]]:
    """The history events of Express executions ``arns`` from the state machine's log, shaped like
    GetExecutionHistory's events (type, timestamp, <type>EventDetails), in order.

    The filter pattern asks CloudWatch Logs for these executions' events only; they are also checked here (the local
    cloud ignores filter patterns)."""
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    if since is not None:
        kwargs["startTime"] = int((since - timedelta(minutes=1)).timestamp() * 1000)
    if len(arns) == 1:
        arn = next(iter(arns))
        kwargs["filterPattern"] = f'{{ $.execution_arn = "{arn}" }}'
    found: dict[str, list[dict]] = {}
    with transient_errors():
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for record in page["events"]:
                try:
                    event = json.loads(record["message"])
                except ValueError:
                    continue
                if event.get("execution_arn") in arns:
                    found.setdefault(event["execution_arn"], []).append(history_event(event))
    for events in found.values():
        events.sort(key=lambda e: e["id"])
    return found


def history_event(logged: dict[str, Any]) -> dict[str, Any]:
    """A logged event (``{"id", "type", "event_timestamp", "details"}``) as GetExecutionHistory shapes it."""
    kind, stamp = logged["type"], str(logged["event_timestamp"])
    if stamp.isdigit():  # AWS logs epoch milliseconds
        at = datetime.fromtimestamp(int(stamp) / 1000, UTC)
    else:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if kind.endswith("StateEntered"):
        key = "stateEnteredEventDetails"
    elif kind.endswith("StateExited"):
        key = "stateExitedEventDetails"
    else:
        key = kind[0].lower() + kind[1:] + "EventDetails"
    return {"id": int(logged.get("id", 0)), "type": kind, "timestamp": at, key: logged.get("details") or {}}


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(delta) -> int:
    return round(delta.total_seconds() * 1000)
