"""Test function whose behaviour the event chooses: echo, sleep, allocate, raise, crash, print."""

import hashlib
import os
import time


class FlakyDependencyError(Exception):
    """A custom error Step Functions can Retry on by its class name."""


_calls = {"n": 0}


def handler(event, context):
    action = event.get("action", "echo")
    _calls["n"] += 1
    if action == "echo":
        return {"event": event, "pid": os.getpid(), "calls": _calls["n"]}
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return {"slept": event["seconds"]}
    if action == "allocate":
        blob = bytearray(int(event["mb"]) * 1024 * 1024)
        blob[-1] = 1
        return {"allocated_mb": event["mb"]}
    if action == "raise":
        raise FlakyDependencyError(event.get("message", "dependency unavailable"))
    if action == "crash":
        os._exit(3)
    if action == "print":
        for line in event.get("lines") or [event["text"]]:
            print(line)
        return {"printed": True}
    if action == "flaky":
        # fails until the given marker exists in /tmp, so a Step Functions Retry can succeed
        marker = f"/tmp/flaky-{hashlib.sha256(event['token'].encode()).hexdigest()}"
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise FlakyDependencyError("first attempt fails")
        return {"ok": True, "key": event.get("key")}
    raise ValueError(f"unknown action {action}")
