"""Start-up hooks that make LocalStack 2026.3.0 behave like AWS where our stack depends on it.

- API Gateway's OpenAPI import ignores ``x-amazon-apigateway-gateway-responses``. SAM writes an Api's
  ``GatewayResponses`` into the definition it imports, so without this an API's custom error bodies (ours:
  ``{"error": {"code": ..., "message": ...}}``) never take effect locally, while AWS applies them. After the
  import we apply them as ``PutGatewayResponse`` would.
- API Gateway's invocation path then answers every gateway error with ``{"message": ...}`` whatever the
  gateway response says (a TODO in LocalStack). We render the response's ``application/json`` template with
  LocalStack's own VTL engine, with ``$context.error.messageString`` quoted as AWS documents it.
- A state machine's ``DefinitionSubstitutions`` may hold numbers (a ``Number`` parameter's ``Ref``); CloudFormation
  substitutes their text, LocalStack's resource provider fails the deployment (``replace() argument 2 must be
  str, not int``). We give it the text.
- CloudFormation updates of an EventBridge API destination or connection (a new webhook URL or secret) are "not
  implemented" in LocalStack: the stack update succeeds and the old endpoint stays. We update them as AWS does.
- A Distributed Map's Map Run ignores ToleratedFailurePercentage/Count (every failed item is tolerated) and its
  ResultWriter writes a manifest.json that names no result file. We fail the run past its threshold and write the
  result files (judge_and_report_distributed_maps).
Each hook is skipped, with a log line, if LocalStack's internals are not what it expects (localcloud.patching).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from localcloud.patching import hook, patch

LOG = logging.getLogger(__name__)
GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'


def apply_gateway_responses(rest_api_container, spec: dict) -> None:
    """The gateway responses of an OpenAPI/Swagger document, stored on the imported API."""
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import build_gateway_response

    responses = spec.get(GATEWAY_RESPONSES) or {}
    for response_type, response in responses.items():
        status = response.get("statusCode")
        rest_api_container.gateway_responses[response_type] = build_gateway_response(
            response_type=response_type,
            status_code=str(status) if status is not None else None,
            response_parameters=response.get("responseParameters"),
            response_templates=response.get("responseTemplates"),
            default_response=False,
        )


@hook("OpenAPI gateway responses import")
def import_openapi_gateway_responses() -> str | None:
    from localstack.services.apigateway import helpers
    from localstack.services.apigateway.legacy import provider

    def applying_responses(original):
        @functools.wraps(original)
        def import_api_from_openapi_spec(rest_api, context, open_api_spec, mode):
            result = original(rest_api, context, open_api_spec, mode)
            container = helpers.get_apigateway_store(context=context).rest_apis.get(rest_api.id)
            if container is not None:
                apply_gateway_responses(container, open_api_spec)
            return result

        return import_api_from_openapi_spec

    if not patch(provider, "import_api_from_openapi_spec", applying_responses, wraps=True):
        return None
    return "OpenAPI imports apply x-amazon-apigateway-gateway-responses"


@hook("gateway response template rendering")
def render_gateway_response_templates() -> str | None:
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import get_gateway_response_or_default
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import GatewayExceptionHandler
    from localstack.services.apigateway.next_gen.execute_api.template_mapping import ApiGatewayVtlTemplate

    vtl = ApiGatewayVtlTemplate()

    def rendering(original):
        @functools.wraps(original)
        def create_exception_response(self, exception, context):
            response = original(self, exception, context)
            gateway_response = get_gateway_response_or_default(
                exception.type, context.deployment.rest_api.gateway_responses
            )
            template = (gateway_response.get("responseTemplates") or {}).get("application/json")
            if response is None or not template or template == DEFAULT_TEMPLATE:
                return response  # LocalStack's own answer is what the default template renders
            variables = copy.deepcopy(context.context_variables)
            error = variables.get("error") or {}
            error["messageString"] = json.dumps(error.get("message") or exception.message)
            variables["error"] = error
            try:
                body = vtl.render_vtl(template=template.strip(), variables={"context": variables, "stageVariables": {}})
            except Exception as e:  # noqa: BLE001 - a broken template: keep LocalStack's answer, say why
                LOG.warning("localcloud: gateway response template of %s not rendered: %s", exception.type, e)
                return response
            response.set_response(body)
            return response

        return create_exception_response

    if not patch(GatewayExceptionHandler, "create_exception_response", rendering, wraps=True):
        return None
    return "gateway responses render their application/json templates"


@hook("numeric DefinitionSubstitutions fix")
def substitute_numbers_in_state_machine_definitions() -> str | None:
    from localstack.services.stepfunctions.resource_providers import aws_stepfunctions_statemachine as provider

    def as_text(original):
        @functools.wraps(original)
        def _apply_substitutions(definition: str, substitutions: dict) -> str:
            texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in substitutions.items()}
            return original(definition, texts)

        return _apply_substitutions

    if not patch(provider, "_apply_substitutions", as_text, wraps=True):
        return None
    return "DefinitionSubstitutions may hold numbers"


@hook("API destination and connection updates")
def update_api_destinations_and_connections() -> str | None:
    from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
    from localstack.services.events.resource_providers.aws_events_apidestination import EventsApiDestinationProvider
    from localstack.services.events.resource_providers.aws_events_connection import EventsConnectionProvider

    def updater(operation: str, fields: tuple[str, ...], arn_field: str):
        """A provider's update: the desired properties over the deployed ones, sent with ``operation``."""

        def update(self, request):
            model = {**(request.previous_state or {}), **request.desired_state}
            client = request.aws_client_factory.events
            response = getattr(client, operation)(**{k: model[k] for k in fields if model.get(k) is not None})
            model["Arn"] = response.get(arn_field) or model.get("Arn")
            return ProgressEvent(
                status=OperationStatus.SUCCESS, resource_model=model, custom_context=request.custom_context
            )

        return update

    destination_fields = (
        "Name",
        "ConnectionArn",
        "InvocationEndpoint",
        "HttpMethod",
        "InvocationRateLimitPerSecond",
        "Description",
    )
    if not patch(
        EventsApiDestinationProvider,
        "update",
        updater("update_api_destination", destination_fields, "ApiDestinationArn"),
    ):
        return None
    connection_fields = ("Name", "AuthorizationType", "AuthParameters", "Description")
    patch(EventsConnectionProvider, "update", updater("update_connection", connection_fields, "ConnectionArn"))
    return "stack updates change API destinations and connections"


