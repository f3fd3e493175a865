"""Fault injection for the local cloud: real AWS errors (or latency, or a crashed Lambda worker) on demand.

Rules are managed over HTTP on the LocalStack gateway:

    POST   /_localcloud/faults        {"service": "s3", "operation": "GetObject", "resource": "my-bucket",
                                       "error": "SlowDown", "probability": 0.3}          -> 201 rule
    GET    /_localcloud/faults                                                          -> {"faults": [...]}
    DELETE /_localcloud/faults[/<id>]                                                   -> 204

A rule matches a request by service (``s3``, ``dynamodb``, ``lambda``, ...), operation (``GetObject``, ``*``)
and optionally a resource (a substring of the bucket, table, function, state machine or queue named
in the request). It fires with a ``probability`` (default 1) and/or at most ``count`` times, and then:
- ``error``: the request fails with that AWS error, serialised by the service's own protocol (the status
  code is the real one for known codes, or ``status``);
- ``latency_ms``: the request is delayed, then served;
- ``latency_after_ms``: the request is served at once, then its answer is held back: the work is done
  but the caller may give up first (a Step Functions task timing out on a Lambda that completed);
- ``action: "crash"`` (service ``lambda``, operation ``Invoke``): the process executor kills the
  function's runtime (kill -9) in the middle of the invocation.
Every rule counts the requests it matched and the times it fired.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

from localstack.aws.api import CommonServiceException, RequestContext
from localstack.aws.chain import HandlerChain
from localstack.http import Request, Response, route

from localcloud.patching import hook

LOG = logging.getLogger(__name__)

# Real status codes of the errors worth injecting.
STATUS = {
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "RequestTimeout": 400,
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 400,
    "InternalServerError": 500,
    "TooManyRequestsException": 429,
    "ServiceException": 500,
    "EC2ThrottledException": 502,
    "ResourceNotReadyException": 502,
    "AccessDenied": 403,
}
RESOURCE_KEYS = ("Bucket", "TableName", "FunctionName", "stateMachineArn", "QueueUrl", "TopicArn", "Name")


@dataclass
class FaultRule:
    service: str
    operation: str = "*"
    resource: str | None = None
    error: str | None = None
    status: int | None = None
    message: str | None = None
    latency_ms: int = 0
    latency_after_ms: int = 0
    action: str | None = None
    probability: float = 1.0
    count: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    matched: int = 0
    fired: int = 0

    @classmethod
    def parse(cls, body: dict) -> FaultRule:
        allowed = {
            "service",
            "operation",
            "resource",
            "error",
            "status",
            "message",
            "latency_ms",
            "latency_after_ms",
            "action",
            "probability",
            "count",
        }
        unknown = set(body) - allowed
        if unknown or not body.get("service"):
            raise ValueError(f"a rule needs 'service'; unknown fields: {sorted(unknown)}")
        rule = cls(**{k: v for k, v in body.items() if k in allowed})
        if not (rule.error or rule.latency_ms or rule.latency_after_ms or rule.action == "crash"):
            raise ValueError("a rule needs 'error', 'latency_ms', 'latency_after_ms' or 'action': 'crash'")
        if rule.error and rule.latency_after_ms:
            raise ValueError("'latency_after_ms' holds back a served answer; it does not go with 'error'")
        if rule.action not in (None, "crash"):
            raise ValueError("the only action is 'crash'")
        if not 0 <= float(rule.probability) <= 1:
            raise ValueError("probability is between 0 and 1")
        return rule

    def matches(self, service: str, operation: str, resource: str) -> bool:
        return (
            self.service == service
            and self.operation in ("*", operation)
            and (not self.resource or self.resource in resource)
        )


class FaultRegistry:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self, rule_id: str | None = None) -> None:
        with self.lock:
            self.rules = [r for r in self.rules if rule_id is not None and r.id != rule_id]

    def draw(self, service: str, operation: str, resource: str, crash: bool = False) -> FaultRule | None:
        """The first matching rule that fires for this request (crash rules only when ``crash``)."""
        with self.lock:
            for rule in self.rules:
                if (rule.action == "crash") != crash or not rule.matches(service, operation, resource):
                    continue
                rule.matched += 1
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if random.random() >= float(rule.probability):
                    continue
                rule.fired += 1
                return rule
        return None


REGISTRY = FaultRegistry()


def resource_of(context: RequestContext) -> str:
    request = context.service_request or {}
    return " ".join(str(request[k]) for k in RESOURCE_KEYS if request.get(k))


def inject_faults(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    """Request handler (after parsing): fail or delay the request when a rule says so."""
    if not REGISTRY.rules or context.service is None or context.operation is None:
        return
    rule = REGISTRY.draw(context.service.service_name, context.operation.name, resource_of(context))
    if rule is None:
        return
    if rule.latency_ms:
        time.sleep(rule.latency_ms / 1000)
    if rule.latency_after_ms:
        context.localcloud_latency_after_ms = rule.latency_after_ms
    if rule.error:
        LOG.info(
            "localcloud: injecting %s into %s.%s", rule.error, context.service.service_name, context.operation.name
        )
        raise CommonServiceException(
            code=rule.error,
            message=rule.message or f"Injected fault: {rule.error}",
            status_code=rule.status or STATUS.get(rule.error, 500),
            sender_fault=False,
        )


def delay_responses(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    """Response handler: hold back the answer of a request a ``latency_after_ms`` rule fired on."""
    delay_ms = getattr(context, "localcloud_latency_after_ms", 0)
    if delay_ms:
        time.sleep(delay_ms / 1000)


def crash_requested(function_name: str) -> bool:
    """Asked by the process executor at each invocation: should this one crash its worker?"""
    return bool(REGISTRY.rules) and REGISTRY.draw("lambda", "Invoke", function_name, crash=True) is not None


class FaultRoutes:
    @route("/_localcloud/faults", methods=["GET"])
    def list_faults(self, request: Request) -> Response:
        with REGISTRY.lock:
            body = {"faults": [asdict(r) for r in REGISTRY.rules]}
        return Response(json.dumps(body), status=200, mimetype="application/json")

    @route("/_localcloud/faults", methods=["POST"])
    def add_fault(self, request: Request) -> Response:
        try:
            rule = REGISTRY.add(FaultRule.parse(json.loads(request.get_data(parse_form_data=False) or b"{}")))
        except (ValueError, TypeError) as e:
            return Response(
                json.dumps({"error": {"code": "INVALID_RULE", "message": str(e)}}),
                status=400,
                mimetype="application/json",
            )
        return Response(json.dumps(asdict(rule)), status=201, mimetype="application/json")

    @route("/_localcloud/faults", methods=["DELETE"])
    def clear_faults(self, request: Request) -> Response:
        REGISTRY.clear()
        return Response(status=204)

    @route("/_localcloud/faults/<rule_id>", methods=["DELETE"])
    def delete_fault(self, request: Request, rule_id: str) -> Response:
        REGISTRY.clear(rule_id)
        return Response(status=204)


@hook("fault injection")
def install_fault_injection() -> str | None:
    from localstack.aws import handlers
    from localstack.services.edge import ROUTER

    handlers.serve_custom_service_request_handlers.append(inject_faults)
    handlers.run_custom_response_handlers.append(delay_responses)
    ROUTER.add(FaultRoutes())
    return "fault injection at /_localcloud/faults"
