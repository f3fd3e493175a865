"""A request meter for the local cloud: how many AWS requests of each service and operation it served.

This is what a cost model needs to count (``make cost``): every request through LocalStack's handler chain, from
clients over HTTP (the Lambda functions, boto3, curl) and from LocalStack's services themselves (Step Functions
invoking Lambda or putting events; internal calls go through the same chain). Read and reset it over HTTP:

    GET    /_localcloud/meter   -> {"requests": {"s3": {"PutObject": 3, ...}, ...},
                                    "by_resource": {"s3": {"PutObject": {"my-bucket": 3}}, ...}, "ignored": n}
    DELETE /_localcloud/meter   -> 204 (all counts back to zero)

EventBridge PutEvents also counts its entries by who sent them, as AWS prices them: ``entries:aws`` (events of AWS
services, e.g. S3's Object Created, free on AWS) and ``entries:custom`` (everything else, priced per event).

``by_resource`` splits each count by the bucket, table, function or state machine named in the request (as fault
rules match them). Single-item DynamoDB writes (PutItem, UpdateItem, DeleteItem) also count the write capacity units
they consumed, from their item before and after the write (localcloud.plugins.dynamodb, localcloud.capacity): in the table,
``write_units:<Op>`` (and ``sized:<Op>``, how many writes were sized), and in each global secondary index,
``index_write_units:<index name>``. A request whose User-Agent contains ``localcloud-meter-ignore`` is
not counted (a benchmark's own polling). Requests answered with an error are counted too (AWS charges most of them).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter

from localstack.aws.api import RequestContext
from localstack.aws.chain import HandlerChain
from localstack.http import Request, Response, route

from localcloud.patching import hook
from localcloud.plugins.dynamodb import CAPACITY_ATTRIBUTE
from localcloud.plugins.fault_injection import resource_of

LOG = logging.getLogger(__name__)

IGNORE_MARK = "localcloud-meter-ignore"


class Meter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.resources: Counter[tuple[str, str, str]] = Counter()
        self.ignored = 0

    def count(
        self, service: str, operation: str, resource: str, ignored: bool, extra: dict[str, int] | None = None
    ) -> None:
        with self.lock:
            if ignored:
                self.ignored += 1
                return
            self.counts[(service, operation)] += 1
            self.resources[(service, operation, resource)] += 1
            for name, n in (extra or {}).items():
                self.counts[(service, name)] += n
                self.resources[(service, name, resource)] += n

    def snapshot(self) -> dict:
        with self.lock:
            requests: dict[str, dict[str, int]] = {}
            for (service, operation), n in sorted(self.counts.items()):
                requests.setdefault(service, {})[operation] = n
            by_resource: dict[str, dict[str, dict[str, int]]] = {}
            for (service, operation, resource), n in sorted(self.resources.items()):
                by_resource.setdefault(service, {}).setdefault(operation, {})[resource] = n
            return {"requests": requests, "by_resource": by_resource, "ignored": self.ignored}

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.resources.clear()
            self.ignored = 0


METER = Meter()


def count_request(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    """Response handler: count the request by service and operation (those LocalStack parsed)."""
    if context.service is None or context.operation is None:
        return
    agent = context.request.headers.get("User-Agent", "") if context.request is not None else ""
    service, operation = context.service.service_name, context.operation.name
    extra = None
    capacity = getattr(context, CAPACITY_ATTRIBUTE, None)
    if service == "dynamodb" and capacity:
        extra = {f"write_units:{operation}": capacity["table"], f"sized:{operation}": 1}
        extra |= {f"index_write_units:{name}": n for name, n in capacity.items() if name != "table"}
    if service == "events" and operation == "PutEvents":
        sources = [str(e.get("Source", "")) for e in (context.service_request or {}).get("Entries") or []]
        aws = sum(1 for s in sources if s.startswith("aws."))
        extra = {"entries:aws": aws, "entries:custom": len(sources) - aws}
    METER.count(service, operation, resource_of(context), IGNORE_MARK in agent, extra)


class MeterRoutes:
    @route("/_localcloud/meter", methods=["GET"])
    def read(self, request: Request) -> Response:
        return Response(json.dumps(METER.snapshot()), status=200, mimetype="application/json")

    @route("/_localcloud/meter", methods=["DELETE"])
    def reset(self, request: Request) -> Response:
        METER.reset()
        return Response(status=204)


@hook("request meter")
def install_request_meter() -> str | None:
    from localstack.aws import handlers
    from localstack.services.edge import ROUTER

    handlers.run_custom_response_handlers.append(count_request)
    ROUTER.add(MeterRoutes())
    return "request meter at /_localcloud/meter"