@hook("EventBridge rule updates")
def update_event_rules() -> str | None:
    """A stack update that changes an EventBridge rule (its pattern, schedule, state or targets: e.g. a target state
    machine replaced because WorkflowType changed) updates the rule: LocalStack's provider has no update and
    leaves the rule as it was, pointing at a deleted target."""
    from localstack.services.events.resource_providers import aws_events_rule as provider

    def update(self, request):
        previous = request.previous_state or {}
        model = request.desired_state
        name = model.get("Name") or provider.extract_rule_name(previous["Id"])  # Name is create-only
        model["Name"] = name
        if previous.get("EventBusName") and not model.get("EventBusName"):
            model["EventBusName"] = previous["EventBusName"]
        bus = {"EventBusName": model["EventBusName"]} if model.get("EventBusName") else {}
        events = request.aws_client_factory.events
        kept = {t["Id"] for t in model.get("Targets") or []}
        gone = [t["Id"] for t in events.list_targets_by_rule(Rule=name, **bus)["Targets"] if t["Id"] not in kept]
        if gone:
            events.remove_targets(Rule=name, Ids=gone, Force=True, **bus)
        return self.create(request)  # put_rule and put_targets update the rule and its targets in place

    if not patch(provider.EventsRuleProvider, "update", update):
        return None
    return "stack updates change EventBridge rules and their targets"


