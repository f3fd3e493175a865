"""Static checks of template.yaml and the state machine (what the local cloud cannot enforce)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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


def test_every_task_retries_transient_errors_with_jitter_and_is_caught():
    tasks = {name: s for name, s in ASL["States"].items() if s["Type"] == "Task"}
    assert set(tasks) == {"Validate image", "Resize image", "Store rendition", "Mark processed", "Record failure"}
    for name, state in tasks.items():
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert TRANSIENT <= retried, name
        assert "InvalidImageError" not in retried and "States.ALL" not in retried  # bad input is never retried
        for retry in state["Retry"]:
            assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 6, name
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name


def test_failures_are_recorded_before_the_execution_fails():
    for name in ("Validate image", "Resize image", "Store rendition", "Mark processed"):
        assert ASL["States"][name]["Catch"][0]["Next"] == "Record failure"
    assert ASL["States"]["Record failure"]["Next"] == "Which failure?"
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
    assert len(functions) == 7
    for fn in functions:
        assert re.search(rf"LogGroupName: !Sub /aws/lambda/\${{{fn}}}\n      RetentionInDays:", TEMPLATE), fn


def test_buckets_block_public_access_and_encrypt():
    assert TEMPLATE.count("BlockPublicPolicy: true") == 2
    assert TEMPLATE.count("SSEAlgorithm: AES256") == 2


def test_buckets_deny_insecure_transport():
    assert TEMPLATE.count('aws:SecureTransport: "false"') == 2
    assert TEMPLATE.count("Sid: DenyInsecureTransport") == 2


def test_no_broad_managed_policies_and_star_resources_only_where_aws_requires_them():
    assert "FullAccess" not in TEMPLATE and "AdministratorAccess" not in TEMPLATE
    stars = [m.start() for m in re.finditer(r'Resource: "\*"', TEMPLATE)]
    assert len(stars) == 1  # Step Functions log delivery: those actions have no resource-level permissions
    assert "logs:CreateLogDelivery" in TEMPLATE[max(0, stars[0] - 600) : stars[0]]
