"""The garbage collection policy of a long-running local cloud (localcloud.gcpolicy), installed at start-up, and its
counters at ``GET /_localcloud/gc``."""

from __future__ import annotations

import json
import os

from localstack.http import Request, Response, route

from localcloud.patching import hook

_GC_POLICY = None


class GcRoutes:
    def __init__(self, policy) -> None:
        self.policy = policy

    @route("/_localcloud/gc", methods=["GET"])
    def gc_stats(self, request: Request) -> Response:
        return Response(json.dumps(self.policy.stats()), status=200, mimetype="application/json")


@hook("garbage collection policy")
def tune_garbage_collection() -> str | None:
    """``LOCALCLOUD_GC=freeze`` (the default): localcloud.gcpolicy; ``python``: Python's collector as it comes (the
    counters at /_localcloud/gc either way)."""
    from localstack.services.edge import ROUTER

    from localcloud.gcpolicy import GcPolicy

    global _GC_POLICY
    if _GC_POLICY is not None:
        return None
    policy = _GC_POLICY = GcPolicy(freeze=os.environ.get("LOCALCLOUD_GC", "freeze") != "python").install()
    ROUTER.add(GcRoutes(policy))
    how = "freezes what each full collection keeps" if policy.freeze else "as Python's"
    return f"garbage collection {how} (counters at /_localcloud/gc)"