def lifecycle_rules(cfn_rules: list[dict]) -> list[dict]:
    """CloudFormation's LifecycleConfiguration.Rules in the shape of S3's PutBucketLifecycleConfiguration."""
    rules = []
    for cfn in cfn_rules:
        tags = [{"Key": t["Key"], "Value": t["Value"]} for t in cfn.get("TagFilters") or []]
        prefix = cfn.get("Prefix")
        if tags and (prefix or len(tags) > 1):
            rule_filter: dict = {"And": {"Tags": tags, **({"Prefix": prefix} if prefix else {})}}
        elif tags:
            rule_filter = {"Tag": tags[0]}
        else:
            rule_filter = {"Prefix": prefix or ""}
        rule: dict = {"Status": cfn.get("Status", "Enabled"), "Filter": rule_filter}
        if cfn.get("Id"):
            rule["ID"] = cfn["Id"]
        if cfn.get("ExpirationInDays") is not None:
            rule["Expiration"] = {"Days": int(cfn["ExpirationInDays"])}
        if (noncurrent := cfn.get("NoncurrentVersionExpiration")) is not None:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
        if (abort := cfn.get("AbortIncompleteMultipartUpload")) is not None:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
        transitions = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
            for t in cfn.get("Transitions") or []
            if t.get("TransitionInDays") is not None
        ]
        if transitions:
            rule["Transitions"] = transitions
        rules.append(rule)
    return rules


@hook("bucket lifecycle configurations")
def apply_bucket_lifecycle_configurations() -> str | None:
    """A bucket's LifecycleConfiguration is put on the bucket when the stack creates or updates it: LocalStack's
    provider ignores it (its update does nothing at all), so a deployed bucket had none of the template's rules.
    (LocalStack stores lifecycle rules; it does not run them.)"""
    from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
    from localstack.services.s3.resource_providers.aws_s3_bucket import S3BucketProvider

    def put_lifecycle(request, model) -> None:
        s3 = request.aws_client_factory.s3
        rules = (model.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=model["BucketName"], LifecycleConfiguration={"Rules": lifecycle_rules(rules)}
            )
        else:
            s3.delete_bucket_lifecycle(Bucket=model["BucketName"])

    def putting_lifecycle(original_create):
        @functools.wraps(original_create)
        def create(self, request):
            event = original_create(self, request)
            if event.status == OperationStatus.SUCCESS and request.desired_state.get("LifecycleConfiguration"):
                put_lifecycle(request, event.resource_model)
            return event

        return create

    def update(self, request):
        previous = request.previous_state or {}
        model = {**previous, **request.desired_state}
        model["BucketName"] = previous.get("BucketName") or model.get("BucketName")
        if model.get("LifecycleConfiguration") != previous.get("LifecycleConfiguration"):
            put_lifecycle(request, model)
        ignored = sorted(
            k for k, v in request.desired_state.items() if k != "LifecycleConfiguration" and previous.get(k) != v
        )
        if ignored:  # as before this fix: LocalStack's provider updates nothing else of a bucket
            LOG.warning(
                "localcloud: bucket %s: only LifecycleConfiguration is updated; not %s", model["BucketName"], ignored
            )
        return ProgressEvent(
            status=OperationStatus.SUCCESS, resource_model=model, custom_context=request.custom_context
        )

    if not patch(S3BucketProvider, "create", putting_lifecycle, wraps=True):
        return None
    patch(S3BucketProvider, "update", update)
    return "stacks put their buckets' lifecycle configurations"


@hook("pausing of disabled schedules")
def pause_disabled_schedules() -> str | None:
    """DisableRule stops a scheduled rule, as on AWS; EnableRule starts it again. LocalStack only marks the rule:
    its schedule job (``rate(5 minutes)`` runs at every fifth minute of the clock) kept invoking the target, so a
    paused reconciler still ran in the middle of the tests that pause it."""
    from localstack.services.events.provider import EventsProvider
    from localstack.services.events.scheduler import JobScheduler

    def toggling(enabled: bool):
        def wrap(original):
            @functools.wraps(original)
            def handler(self, context, *args, **kwargs):
                result = original(self, context, *args, **kwargs)
                name = args[0] if args else kwargs.get("name", kwargs.get("Name"))
                for service in list(self._rule_services_store.values()):
                    rule = service.rule
                    if rule.name == name and getattr(service, "job_id", None):
                        job = JobScheduler.instance().get_job(service.job_id)
                        if job is not None:
                            job.is_enabled = enabled
                return result

            return handler

        return wrap

    if not patch(EventsProvider, "disable_rule", toggling(False), wraps=True):
        return None
    patch(EventsProvider, "enable_rule", toggling(True), wraps=True)
    return "disabled scheduled rules stop running"


