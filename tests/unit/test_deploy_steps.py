"""scripts/deploy_steps.py: when scripts/deploy_local.sh may skip `sam build` and `sam package`, and what it leaves
in the web bucket. A skip on a stale build would deploy old code, so each input that matters is changed here once."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import boto3
import pytest

from tests.unit.conftest import ROOT

spec = importlib.util.spec_from_file_location("deploy_steps", ROOT / "scripts" / "deploy_steps.py")
steps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(steps)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "template.yaml").write_text("Resources: {}\n")
    for rel in ("functions/api/app.py", "layers/shared/requirements.txt", "statemachine/a.asl.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    build = tmp_path / ".aws-sam" / "build"
    (build / "ApiFunction").mkdir(parents=True)
    (build / "ApiFunction" / "app.py").write_text("built")
    (build / "template.yaml").write_text("built template")
    return tmp_path


def test_the_sources_hash_follows_every_build_input_and_nothing_else(project: Path, monkeypatch) -> None:
    first = steps.sources(project)
    (project / "functions" / "api" / "__pycache__").mkdir()
    (project / "functions" / "api" / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\0")
    (project / "README.md").write_text("not an input")
    assert steps.sources(project) == first
    for rel in ("functions/api/app.py", "layers/shared/requirements.txt", "statemachine/a.asl.json", "template.yaml"):
        before = steps.sources(project)
        (project / rel).write_text((project / rel).read_text() + " changed")
        assert steps.sources(project) != before, rel
    (project / "functions" / "new.py").write_text("")
    before = steps.sources(project)
    monkeypatch.setenv("LAMBDA_ARCH", "arm64")
    assert steps.sources(project) != before


def test_the_build_fingerprint_is_pathlibs_walk_of_files_in_path_order(project: Path) -> None:
    build = project / ".aws-sam" / "build"
    (build / "a-c").write_text("x")  # '-' sorts before '/' as a string, after "a" as a path part
    (build / "a").mkdir(exist_ok=True)
    (build / "a" / "b").write_text("y")
    (build / "link").symlink_to(build / "a" / "b")  # a file through a symlink counts, a dangling one does not
    (build / "dangling").symlink_to(build / "nowhere")
    digest = hashlib.sha256()
    for path in sorted(p for p in build.rglob("*") if p.is_file()):  # what the fingerprint was made of before
        rel = path.relative_to(build).as_posix()
        if rel == "template.yaml":
            digest.update(b"template " + hashlib.sha256(path.read_bytes()).digest())
        else:
            st = path.stat()
            digest.update(f"{rel} {st.st_size} {st.st_mtime_ns}\n".encode())
    assert steps.fingerprint(build) == digest.hexdigest()  # a checkout's build stamp stays valid


def test_the_build_fingerprint_sees_a_rebuilt_file_and_a_changed_template_but_not_a_rewritten_one(
    project: Path,
) -> None:
    build = project / ".aws-sam" / "build"
    first = steps.fingerprint(build)
    (build / "template.yaml").write_text("built template")  # sam build --cached rewrites it, same content
    assert steps.fingerprint(build) == first
    (build / "template.yaml").write_text("another template")
    assert steps.fingerprint(build) != first
    second = steps.fingerprint(build)
    os.utime(build / "ApiFunction" / "app.py", ns=(1, 1))  # rebuilt: same size, new mtime
    assert steps.fingerprint(build) != second


def test_a_packaged_template_is_reused_only_for_its_build_and_only_while_the_cloud_has_its_artifacts(
    tmp_path: Path, aws_env
) -> None:
    s3 = boto3.client("s3")
    bucket = "sam-artifacts-test"
    packaged = tmp_path / "packaged.yaml"
    packaged.write_text(f"CodeUri: s3://{bucket}/sam/abc\nContentUri: s3://{bucket}/sam/def\n")
    (tmp_path / "packaged.yaml.fingerprint").write_text("fp1\n")

    assert not steps.packaged_current(packaged, "fp1", bucket)  # a new local cloud: no bucket yet (created)
    s3.head_bucket(Bucket=bucket)
    assert not steps.packaged_current(packaged, "fp1", bucket)  # the artifacts are not there
    s3.put_object(Bucket=bucket, Key="sam/abc", Body=b"zip")
    assert not steps.packaged_current(packaged, "fp1", bucket)  # one of two
    s3.put_object(Bucket=bucket, Key="sam/def", Body=b"zip")
    assert steps.packaged_current(packaged, "fp1", bucket)
    assert not steps.packaged_current(packaged, "fp2", bucket)  # another build
    (tmp_path / "packaged.yaml.fingerprint").unlink()
    assert not steps.packaged_current(packaged, "fp1", bucket)  # a package that did not finish


def test_prepare_says_what_sam_still_has_to_do(project: Path, aws_env) -> None:
    """deploy_local.sh runs `sam build` on "build", `sam package` on "package FINGERPRINT", neither otherwise."""
    s3 = boto3.client("s3")
    bucket = "sam-artifacts-test"
    packaged, kept = project / "lane" / "packaged.yaml", project / ".aws-sam" / "package"
    packaged.parent.mkdir()
    assert steps.prepare(project, packaged, kept, bucket) == "build"  # never built here
    stamp = project / ".aws-sam" / "build.inputs"
    stamp.write_text(steps.build_state(project) + "\n")
    wanted = stamp.read_text().split()[1]
    assert steps.prepare(project, packaged, kept, bucket) == f"package {wanted}"  # built, never packaged

    packaged.write_text(f"CodeUri: s3://{bucket}/sam/abc\n")  # what `sam package` leaves
    s3.put_object(Bucket=bucket, Key="sam/abc", Body=b"zip")
    (project / "lane" / "packaged.yaml.fingerprint").write_text(wanted + "\n")
    steps.keep_package(packaged, wanted, kept)
    assert steps.prepare(project, packaged, kept, bucket) == "current"

    s3.delete_object(Bucket=bucket, Key="sam/abc")  # a new local cloud of the checkout
    assert steps.prepare(project, packaged, kept, bucket) == "restored"
    assert s3.get_object(Bucket=bucket, Key="sam/abc")["Body"].read() == b"zip"

    (project / "functions" / "api" / "app.py").write_text("changed")
    assert steps.prepare(project, packaged, kept, bucket) == "build"


def test_the_web_bucket_gets_the_pages_files_with_their_types_and_loses_the_rest(tmp_path: Path, aws_env) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="web")
    s3.put_object(Bucket="web", Key="old.js", Body=b"gone")
    web = tmp_path / "web"
    shutil.copytree(ROOT / "web", web)
    steps.sync_web(s3, "web", web)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="web")["Contents"]}
    assert listed == {p.name for p in web.iterdir()}
    assert s3.head_object(Bucket="web", Key="index.html")["ContentType"] == "text/html"
    assert s3.head_object(Bucket="web", Key="app.js")["ContentType"] in ("text/javascript", "application/javascript")
    assert s3.get_object(Bucket="web", Key="style.css")["Body"].read() == (web / "style.css").read_bytes()


def test_a_kept_package_is_restored_into_another_cloud_only_for_its_own_build(tmp_path: Path, aws_env) -> None:
    s3 = boto3.client("s3")
    bucket = "sam-artifacts-test"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="sam/abc", Body=b"layer zip")
    s3.put_object(Bucket=bucket, Key="sam/def", Body=b"function zip")
    s3.put_object(Bucket=bucket, Key="sam/ghi", Body=b"state machine definition")
    first = tmp_path / "lane-a" / "packaged.yaml"
    first.parent.mkdir()
    template = (
        f"CodeUri: s3://{bucket}/sam/abc\nContentUri: s3://{bucket}/sam/def\nLayer: s3://{bucket}/sam/abc\n"
        f"DefinitionUri:\n  Bucket: {bucket}\n  Key: sam/ghi\nEvents:\n  Bucket: !Ref Original\n"
    )
    first.write_text(template)
    kept = tmp_path / "package"
    steps.keep_package(first, "fp1", kept)

    # another local cloud: an empty artifacts bucket
    for key in ("sam/abc", "sam/def", "sam/ghi"):
        s3.delete_object(Bucket=bucket, Key=key)
    second = tmp_path / "lane-b" / "packaged.yaml"
    second.parent.mkdir()
    assert not steps.restore_package(kept, second, "fp2", bucket)  # another build: nothing restored
    assert not second.exists()
    assert not steps.restore_package(kept, second, "fp1", "another-bucket")  # the template names another bucket
    assert steps.restore_package(kept, second, "fp1", bucket)
    assert second.read_text() == template
    assert steps.packaged_current(second, "fp1", bucket)  # the fingerprint is written, the artifacts are there
    assert s3.get_object(Bucket=bucket, Key="sam/abc")["Body"].read() == b"layer zip"
    assert s3.get_object(Bucket=bucket, Key="sam/def")["Body"].read() == b"function zip"
    assert s3.get_object(Bucket=bucket, Key="sam/ghi")["Body"].read() == b"state machine definition"

    (kept / "objects" / "sam" / "def").unlink()  # a kept package missing an artifact is not used
    s3.delete_object(Bucket=bucket, Key="sam/def")
    second.unlink()
    assert not steps.restore_package(kept, second, "fp1", bucket)


SMALL_TEMPLATE = """AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Sizes:
    Type: String
    Default: '200,400'
  Formats:
    Type: String
    Default: jpeg
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub '${AWS::StackName}-${Formats}'
"""


def test_a_given_parameter_is_set_and_one_not_given_keeps_its_previous_value_as_sam_deploy_does() -> None:
    names = ["Sizes", "Formats", "New"]
    assert steps.template_parameters(SMALL_TEMPLATE) == ["Sizes", "Formats"]  # short-form intrinsics are no obstacle
    assert steps.change_set_parameters(names, {"Sizes": "800"}, None) == [  # a create: the rest take their defaults
        {"ParameterKey": "Sizes", "ParameterValue": "800"}
    ]
    assert steps.change_set_parameters(names, {"Sizes": "800"}, ["Sizes", "Formats"]) == [
        {"ParameterKey": "Sizes", "ParameterValue": "800"},
        {"ParameterKey": "Formats", "UsePreviousValue": True},  # "New" is new to the stack: its default applies
    ]
    with pytest.raises(steps.DeployError, match="no parameter Sise"):
        steps.change_set_parameters(names, {"Sise": "800"}, None)


def test_a_deploy_creates_then_updates_the_stack_through_a_change_set(
    tmp_path: Path, aws_env, capsys, monkeypatch
) -> None:
    s3, cfn = boto3.client("s3"), boto3.client("cloudformation")
    s3.create_bucket(Bucket="artifacts")
    packaged = tmp_path / "packaged.yaml"
    # over CloudFormation's 51,200-byte body limit: it goes by the artifacts bucket, as sam deploy does
    packaged.write_text(SMALL_TEMPLATE + "".join(f"# padding line {i:05d} {'x' * 40}\n" for i in range(1100)))

    assert steps.deploy("small", packaged, "artifacts", {"Formats": "webp"}) == "created"
    stack = cfn.describe_stacks(StackName="small")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Sizes": "200,400",
        "Formats": "webp",
    }
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]][0].startswith("small/")

    assert steps.deploy("small", packaged, "artifacts", {"Sizes": "800"}) == "updated"
    stack = cfn.describe_stacks(StackName="small")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {"Sizes": "800", "Formats": "webp"}
    assert boto3.client("sqs").get_queue_url(QueueName="small-webp")  # made by the create
    assert "small: update" in capsys.readouterr().err

    monkeypatch.setenv("DEPLOY_DEFAULTS", "1")  # what the tests set: the defaults, whatever the stack had
    assert steps.deploy("small", packaged, "artifacts", {"Sizes": "400"}) == "updated"
    stack = cfn.describe_stacks(StackName="small")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {"Sizes": "400", "Formats": "jpeg"}
