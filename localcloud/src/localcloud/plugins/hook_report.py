"""What became of each localcloud start-up hook, on the gateway:

    GET /_localcloud/hooks  -> {"hooks": {name: {"what", "status", "detail", "targets"}}, "failed": {name: error}}

``status`` is ``installed``, ``unchanged`` (it ran and had nothing to change), ``skipped`` (LOCALCLOUD_SKIP_HOOKS) or
``failed``; ``targets`` are the upstream attributes a patch replaced, each with the version it targets. ``failed`` also
names every hook LocalStack was given (localcloud's ``on_infra_start`` entry points) that never ran: its module did
not import. scripts/up.sh reads it once LocalStack is ready, and stops the local cloud and fails, naming each such
hook and its error, unless the list is empty.

This hook runs first (the highest priority), so the report is there whatever becomes of the others.
"""

from __future__ import annotations

import importlib.metadata
import json

from localstack.http import Request, Response, route

from localcloud.patching import hook, report

HOOKS = "localstack.hooks.on_infra_start"


def expected_hooks() -> list[str]:
    """The function names of localcloud's start-up hooks, from the entry points LocalStack loads them by."""
    return [
        ep.value.partition(":")[2]
        for ep in importlib.metadata.entry_points(group=HOOKS)
        if ep.value.startswith("localcloud.")
    ]


class HookRoutes:
    @route("/_localcloud/hooks", methods=["GET"])
    def hooks(self, request: Request) -> Response:
        return Response(json.dumps(report(expected_hooks())), status=200, mimetype="application/json")


@hook("hook report", priority=1000)
def serve_hook_report() -> str | None:
    from localstack.services.edge import ROUTER

    ROUTER.add(HookRoutes())
    return "what became of each hook at /_localcloud/hooks"
