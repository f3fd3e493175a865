"""Patches of LocalStack's EventBridge (``localstack.services.events``: its provider and CloudFormation resource
providers, localstack-core 2026.3.0) where our stack depends on AWS's behaviour.

- CloudFormation updates of an EventBridge API destination or connection (a new webhook URL or secret) are "not
  implemented" in LocalStack: the stack update succeeds and the old endpoint stays. We update them as AWS does.
- A stack update that changes a rule left it as it was; DisableRule did not stop a scheduled rule (see each hook).
"""

from __future__ import annotations

import functools

from localcloud.patching import Patch, hook, patch_all


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
    connection_fields = ("Name", "AuthorizationType", "AuthParameters", "Description")
    if not patch_all(
        Patch(
            EventsApiDestinationProvider,
            "update",
            updater("update_api_destination", destination_fields, "ApiDestinationArn"),
        ),
        Patch(EventsConnectionProvider, "update", updater("update_connection", connection_fields, "ConnectionArn")),
    ):
        return None
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

    if not patch_all(Patch(provider.EventsRuleProvider, "update", update)):
        return None
    return "stack updates change EventBridge rules and their targets"


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

    if not patch_all(
        Patch(EventsProvider, "disable_rule", toggling(False), wraps=True),
        Patch(EventsProvider, "enable_rule", toggling(True), wraps=True),
    ):
        return None
    return "disabled scheduled rules stop running"
