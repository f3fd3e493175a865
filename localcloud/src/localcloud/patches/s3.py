"""Patches of LocalStack's S3 CloudFormation resource provider (``localstack.services.s3.resource_providers``,
localstack-core 2026.3.0): a bucket's LifecycleConfiguration is put on the bucket, as AWS does.
"""

from __future__ import annotations

import functools
import logging

from localcloud.patching import Patch, hook, patch_all

LOG = logging.getLogger(__name__)


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

    if not patch_all(
        Patch(S3BucketProvider, "create", putting_lifecycle, wraps=True),
        Patch(S3BucketProvider, "update", update),
    ):
        return None
    return "stacks put their buckets' lifecycle configurations"
