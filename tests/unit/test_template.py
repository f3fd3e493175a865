"""Static checks of template.yaml and the state machine (what the local cloud cannot enforce)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from image_pipeline import keys

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "image_pipeline.asl.json").read_text())
TEMPLATE = (ROOT / "template.yaml").read_text()
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientAWSError",
}


def test_cfn_lint_passes():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "template.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


LAMBDA_TASKS = {
    name: s
    for name, s in ASL["States"].items()
    if s["Type"] == "Task" and s["Resource"] == "arn:aws:states:::lambda:invoke"
}
PUBLISH_TASKS = {
    name: s
    for name, s in ASL["States"].items()
    if s["Type"] == "Task" and s["Resource"] == "arn:aws:states:::events:putEvents"
}


def test_every_task_retries_transient_errors_with_jitter_and_is_caught():
    tasks = LAMBDA_TASKS
    assert set(tasks) == {"Validate image", "Resize image", "Store renditions", "Mark processed", "Record failure"}
    for name, state in tasks.items():
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert TRANSIENT <= retried, name
        assert "InvalidImageError" not in retried and "States.ALL" not in retried  # bad input is never retried
        for retry in state["Retry"]:
            assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2, name
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name


def _worst_case_seconds(task: dict) -> float:
    """A task's longest run: every attempt (the first and each retrier's) lasting its TimeoutSeconds, plus every
    backoff at its ceiling (full jitter waits at most the computed interval)."""
    attempts = 1 + sum(r["MaxAttempts"] for r in task["Retry"])
    backoff = sum(
        min(r["IntervalSeconds"] * r["BackoffRate"] ** k, r.get("MaxDelaySeconds", float("inf")))
        for r in task["Retry"]
        for k in range(r["MaxAttempts"])
    )
    return attempts * task["TimeoutSeconds"] + backoff


def _worst_path_seconds(name: str) -> float:
    """The longest run from state ``name`` to the end, over every Next, Choice and Catch edge."""
    state = ASL["States"][name]
    successors = [state.get("Next"), state.get("Default")]
    successors += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    own = _worst_case_seconds(state) if state["Type"] == "Task" else 0
    return own + max((_worst_path_seconds(s) for s in successors if s), default=0)


def test_every_path_ends_through_catch_within_the_hour():
    # No execution timeout (an Express workflow runs at most 5 minutes; AWS ends it there): every task's retry budget is
    # bounded instead, so a Standard execution always ends through Catch with its real error, never TIMED_OUT.
    assert "TimeoutSeconds" not in ASL
    assert all("TimeoutSeconds" in s for s in ASL["States"].values() if s["Type"] == "Task")
    worst = _worst_path_seconds(ASL["StartAt"])
    assert worst < 3600, f"worst path {worst:.0f} s"
    # the worst path really is validate -> resize -> store -> mark processed (fails) -> record failure -> publish it
    tasks = [s for name, s in ASL["States"].items() if s["Type"] == "Task" and name != "Publish processed"]
    assert worst == sum(_worst_case_seconds(t) for t in tasks)


def test_every_terminal_outcome_is_published_once_on_the_stacks_bus():
    assert set(PUBLISH_TASKS) == {"Publish processed", "Publish failure"}
    for name, state in PUBLISH_TASKS.items():
        (entry,) = state["Parameters"]["Entries"]
        assert entry["EventBusName"] == "${EventBusName}" and entry["Source"] == "image-pipeline", name
        assert state["ResultPath"] is None and state["Retry"][0]["JitterStrategy"] == "FULL", name
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    assert ASL["States"]["Mark processed"]["Next"] == "Publish processed"
    processed = PUBLISH_TASKS["Publish processed"]["Parameters"]["Entries"][0]
    assert processed["DetailType"] == "Image Processed" and set(processed["Detail"]) == {
        "imageId.$",
        "owner.$",  # a consumer routes events by owner
        "status.$",
        "renditions.$",
    }
    # a failure is announced only by the execution that recorded it (a duplicate's records nothing)
    choice = ASL["States"]["Was the failure recorded?"]
    assert choice["Choices"] == [
        {"Variable": "$.failure.recorded.recorded", "BooleanEquals": True, "Next": "Publish failure"}
    ]
    assert choice["Default"] == "Which failure?" == PUBLISH_TASKS["Publish failure"]["Next"]
    # the duplicate path publishes nothing
    assert ASL["States"]["Skip duplicate"]["Type"] == "Succeed"


def test_every_custom_error_the_state_machine_matches_is_a_named_exception():
    from image_pipeline import errors

    names = {
        e for s in ASL["States"].values() for r in s.get("Retry", []) + s.get("Catch", []) for e in r["ErrorEquals"]
    }
    custom = {n for n in names if not n.startswith(("States.", "Lambda.", "Sandbox.", "Runtime."))}
    assert custom == {"TransientAWSError", "RenditionIntegrityError"}
    for name in custom:
        assert isinstance(getattr(errors, name, None), type) and issubclass(getattr(errors, name), Exception), name


def test_failures_are_recorded_before_the_execution_fails():
    for name in ("Validate image", "Resize image", "Store renditions", "Mark processed"):
        assert ASL["States"][name]["Catch"][0]["Next"] == "Record failure"
    assert ASL["States"]["Record failure"]["Next"] == "Was the failure recorded?"
    assert {c["Next"] for c in ASL["States"]["Which failure?"]["Choices"]} | {
        ASL["States"]["Which failure?"]["Default"]
    } == {"Pipeline failed", "Pipeline failed in Step Functions"}
    assert (
        ASL["States"]["Pipeline failed"]["Type"] == "Fail" == ASL["States"]["Pipeline failed in Step Functions"]["Type"]
    )
    assert not ASL["States"]["Pipeline failed in Step Functions"]["Error"].startswith("States.")


def test_every_substitution_in_the_definition_is_provided_by_the_template():
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(ASL)))
    for name in used:
        assert re.search(rf"^\s+{name}: !GetAtt", TEMPLATE, re.M), name


def test_every_function_has_a_log_group_with_retention():
    functions = re.findall(r"^  (\w+Function):\n    Type: AWS::Serverless::Function", TEMPLATE, re.M)
    assert len(functions) == 8
    for fn in functions:
        assert re.search(rf"LogGroupName: !Sub /aws/lambda/\${{{fn}}}\n      RetentionInDays:", TEMPLATE), fn


BUCKETS = {"OriginalBucket", "ProcessedBucket", "AccessLogsBucket", "WebBucket", "WorkBucket"}


def test_buckets_block_public_access_encrypt_and_deny_insecure_transport():
    assert {name for name, r in RESOURCES.items() if r["Type"] == "AWS::S3::Bucket"} == BUCKETS
    policies = {
        r["Properties"]["Bucket"]["!Ref"]: r for r in RESOURCES.values() if r["Type"] == "AWS::S3::BucketPolicy"
    }
    for name in BUCKETS:
        props = RESOURCES[name]["Properties"]
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}, name
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert any(
            rule.get("AbortIncompleteMultipartUpload") or rule.get("ExpirationInDays")
            for rule in props["LifecycleConfiguration"]["Rules"]
        ), name
        deny = policies[name]["Properties"]["PolicyDocument"]["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, name


def test_data_buckets_log_access_to_the_log_bucket():
    for name in ("OriginalBucket", "ProcessedBucket"):
        assert RESOURCES[name]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "!Ref": "AccessLogsBucket"
        }


def test_policy_scan_has_no_findings(tmp_path):
    """checkov over template.yaml and its SAM transform (the generated roles, permissions and stage are only
    there); every skip carries its reason (.checkov.yaml or the resource's Metadata)."""
    scanner = ROOT / ".venv" / "scan" / "bin" / "python"
    assert scanner.exists(), "run scripts/setup.sh (make test does) to build the scanner's environment"
    transformed = tmp_path / "template.transformed.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sam_transform.py"), str(transformed)], check=True)
    roles = [r for r in json.loads(transformed.read_text())["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    # 9 functions, the two state machines, the pipeline's EventBridge rule (SAM), the webhook's role (ours)
    assert len(roles) == 12
    result = subprocess.run(
        [
            str(scanner),
            str(ROOT / "scripts" / "policy_scan.py"),
            "--config-file",
            ".checkov.yaml",
            "-f",
            "template.yaml",
            "-f",
            str(transformed),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and result.returncode == 0, failed or result.stderr
    assert report["summary"]["passed"] >= 150
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment") or "") > 40, skipped["check_id"]


def _load_template() -> dict:
    """template.yaml with CloudFormation's short tags kept as {"!Tag": value}."""

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {f"!{suffix}": value}

    Loader.add_multi_constructor("!", tagged)
    return yaml.load(TEMPLATE, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


DOC = _load_template()
RESOURCES = DOC["Resources"]
RENDITIONS, UPLOADS = keys.RENDITION_PREFIX, keys.UPLOAD_PREFIX
STAGING, RETIRED = keys.STAGING_PREFIX, keys.RETIRED_PREFIX
# What each function's code calls (image_pipeline/*.py), and on what. HeadObject needs s3:GetObject; ListBucket
# lets S3 answer 404 rather than 403 for a missing key.
LEAST_PRIVILEGE = {
    "ApiFunction": {
        ("dynamodb:GetItem", "ImageTable"),
        ("dynamodb:PutItem", "ImageTable"),
        ("dynamodb:UpdateItem", "ImageTable"),  # DELETE: the tombstone
        ("dynamodb:BatchGetItem", "ImageTable"),  # GET /images: the records of a page of the keys-only byOwner
        ("dynamodb:Query", "ImageTable/index/byOwner"),  # GET /images, the caller's, with or without a status
        ("dynamodb:Query", "ImageTable/index/byUploadTime"),  # an admin's GET /images?all=true
        ("dynamodb:UpdateItem", "UsageTable"),  # quotas: a grant's counters (one conditional write), bytes given back
        ("dynamodb:GetItem", "UsageTable"),  # quotas: the counters read when a window moved on or a limit was hit
        ("s3:PutObject", f"OriginalBucket/{UPLOADS}*"),
        ("s3:DeleteObject", "OriginalBucket/*"),
        ("s3:DeleteObjectVersion", "OriginalBucket/*"),
        ("s3:ListBucketVersions", "OriginalBucket"),
        ("s3:GetObject", f"ProcessedBucket/{RENDITIONS}*"),
        ("s3:DeleteObject", f"ProcessedBucket/{RENDITIONS}*"),
        ("s3:ListBucket", "ProcessedBucket"),
        ("s3:GetObject", "WebBucket/*"),
        ("events:PutEvents", "CompletionEventBus"),
        ("states:DescribeExecution", "execution:${ImagePipelineStateMachine.Name}:*"),
        ("states:GetExecutionHistory", "execution:${ImagePipelineStateMachine.Name}:*"),
        ("states:StartExecution", "ImagePipelineStateMachine"),  # PATCH /images/{id}: a crops-only run
        ("logs:FilterLogEvents", "ImagePipelineStateMachineLogGroup"),  # an Express execution's history
        (  # EnableCdn: the key that signs the renditions' CloudFront URLs
            "secretsmanager:GetSecretValue",
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}-cdn-signing-key-*",
        ),
    },
    "ValidateFunction": {
        ("dynamodb:GetItem", "ImageTable"),
        ("dynamodb:UpdateItem", "ImageTable"),
        ("s3:GetObject", "OriginalBucket/*"),
        ("s3:ListBucket", "OriginalBucket"),
        ("s3:ListBucketVersions", "OriginalBucket"),  # an upload of a deleted image: all its versions go
        ("s3:DeleteObject", "OriginalBucket/*"),
        ("s3:DeleteObjectVersion", "OriginalBucket/*"),
    },
    # native decoders on untrusted bytes: reads originals, writes only the private staging prefix
    "ResizeFunction": {("s3:GetObject", "OriginalBucket/*"), ("s3:PutObject", f"WorkBucket/{STAGING}*")},
    # publishes renditions: takes the staged set, never sees an original
    "StoreFunction": {
        ("s3:GetObject", f"WorkBucket/{STAGING}*"),
        ("s3:DeleteObject", f"WorkBucket/{STAGING}*"),
        ("s3:PutObject", f"ProcessedBucket/{RENDITIONS}*"),
        ("s3:GetObject", f"ProcessedBucket/{RENDITIONS}*"),  # that retry checks the published keys (HEAD)
    },
    "MarkProcessedFunction": {
        ("dynamodb:GetItem", "ImageTable"),
        ("dynamodb:UpdateItem", "ImageTable"),
        ("s3:ListBucket", "ProcessedBucket"),
        ("s3:PutObject", f"WorkBucket/{RETIRED}*"),  # the previous version goes after a grace period, not here
    },
    "MarkFailedFunction": {
        ("dynamodb:GetItem", "ImageTable"),
        ("dynamodb:UpdateItem", "ImageTable"),
        ("s3:PutObjectTagging", "OriginalBucket/*"),
        ("s3:ListBucket", "ProcessedBucket"),  # an image deleted while its execution ran: what it stored goes
        ("s3:DeleteObject", f"ProcessedBucket/{RENDITIONS}*"),
        ("s3:DeleteObject", f"WorkBucket/{STAGING}*"),  # nothing staged outlives its execution
    },
    "ReconcilerFunction": {
        ("dynamodb:Query", "ImageTable"),
        ("dynamodb:Query", "ImageTable/index/inFlight"),
        ("dynamodb:GetItem", "ImageTable"),
        ("dynamodb:GetItem", "ImageTable/index/inFlight"),
        ("dynamodb:UpdateItem", "ImageTable"),
        ("dynamodb:UpdateItem", "ImageTable/index/inFlight"),
        ("s3:GetObject", "OriginalBucket/*"),
        ("s3:ListBucket", "OriginalBucket"),
        ("states:StartExecution", "ImagePipelineStateMachine"),
        ("states:DescribeExecution", "execution:${ImagePipelineStateMachine.Name}:*"),
        ("events:PutEvents", "CompletionEventBus"),
        ("dynamodb:UpdateItem", "UsageTable"),  # an expired upload's bytes given back to its owner
        ("s3:ListBucket", "WorkBucket"),  # retired renditions whose grace period is over
        ("s3:GetObject", f"WorkBucket/{RETIRED}*"),
        ("s3:DeleteObject", f"WorkBucket/{RETIRED}*"),
        ("s3:DeleteObject", f"ProcessedBucket/{RENDITIONS}*"),
        ("s3:ListBucket", "ProcessedBucket"),  # an execution that ended without a word: what it published goes
        ("s3:DeleteObject", f"WorkBucket/{STAGING}*"),  # and what it staged
    },
    "BackfillManifestFunction": {
        ("dynamodb:Query", "ImageTable/index/byUploadTime"),
        ("s3:PutObject", "WorkBucket/backfill/*"),  # the manifest's multipart upload (create, parts, complete)
    },
}


def test_the_decoding_function_cannot_touch_what_clients_read_and_the_publishing_one_cannot_read_originals():
    resize, store = LEAST_PRIVILEGE["ResizeFunction"], LEAST_PRIVILEGE["StoreFunction"]
    assert {g for g in resize if not g[0].endswith(("GetObject", "ListBucket"))} == {
        ("s3:PutObject", f"WorkBucket/{STAGING}*")  # its only write: no delete, nothing clients read, no markers
    }
    assert not [g for g in store if g[1].startswith("OriginalBucket")]
    # a retirement marker makes the reconciler delete renditions: only Mark processed writes one
    writers = {f for f, grants in LEAST_PRIVILEGE.items() for a, r in grants if a == "s3:PutObject" and "Work" in r}
    assert {f for f in writers if any(r == f"WorkBucket/{RETIRED}*" for a, r in LEAST_PRIVILEGE[f])} == {
        "MarkProcessedFunction"
    }
    # and the grants above are the template's (test_every_function_gets_exactly_the_actions_its_code_needs...)


def _resource_name(resource) -> str:
    """A policy resource in the short form used above: "Bucket/suffix", "Table", "execution:...:*"."""
    if "!GetAtt" in resource:
        return resource["!GetAtt"].split(".")[0]
    if "!Ref" in resource:
        return resource["!Ref"]
    sub = resource["!Sub"]
    match = re.fullmatch(r"\$\{(\w+)\.Arn\}/(.+)", sub)
    if match:
        return f"{match[1]}/{match[2]}"
    return sub.split(":states:${AWS::Region}:${AWS::AccountId}:")[-1]


def test_every_function_gets_exactly_the_actions_its_code_needs_on_its_own_resources():
    functions = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(LEAST_PRIVILEGE)
    for name in functions:
        granted = set()
        for policy in RESOURCES[name]["Properties"]["Policies"]:
            assert set(policy) == {"Statement"}, f"{name}: policy templates grant more than the code needs"
            for statement in policy["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                for action in actions:
                    assert "*" not in action, f"{name}: wildcard action {action}"
                    for resource in resources:
                        assert resource != "*", f"{name}: {action} on every resource"
                        granted.add((action, _resource_name(resource)))
        assert granted == LEAST_PRIVILEGE[name], name


def test_no_broad_managed_policies_and_star_resources_only_where_aws_requires_them():
    assert "FullAccess" not in TEMPLATE and "AdministratorAccess" not in TEMPLATE
    assert "CrudPolicy" not in TEMPLATE and "S3WritePolicy" not in TEMPLATE
    stars = [m.start() for m in re.finditer(r'Resource: "\*"', TEMPLATE)]
    assert len(stars) == 2  # each state machine's log delivery: those actions have no resource-level permissions
    for star in stars:
        assert "logs:CreateLogDelivery" in TEMPLATE[max(0, star - 600) : star]


def test_every_route_but_the_pages_files_is_signed_in_and_the_api_key_a_deploy_time_choice():
    api = RESOURCES["ImageApi"]["Properties"]
    declared = {(path, method) for path, ops in api["DefinitionBody"]["paths"].items() for method in ops}
    routed = {
        (e["Properties"]["Path"], e["Properties"]["Method"])
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e["Type"] == "Api"
    }
    assert declared == routed  # a new route cannot skip the key requirement, nor API Gateway's token check
    assert api["DefinitionBody"]["paths"]["/web/{file}"]["get"] == {}  # static files: a browser sends no key
    with_key = {"!If": ["WithApiKey", [{"cognito": [], "api_key": []}], [{"cognito": []}]]}
    without_pool = {"!If": ["WithApiKey", [{"api_key": []}], {"!Ref": "AWS::NoValue"}]}
    for path, method in declared - {("/web/{file}", "get")}:
        security = api["DefinitionBody"]["paths"][path][method]["security"]
        assert security == {"!If": ["OwnUserPool", with_key, without_pool]}, path
    # the function's own check is the one that decides: AWS's authorizer is defence in depth with the stack's pool
    scheme = api["DefinitionBody"]["components"]["securitySchemes"]["cognito"]["!If"]
    assert scheme[0] == "OwnUserPool" and scheme[1]["x-amazon-apigateway-authorizer"] == {
        "type": "cognito_user_pools",
        "providerARNs": [{"!GetAtt": "UserPool.Arn"}],
    }
    variables = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["AUTH_ISSUER"] == {
        "!If": ["OwnUserPool", {"!GetAtt": "UserPool.ProviderURL"}, {"!Ref": "AuthIssuer"}]
    }
    assert variables["AUTH_AUDIENCE"] == {"!If": ["OwnUserPool", {"!Ref": "UserPoolClient"}, {"!Ref": "AuthAudience"}]}
    client = RESOURCES["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False and "ALLOW_ADMIN_USER_PASSWORD_AUTH" not in client["ExplicitAuthFlows"]
    assert RESOURCES["UserPool"]["Properties"]["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert "Authorization" in api["Cors"]["AllowHeaders"]
    plan = RESOURCES["ApiUsagePlan"]
    assert plan["Condition"] == "WithApiKey" and plan["DependsOn"] == f"ImageApi{api['StageName']}Stage"
    assert plan["Properties"]["ApiStages"] == [{"ApiId": {"!Ref": "ImageApi"}, "Stage": api["StageName"]}]
    assert plan["Properties"]["Throttle"] and plan["Properties"]["Quota"]
    assert RESOURCES["ApiClientKeyInUsagePlan"]["Properties"]["UsagePlanId"] == {"!Ref": "ApiUsagePlan"}


def test_every_task_outlives_its_function_so_a_task_timeout_means_a_lost_invocation():
    default = DOC["Globals"]["Function"]["Timeout"]
    for name, state in LAMBDA_TASKS.items():
        function = re.fullmatch(r"\$\{(\w+)Arn\}", state["Parameters"]["FunctionName"])[1]
        timeout = RESOURCES[function]["Properties"].get("Timeout", default)
        assert timeout < state["TimeoutSeconds"] <= timeout + 10, name
        assert "States.Timeout" in {e for r in state["Retry"] for e in r["ErrorEquals"]}, name


def test_the_api_stage_has_a_throttling_ceiling_for_every_route():
    (setting,) = RESOURCES["ImageApi"]["Properties"]["MethodSettings"]
    assert setting["ResourcePath"] == "/*" and setting["HttpMethod"] == "*"
    assert setting["ThrottlingRateLimit"] == {"!Ref": "ApiThrottleRate"}
    assert setting["ThrottlingBurstLimit"] == {"!Ref": "ApiThrottleBurst"}


def test_rejected_originals_expire_by_tag_and_failed_ones_are_kept():
    from image_pipeline import workflow

    rules = {r["Id"]: r for r in RESOURCES["OriginalBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    rule = rules["expire-rejected-originals"]
    assert rule["TagFilters"] == [workflow.REJECTED_TAG] and rule["Status"] == "Enabled"
    assert (
        rule["ExpirationInDays"] == {"!Ref": "RejectedOriginalDays"}
        and DOC["Parameters"]["RejectedOriginalDays"]["Default"] == 7
    )
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1  # the version the expiry leaves behind goes too
    # no other rule expires current originals: FAILED (untagged) ones stay for reprocessing
    assert [i for i, r in rules.items() if "ExpirationInDays" in r or "ExpirationDate" in r] == [
        "expire-rejected-originals"
    ]


def test_originals_move_to_a_cheaper_class_after_a_parameters_days_and_none_expire():
    rules = {r["Id"]: r for r in RESOURCES["OriginalBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    rule = rules["move-originals-to-a-cheaper-class"]
    assert "Prefix" not in rule and "TagFilters" not in rule and "Filter" not in rule  # every original
    [transition] = rule["Transitions"]
    assert transition["StorageClass"] == {"!Ref": "OriginalsStorageClass"}
    assert rule["Status"] == {"!If": ["MoveOriginals", "Enabled", "Disabled"]}  # 0 days: kept in Standard
    assert transition["TransitionInDays"] == {"!If": ["MoveOriginals", {"!Ref": "OriginalsTransitionDays"}, 30]}
    days, storage_class = DOC["Parameters"]["OriginalsTransitionDays"], DOC["Parameters"]["OriginalsStorageClass"]
    assert days["Default"] >= 30 and storage_class["Default"] == "STANDARD_IA"  # S3's minimum for Standard-IA
    assert "STANDARD" not in storage_class["AllowedValues"] and "DEEP_ARCHIVE" not in storage_class["AllowedValues"]
    assert "ExpirationInDays" not in rule  # moved, never deleted: the source of truth for reprocessing


def test_tracing_is_one_deploy_time_choice_for_every_part_of_the_stack():
    assert DOC["Parameters"]["Tracing"]["Default"] == "Active"
    assert DOC["Globals"]["Function"]["Tracing"] == {"!Ref": "Tracing"}
    env = DOC["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACE_DISABLED"] == {"!If": ["Traced", "false", "true"]}  # the SDK sends nothing either
    assert RESOURCES["ImageApi"]["Properties"]["TracingEnabled"] == {"!If": ["Traced", True, False]}
    machines = [r for r in RESOURCES.values() if r["Type"] == "AWS::Serverless::StateMachine"]
    assert machines and all(m["Properties"]["Tracing"]["Enabled"] == {"!If": ["Traced", True, False]} for m in machines)
    assert not [
        n for n, r in RESOURCES.items() if "Tracing" in r.get("Properties", {}) and r["Type"].endswith("Function")
    ]


def test_heic_can_be_turned_off_at_deploy_time():
    assert DOC["Parameters"]["AcceptHeic"]["AllowedValues"] == ["true", "false"]
    assert DOC["Globals"]["Function"]["Environment"]["Variables"]["ACCEPT_HEIC"] == {"!Ref": "AcceptHeic"}


def test_the_only_managed_policies_are_the_ones_the_security_page_names(tmp_path):
    """SAM attaches AWS managed policies to the roles it generates; docs/security.md's least-privilege text names them."""
    transformed = tmp_path / "template.transformed.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sam_transform.py"), str(transformed)], check=True)
    resources = json.loads(transformed.read_text())["Resources"]
    managed = {
        arn.rsplit("/", 1)[-1]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Role"
        for arn in r["Properties"].get("ManagedPolicyArns", [])
    }
    assert managed == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
    security = (ROOT / "docs" / "security.md").read_text()
    assert all(name in security for name in managed)


BACKFILL = json.loads((ROOT / "statemachine" / "backfill.asl.json").read_text())


def test_the_backfill_gets_every_substitution_it_uses():
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(BACKFILL)))
    given = set(RESOURCES["BackfillStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert used == given


def test_the_backfill_lists_its_images_in_a_manifest_then_re_renders_them_in_a_distributed_map():
    states = BACKFILL["States"]
    listing = states["List the images to re-render"]
    assert listing["Resource"] == "arn:aws:states:::lambda:invoke"
    assert listing["Parameters"]["FunctionName"] == "${BackfillManifestFunctionArn}"
    # the run's name keys its manifest; images uploaded after the run started are left alone
    assert listing["Parameters"]["Payload"] == {
        "run.$": "$$.Execution.Name",
        "before.$": "$$.Execution.StartTime",
        "manifest.$": "$.manifest",
    }
    assert listing["ResultPath"] == "$.manifest" and set(listing["ResultSelector"]) >= {"done.$", "next.$", "count.$"}
    # a library larger than one call: the next call goes on from where the last stopped, until done
    more, empty = states["Listed them all?"]["Choices"]
    assert more == {"Variable": "$.manifest.done", "BooleanEquals": False, "Next": "List the images to re-render"}
    assert empty["Next"] == "Nothing to re-render" and states["Listed them all?"]["Default"] == "Re-render each image"

    mapped = states["Re-render each image"]
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert mapped["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.manifest.bucket", "Key.$": "$.manifest.key"},
    }
    assert mapped["MaxConcurrencyPath"] == "$.settings.concurrency"
    assert mapped["ToleratedFailurePercentagePath"] == "$.settings.toleratedFailurePercentage"
    assert mapped["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert mapped["ResultWriter"]["Parameters"] == {
        "Bucket.$": "$.manifest.bucket",
        "Prefix.$": "$.manifest.resultsPrefix",
    }
    settings = states["Begin"]["Parameters"]["settings"]
    assert settings == {
        "concurrency.$": "States.StringToJson('${BackfillConcurrency}')",
        "toleratedFailurePercentage.$": "States.StringToJson('${BackfillToleratedFailurePercentage}')",
    }
    # each image goes through the image pipeline as a reprocess (its S3 event's shape), and the child waits on it
    (task,) = mapped["ItemProcessor"]["States"].values()
    assert task["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
    given = task["Parameters"]["Input"]
    assert given["reprocess"] is True and given["detail-type"] == "Object Created"
    assert given["detail"]["object"] == {"key.$": "$.key", "etag.$": "$.etag"}
    assert mapped["ItemSelector"] == {
        "imageId.$": "$$.Map.Item.Value.imageId",
        "key.$": "$$.Map.Item.Value.key",
        "etag.$": "$$.Map.Item.Value.etag",
        "scope.$": "$$.Map.Item.Value.scope",  # the whole set, or its crops only (backfill.write_manifest)
    }
    assert given["scope.$"] == "$.scope"
    # a failed image fails its child execution: it counts against the threshold and shows in the results
    assert "Catch" not in task
    assert task["TimeoutSeconds"] > 3600  # the pipeline's own tasks end within the hour


def test_the_backfill_parameters_and_the_manifest_functions_time():
    parameters = DOC["Parameters"]
    assert "BackfillPageSize" not in parameters and "BackfillPagesPerExecution" not in parameters
    tolerated = parameters["BackfillToleratedFailurePercentage"]
    assert (tolerated["Default"], tolerated["MinValue"], tolerated["MaxValue"]) == (5, 0, 100)
    # a call stops listing 30 s before its function's timeout; its task outlives the function
    timeout = RESOURCES["BackfillManifestFunction"]["Properties"]["Timeout"]
    assert timeout < BACKFILL["States"]["List the images to re-render"]["TimeoutSeconds"] <= timeout + 10
    from image_pipeline import backfill

    assert backfill.MARGIN_SECONDS < timeout


def test_every_custom_error_the_backfill_retries_is_a_named_exception():
    from image_pipeline import errors

    names = {e for s in BACKFILL["States"].values() for r in s.get("Retry", []) for e in r["ErrorEquals"]}
    custom = {n for n in names if not n.startswith(("States.", "Lambda."))}
    assert custom == {"TransientAWSError"}
    assert all(issubclass(getattr(errors, name), Exception) for name in custom)


# What the backfill state machine calls, and on what (its Distributed Map's child executions are its own).
BACKFILL_PRIVILEGE = {
    ("lambda:InvokeFunction", "BackfillManifestFunction"),
    ("s3:GetObject", "WorkBucket/backfill/*"),  # ItemReader: the manifest
    ("s3:PutObject", "WorkBucket/backfill/*"),  # ResultWriter: the results (multipart uploads)
    ("s3:ListMultipartUploadParts", "WorkBucket/backfill/*"),
    ("s3:AbortMultipartUpload", "WorkBucket/backfill/*"),
    ("states:StartExecution", "ImagePipelineStateMachine"),
    ("states:StartExecution", "stateMachine:${AWS::StackName}-backfill"),
    ("states:DescribeExecution", "execution:${ImagePipelineStateMachine.Name}:*"),
    ("states:StopExecution", "execution:${ImagePipelineStateMachine.Name}:*"),
    ("states:DescribeExecution", "execution:${AWS::StackName}-backfill/*"),
    ("states:StopExecution", "execution:${AWS::StackName}-backfill/*"),
    # .sync learns of a child's end through this managed rule
    (
        "events:PutTargets",
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule",
    ),
    (
        "events:PutRule",
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule",
    ),
    (
        "events:DescribeRule",
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule",
    ),
}


def test_the_backfill_state_machine_gets_exactly_what_it_calls():
    granted = set()
    for policy in RESOURCES["BackfillStateMachine"]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if actions[0].startswith("logs:"):  # log delivery: no resource-level permissions (the star test above)
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            granted |= {(action, _resource_name(resource)) for action in actions for resource in resources}
    assert granted == BACKFILL_PRIVILEGE


def test_the_table_indexes_hold_no_hot_status_key_and_an_old_stack_can_upgrade_in_two_deploys():
    table = RESOURCES["ImageTable"]["Properties"]
    plain = {ix["IndexName"]: ix for ix in table["GlobalSecondaryIndexes"] if "IndexName" in ix}
    assert set(plain) == {"inFlight", "byUploadTime", "byOwner"}
    # an owner's listing has a partition of its own: no key shared by every owner's writes
    assert [k["AttributeName"] for k in plain["byOwner"]["KeySchema"]] == ["listedOwner", "uploadTimestamp"]
    assert plain["byOwner"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}  # a status change does not write it
    in_flight = plain["inFlight"]
    assert [k["AttributeName"] for k in in_flight["KeySchema"]] == ["inFlight", "updatedAt"]
    # what the reconciler reads, nothing it does not: a write of other attributes does not write this index
    assert in_flight["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["executionArn", "originalKey"]}
    # KeepStatusIndex=true keeps the old index (first deploy of an upgrade: CloudFormation adds inFlight alone)
    (kept,) = [ix["!If"] for ix in table["GlobalSecondaryIndexes"] if "!If" in ix]
    assert kept[0] == "KeepsStatusIndex" and kept[1]["IndexName"] == "byStatus" and kept[2] == {"!Ref": "AWS::NoValue"}
    (status_attribute,) = [a["!If"] for a in table["AttributeDefinitions"] if "!If" in a]
    assert status_attribute[0] == "KeepsStatusIndex" and status_attribute[1]["AttributeName"] == "status"
    assert DOC["Parameters"]["KeepStatusIndex"]["Default"] == "false"


def test_xray_sampling_is_a_parameter_with_rules_for_the_api_and_the_workflow():
    parameter = DOC["Parameters"]["XRaySamplingRate"]
    assert parameter["Default"] == ""  # the account's rules decide unless a rate is given
    pattern = re.compile(parameter["AllowedPattern"])
    assert all(pattern.fullmatch(v) for v in ("", "0", "0.05", "1", "1.0"))
    assert not any(pattern.fullmatch(v) for v in ("5%", "1.5", "-0.1", "abc"))
    for name, service_type in (
        ("ApiSamplingRule", "AWS::ApiGateway::Stage"),
        ("WorkflowSamplingRule", "AWS::StepFunctions::StateMachine"),
    ):
        rule = RESOURCES[name]
        assert rule["Type"] == "AWS::XRay::SamplingRule" and rule["Condition"] == "OwnSampling"
        sampling = rule["Properties"]["SamplingRule"]
        assert sampling["ServiceType"] == service_type and sampling["FixedRate"] == {"!Ref": "XRaySamplingRate"}
        assert sampling["ReservoirSize"] == 1 and sampling["Version"] == 1
    assert (
        "restapis/${ImageApi}/stages/prod"
        in RESOURCES["ApiSamplingRule"]["Properties"]["SamplingRule"]["ResourceARN"]["!Sub"]
    )
    assert RESOURCES["WorkflowSamplingRule"]["Properties"]["SamplingRule"]["ResourceARN"] == {
        "!Ref": "ImagePipelineStateMachine"
    }


def test_the_cdn_serves_only_urls_the_stacks_key_signed():
    distribution = RESOURCES["RenditionsDistribution"]["Properties"]["DistributionConfig"]
    assert distribution["DefaultCacheBehavior"]["TrustedKeyGroups"] == [{"!Ref": "RenditionsKeyGroup"}]
    assert RESOURCES["RenditionsKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"] == [
        {"!Ref": "RenditionsSigningKey"}
    ]
    key = RESOURCES["RenditionsSigningKey"]["Properties"]["PublicKeyConfig"]
    assert key["EncodedKey"] == {"!Ref": "CdnPublicKey"}
    rule = DOC["Rules"]["SignedCdnNeedsAKey"]
    assert rule["RuleCondition"] == {"!Equals": [{"!Ref": "EnableCdn"}, "true"]}
    variables = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CDN_KEY_PAIR_ID"] == {"!If": ["WithCdn", {"!Ref": "RenditionsSigningKey"}, ""]}