class _WaitsOnExpress:
    """The Step Functions client of a ``.sync`` task: DescribeExecution of an Express child reads Step Functions' own
    record of it (what the service knows internally), every other call goes to the client."""

    def __init__(self, client) -> None:
        self._client = client

    def describe_execution(self, executionArn: str, **kwargs):  # noqa: N803 — boto3's parameter name
        if ":express:" in executionArn:
            from localstack.services.stepfunctions.backend.models import sfn_stores

            _, _, _, region, account, *_ = executionArn.split(":")
            execution = sfn_stores[account][region].executions.get(executionArn)
            if execution is not None:
                return execution.to_describe_output()
        return self._client.describe_execution(executionArn=executionArn, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


@hook(".sync on Express children")
def sync_on_express_children() -> str | None:
    """A Standard workflow waits on an Express child (``states:startExecution.sync``/``.sync:2``), as on AWS. LocalStack
    waits by polling DescribeExecution, which it (rightly) refuses for an Express execution, so every such task failed
    with InvalidArn after its child had run (the backfill of an Express pipeline reported every image failed). Callers
    are still refused; only the task's own polling reads the child's status."""
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service import (
        state_task_service_sfn as sfn_task,
    )

    def waiting_on_express(original):
        @functools.wraps(original)
        def boto_client_for(service: str, *args, **kwargs):
            client = original(*args, service=service, **kwargs)
            return _WaitsOnExpress(client) if service == "stepfunctions" else client

        return boto_client_for

    if not patch(sfn_task, "boto_client_for", waiting_on_express, wraps=True):
        return None
    return "Step Functions waits on Express children (.sync)"


# ---------------------------------------------------------------- Distributed Map: failure threshold, result files

RESULTS = "_localcloud_results"  # a Map Run record's results so far: one record per child execution that ended
POOL = "_localcloud_pool"  # and its job pool: what was never started when the run failed
CHILD_INPUT = "_localcloud_child_input"  # a job frame's child input (after ItemSelector)


def exceeds_tolerance(failed: int, total: int, count: int, percentage: float) -> bool:
    """Whether ``failed`` of ``total`` items fail a Map Run that tolerates ``count`` failures and ``percentage`` per
    cent: past either threshold that is set; with neither set (both 0, the default), past none. (A threshold of 0 set
    explicitly beside the other counts as not set: LocalStack keeps no trace of which fields were given.)"""
    limits = []
    if count:
        limits.append(failed > count)
    if percentage:
        limits.append(total > 0 and failed * 100 > percentage * total)
    return any(limits) if limits else failed > 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def child_result(
    map_run_arn: str,
    map_state_machine_arn: str,
    child_input: Any,
    status: str,
    started: datetime,
    stopped: datetime | None,
    output: Any = None,
    error: str | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """One child execution as AWS writes it in a result file (its input and output as JSON text)."""
    name = str(uuid.uuid4())
    record: dict[str, Any] = {
        "ExecutionArn": f"{map_state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}",
        "Input": json.dumps(child_input),
        "InputDetails": {"Included": True},
        "Name": name,
        "MapRunArn": map_run_arn,
        "StartDate": _iso(started),
        "StateMachineArn": map_state_machine_arn,
        "Status": status,
    }
    if stopped is not None:
        record["StopDate"] = _iso(stopped)
    if status == "SUCCEEDED":
        record["Output"] = json.dumps(output)
        record["OutputDetails"] = {"Included": True}
    elif status != "PENDING":
        record["Error"] = error or "States.Runtime"
        record["Cause"] = cause or ""
    return record


def result_files(prefix: str, map_run_arn: str, results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The result files of a Map Run under ``prefix``, as AWS lays them out: {key: records}; SUCCEEDED_0.json,
    FAILED_0.json (failed, timed out and aborted children) and PENDING_0.json (never started), each only if it has
    records, and manifest.json (``{"ResultFiles": {"FAILED": [{"Key", "Size"}], ...}}``, written last) naming them."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = f"{prefix}{map_run_arn.rsplit(':', 1)[-1]}/"
    grouped: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for result in results:
        group = result["Status"] if result["Status"] in ("SUCCEEDED", "PENDING") else "FAILED"
        grouped[group].append(result)
    return {f"{folder}{group}_0.json": records for group, records in grouped.items() if records}


@hook("Distributed Map failure thresholds and result files")
def judge_and_report_distributed_maps() -> str | None:
    """A Distributed Map's Map Run fails with States.ExceedToleratedFailureThreshold once more of its items failed
    than ToleratedFailurePercentage/ToleratedFailureCount allow (none, by default), as on AWS: it starts no more
    children (those running finish; AWS stops them). Its ResultWriter writes what AWS writes, whether the run
    succeeded or failed: a JSON array of the child executions per status (SUCCEEDED_0.json, FAILED_0.json,
    PENDING_0.json) and a manifest.json naming them, its Parameters' paths read from the state's input. LocalStack
    2026.3.0 parses the threshold fields and applies neither (every item's failure was tolerated), its manifest.json
    named no result file (a TODO), and it read the Parameters' paths from the children's outputs."""
    from localstack.aws.api.stepfunctions import HistoryEventType, MapRunFailedEventDetails
    from localstack.services.stepfunctions.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from localstack.services.stepfunctions.asl.component.common.error_name.states_error_name import StatesErrorName
    from localstack.services.stepfunctions.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map import state_map
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.iteration import (
        distributed_iteration_component,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker as worker,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.result_writer import (
        result_writer_decl,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.credentials import (
        StateCredentials,
    )
    from localstack.services.stepfunctions.asl.eval.event.event_detail import EventDetails
    from localstack.services.stepfunctions.asl.eval.program_state import ProgramEnded, ProgramError, ProgramStopped
    from localstack.services.stepfunctions.asl.utils.boto_client import boto_client_for

    def keeping_the_child_input(original):
        @functools.wraps(original)
        def _eval_input(self, env_frame) -> None:
            original(self, env_frame)
            setattr(env_frame, CHILD_INPUT, env_frame.states.get_input())

        return _eval_input

    def judging(original):
        @functools.wraps(original)
        def _eval_job(self, env, job) -> None:
            record = self._map_run_record
            record.__dict__.setdefault(POOL, self._job_pool)
            started = datetime.now(UTC)
            original(self, env, job)
            state = env.program_state()
            child_input = getattr(env, CHILD_INPUT, job.job_input)
            arns = (record.map_run_arn, record.map_state_machine_arn)
            if isinstance(state, ProgramEnded):
                result = child_result(*arns, child_input, "SUCCEEDED", started, datetime.now(UTC), job.job_output)
            else:
                details = (state.error or {}) if isinstance(state, ProgramError) else {}
                status = "ABORTED" if isinstance(state, ProgramStopped) else "FAILED"
                error, cause = details.get("error"), details.get("cause")
                result = child_result(*arns, child_input, status, started, datetime.now(UTC), None, error, cause)
            result["_index"] = job.job_index
            record.__dict__.setdefault(RESULTS, []).append(result)
            counts = record.item_counter
            failed, total = counts.failed.get() + counts.timed_out.get(), self._job_pool._jobs_number
            if exceeds_tolerance(failed, total, record.tolerated_failure_count, record.tolerated_failure_percentage):
                cause = (
                    f"{failed} of {total} items failed, more than tolerated (ToleratedFailureCount "
                    f"{record.tolerated_failure_count}, ToleratedFailurePercentage {record.tolerated_failure_percentage})"
                )
                name = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
                details = MapRunFailedEventDetails(error=name.error_name, cause=cause)
                event = FailureEvent(
                    env=self._env,
                    error_name=name,
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=EventDetails(mapRunFailedEventDetails=details),
                )
                job.job_output = FailureEventException(failure_event=event)  # the pool starts no further job

        return _eval_job

    def write_results(s3, bucket: str, prefix: str, record) -> str:
        """Write the Map Run's result files and its manifest; the manifest's key."""
        results = sorted(record.__dict__.get(RESULTS, []), key=lambda r: r["_index"])
        pool = record.__dict__.get(POOL)
        never_started = list(reversed(pool._open_jobs)) if pool is not None and record.status != "SUCCEEDED" else []
        arns = (record.map_run_arn, record.map_state_machine_arn)
        results += [child_result(*arns, job.job_input, "PENDING", record.start_date, None) for job in never_started]
        files = result_files(
            prefix, record.map_run_arn, [{k: v for k, v in r.items() if k != "_index"} for r in results]
        )
        listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for key, records in files.items():
            body = json.dumps(records).encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            listed[key.rsplit("/", 1)[-1].split("_", 1)[0]].append({"Key": key, "Size": len(body)})
        folder = prefix.rstrip("/") + "/" if prefix else ""
        manifest = f"{folder}{record.map_run_arn.rsplit(':', 1)[-1]}/manifest.json"
        body = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn, "ResultFiles": listed}
        s3.put_object(Bucket=bucket, Key=manifest, Body=json.dumps(body, indent=2).encode())
        return manifest

    def parameters_of(result_writer, env) -> dict[str, Any]:
        """The ResultWriter's Parameters, their paths read from the Map state's input as on AWS (LocalStack read them
        from the children's outputs: a ``Bucket.$`` or ``Prefix.$`` failed the state with States.Runtime)."""
        env.stack.append(env.states.get_input())
        result_writer.parargs.eval(env)
        parameters = env.stack.pop()
        env.stack.pop()
        return parameters

    def _eval_body(self, env) -> None:
        env.stack.append(parameters_of(self, env))
        self.resource_eval.eval_resource(env)

    def _handle_put_object(env, resource_runtime_part, state_credentials) -> None:
        parameters = env.stack.pop()
        env.stack.pop()  # the children's outputs: the result files hold them
        record = env.map_run_record_pool_manager.get_all().pop()
        s3 = boto_client_for(service="s3", region=resource_runtime_part.region, state_credentials=state_credentials)
        key = write_results(s3, parameters["Bucket"], parameters.get("Prefix", ""), record)
        env.stack.append(
            {"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}}
        )

    def reporting_failed_runs(original):
        @functools.wraps(original)
        def _eval_execution(self, env) -> None:
            try:
                original(self, env)
            except Exception:
                distributed = isinstance(
                    self.iteration_component, distributed_iteration_component.DistributedIterationComponent
                )
                if self.result_writer is not None and distributed and env.map_run_record_pool_manager.get_all():
                    try:
                        parameters = parameters_of(self.result_writer, env)
                        self.result_writer.resource.eval(env)
                        region = env.stack.pop().region
                        credentials = StateCredentials(role_arn=env.aws_execution_details.role_arn)
                        s3 = boto_client_for(service="s3", region=region, state_credentials=credentials)
                        record = env.map_run_record_pool_manager.get_all()[-1]
                        write_results(s3, parameters["Bucket"], parameters.get("Prefix", ""), record)
                    except Exception:
                        LOG.warning("localcloud: the failed Map Run's results were not written", exc_info=True)
                raise

        return _eval_execution

    worker_class = worker.DistributedItemProcessorWorker
    if not patch(worker_class, "_eval_job", judging, wraps=True):
        return None
    patch(worker_class, "_eval_input", keeping_the_child_input, wraps=True)
    patch(result_writer_decl.ResultWriter, "_eval_body", _eval_body)
    patch(resource_eval_s3.ResourceEvalS3, "_handle_put_object", _handle_put_object, kind=staticmethod)
    patch(state_map.StateMap, "_eval_execution", reporting_failed_runs, wraps=True)
    return "Distributed Map runs fail past their failure threshold and write their result files"
