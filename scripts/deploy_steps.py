"""The steps of scripts/deploy_local.sh that are AWS calls, in one process (each `aws` command starts a Python of its
own: ~0.8 s of CPU; a deploy made six of them).

  deploy_steps.py build-state ROOT
      "SOURCES BUILD": a hash of what `sam build` reads (template.yaml, functions/, layers/, statemachine/, LAMBDA_ARCH)
      and one of what `sam package` reads from .aws-sam/build: every file's path, size and mtime, and the content of
      the template (`sam build --cached` rewrites it at every build, and keeps the mtimes of everything it did not
      rebuild). When both equal what the last build left, `sam build` (~4 s, copying the layer from its cache) can be
      skipped.
  deploy_steps.py packaged-current PACKAGED FINGERPRINT BUCKET
      Exit 0 if PACKAGED was packaged from a build with FINGERPRINT and every artifact it names (s3:// URIs, and the
      Bucket and Key of a state machine's DefinitionUri) is in the local cloud
      (a restarted local cloud has none), so `sam package` (zipping the 116 MB layer: ~6 s of CPU) can be skipped;
      creates BUCKET if it is missing (exit 1 then).
  deploy_steps.py prepare ROOT PACKAGED KEPT BUCKET
      build-state, packaged-current and restore-package in one process (each process costs ~0.6 s of CPU; a suite
      makes a dozen deploys).
      Prints what `sam` still has to do: "build" when the build's inputs changed since the last build (.aws-sam/
      build.inputs); else "current" when PACKAGED is this build's package and its artifacts are in the local cloud,
      "restored" when restore-package put them there, or "package FINGERPRINT" when `sam package` must make them.
  deploy_steps.py keep-package PACKAGED FINGERPRINT KEPT
      After `sam package`: copies PACKAGED and the artifacts it names out of the local cloud into the folder KEPT
      (.aws-sam/package: one per checkout), so that the next local cloud of this checkout (`make test` runs three)
      can have the same package without zipping the layer again.
  deploy_steps.py restore-package KEPT PACKAGED FINGERPRINT BUCKET
      Exit 0 if KEPT holds the package of the build FINGERPRINT: its artifacts are now in BUCKET of this local cloud
      and its template at PACKAGED (with the fingerprint); exit 1, changing nothing, otherwise.
  deploy_steps.py deploy STACK PACKAGED BUCKET OUTPUTS_FILE WEB_DIR [Param=Value ...]
      Creates or updates STACK from the packaged template PACKAGED through a CloudFormation change set, as `sam deploy`
      does (the same calls; the SAM CLI's own start-up cost ~2.5 s of CPU per deploy, a dozen deploys per `make
      test`): the template goes to BUCKET when it is over CloudFormation's 51,200-byte body limit; a parameter given
      is set, one not given keeps the stack's previous value (the template's default on a create, or with
      DEPLOY_DEFAULTS=1, which the tests set: they test the defaults, whatever a benchmark deployed); an empty change
      set is not an error; a failed deploy prints its failed resources' reasons. Then does what `finish` does.
  deploy_steps.py finish STACK OUTPUTS_FILE WEB_DIR
      Puts the web page's files in the stack's web bucket (what `aws s3 sync --delete` does), writes the stack's
      outputs (with the local API URL and the API key's value, if any) to OUTPUTS_FILE and prints the main ones.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import shutil
import stat
import sys
import time
from pathlib import Path

PRINTED = (
    "LocalApiUrl",
    "LocalWebUrl",
    "ApiUrl",
    "OriginalBucketName",
    "ProcessedBucketName",
    "ImageTableName",
    "ImagePipelineStateMachineArn",
    "ReconcilerFunctionName",
    "ApiKey",
)


BUILD_INPUTS = ("template.yaml", "functions", "layers", "statemachine")


def sources(root: Path) -> str:
    digest = hashlib.sha256(f"LAMBDA_ARCH={os.environ.get('LAMBDA_ARCH', '')}\n".encode())
    for name in BUILD_INPUTS:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(
                path.relative_to(root).as_posix().encode() + b" " + hashlib.sha256(path.read_bytes()).digest()
            )
    return digest.hexdigest()


def fingerprint(build_dir: Path) -> str:
    """What the build made: each file's path, size and mtime (the template's content). ``os.walk`` and one ``stat`` per
    file, in the order of their paths' parts: the digest pathlib's ``rglob`` gave, in a fifth of the CPU (0.12 s
    instead of 0.55 s for the ~3,800 files of a build, at every deploy)."""
    entries = []
    for top, _dirs, files in os.walk(build_dir):
        rel_top = os.path.relpath(top, build_dir)
        for name in files:
            path = os.path.join(top, name)
            try:
                st = os.stat(path)  # follows a symlink, as Path.is_file did
            except OSError:
                continue  # a dangling symlink
            if stat.S_ISREG(st.st_mode):
                rel = name if rel_top == "." else f"{rel_top}/{name}"
                entries.append((rel.split("/"), rel, path, st))
    entries.sort(key=lambda entry: entry[0])
    digest = hashlib.sha256()
    for _parts, rel, path, st in entries:
        if rel == "template.yaml":
            digest.update(b"template " + hashlib.sha256(Path(path).read_bytes()).digest())
        else:
            digest.update(f"{rel} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _exists(s3, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def artifacts(template: str) -> list[tuple[str, str]]:
    """(bucket, key) of every artifact a packaged template names, in order, once each."""
    uris = re.findall(r"s3://([^/\s'\"]+)/([^\s'\"]+)", template)  # CodeUri, ContentUri
    locations = re.findall(r"^\s*Bucket: ([\w.-]+)\s*\n\s*Key: ([\w./-]+)\s*$", template, re.M)  # DefinitionUri
    return list(dict.fromkeys(uris + locations))


def packaged_current(packaged: Path, wanted: str, bucket: str) -> bool:
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
        return False
    stamp = packaged.with_name(packaged.name + ".fingerprint")
    if not packaged.exists() or not stamp.exists() or stamp.read_text().strip() != wanted:
        return False
    named = artifacts(packaged.read_text())
    return bool(named) and all(_exists(s3, b, k) for b, k in named)


def keep_package(packaged: Path, wanted: str, kept: Path) -> None:
    import boto3

    s3 = boto3.client("s3")
    partial = kept.with_name(kept.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for bucket, key in artifacts(packaged.read_text()):
        dest = partial / "objects" / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(dest))
    partial.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(packaged, partial / "packaged.yaml")
    (partial / "fingerprint").write_text(wanted + "\n")  # last: a folder without it is never used
    shutil.rmtree(kept, ignore_errors=True)
    partial.rename(kept)


def restore_package(kept: Path, packaged: Path, wanted: str, bucket: str) -> bool:
    stamp = kept / "fingerprint"
    if not stamp.is_file() or stamp.read_text().strip() != wanted:
        return False
    template = (kept / "packaged.yaml").read_text()
    named = artifacts(template)
    if not named or any(b != bucket or not (kept / "objects" / k).is_file() for b, k in named):
        return False
    import boto3

    s3 = boto3.client("s3")
    for _, key in named:
        if not _exists(s3, bucket, key):
            s3.upload_file(str(kept / "objects" / key), bucket, key)
    packaged.write_text(template)
    packaged.with_name(packaged.name + ".fingerprint").write_text(wanted + "\n")
    return True


def build_state(root: Path) -> str:
    build_dir = root / ".aws-sam" / "build"
    return f"{sources(root)} {fingerprint(build_dir) if build_dir.is_dir() else 'none'}"


def prepare(root: Path, packaged: Path, kept: Path, bucket: str) -> str:
    stamp = root / ".aws-sam" / "build.inputs"
    built = stamp.read_text().strip() if stamp.is_file() else None
    if built != build_state(root):
        return "build"
    wanted = built.split()[1]
    if packaged_current(packaged, wanted, bucket):
        return "current"
    packaged.with_name(packaged.name + ".fingerprint").unlink(missing_ok=True)
    if restore_package(kept, packaged, wanted, bucket):
        return "restored"
    return f"package {wanted}"


def sync_web(s3, bucket: str, web_dir: Path) -> None:
    files = {p.relative_to(web_dir).as_posix(): p for p in web_dir.rglob("*") if p.is_file()}
    for key, path in files.items():
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type)
    stale = [
        {"Key": o["Key"]}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
        if o["Key"] not in files
    ]
    if stale:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale})


def finish(stack: str, outputs_file: Path, web_dir: Path) -> None:
    import boto3

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if outputs.get("WebBucketName"):
        sync_web(boto3.client("s3"), outputs["WebBucketName"], web_dir)
    outputs["LocalApiUrl"] = f"{endpoint}/restapis/{outputs['RestApiId']}/prod/_user_request_"
    outputs["LocalWebUrl"] = outputs["LocalApiUrl"] + "/web/index.html"
    if outputs.get("ApiKeyId"):  # send it as header x-api-key
        outputs["ApiKey"] = boto3.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)[
            "value"
        ]
    outputs_file.write_text(json.dumps(outputs, indent=2))
    for key in PRINTED:
        if key in outputs:
            print(f"{key:30} {outputs[key]}")


TEMPLATE_BODY_LIMIT = 51_200  # bytes: CloudFormation's limit for TemplateBody; larger ones go by TemplateURL
POLL = 0.25  # s between looks at a change set or a stack (sam deploy: SAM_CLI_POLL_DELAY, 5 s unless set)
EMPTY_CHANGE_SET = ("The submitted information didn't contain changes", "No updates are to be performed")


class DeployError(Exception):
    """A deploy that did not complete; the message says why."""


def template_parameters(template: str) -> list[str]:
    """The names of a (packaged) template's parameters; its short-form intrinsics (!Ref, !Sub, ...) are not read."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return list((yaml.load(template, Loader=Loader) or {}).get("Parameters") or {})


def change_set_parameters(names: list[str], overrides: dict[str, str], previous: list[str] | None) -> list[dict]:
    """sam deploy's rule: a parameter given takes that value; one not given keeps the stack's previous value, when the
    stack exists (PREVIOUS, its parameters' names) and had it; otherwise the template's default applies."""
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise DeployError(f"the template has no parameter {', '.join(unknown)}")
    values: list[dict] = []
    for name in names:
        if name in overrides:
            values.append({"ParameterKey": name, "ParameterValue": overrides[name]})
        elif previous is not None and name in previous:
            values.append({"ParameterKey": name, "UsePreviousValue": True})
    return values


def _stack(cfn, stack: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def _failure_reasons(cfn, stack: str, since: float) -> list[str]:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [
        f"{e['LogicalResourceId']} ({e.get('ResourceType', '')}): {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in reversed(events)
        if e["ResourceStatus"].endswith("FAILED") and e["Timestamp"].timestamp() >= since - 1
    ]


def deploy(stack: str, packaged: Path, bucket: str, overrides: dict[str, str], timeout: float = 600) -> str:
    """Create or update STACK from PACKAGED; returns what happened ("created", "updated", "no changes")."""
    import boto3
    from botocore.exceptions import ClientError

    cfn, s3 = boto3.client("cloudformation"), boto3.client("s3")
    body = packaged.read_text()
    source: dict[str, str] = {"TemplateBody": body}
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        key = f"{stack}/{hashlib.md5(body.encode()).hexdigest()}.template"  # noqa: S324 (a name, as sam deploy's)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        source = {"TemplateURL": f"{s3.meta.endpoint_url}/{bucket}/{key}"}
    existing = _stack(cfn, stack)
    kind = "UPDATE" if existing and existing["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
    previous = [p["ParameterKey"] for p in existing.get("Parameters", [])] if kind == "UPDATE" and existing else None
    if os.environ.get("DEPLOY_DEFAULTS") == "1":  # the tests: the template's defaults, whatever was deployed before
        previous = None
    started = time.time()
    try:
        change_set = cfn.create_change_set(
            StackName=stack,
            ChangeSetName=f"local-deploy-{int(started * 1000)}",
            ChangeSetType=kind,
            Parameters=change_set_parameters(template_parameters(body), overrides, previous),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            Tags=[],
            Description="Created by scripts/deploy_steps.py (what sam deploy does)",
            **source,
        )["Id"]
    except ClientError as e:
        raise DeployError(str(e)) from e
    deadline = started + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set, StackName=stack)
        if described["Status"] == "CREATE_COMPLETE":
            break
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            if any(text in reason for text in EMPTY_CHANGE_SET):
                return "no changes"
            raise DeployError(f"change set failed: {reason}")
        if time.time() > deadline:
            raise DeployError(f"change set still {described['Status']} after {timeout:.0f} s")
        time.sleep(POLL)
    changes = [c["ResourceChange"] for c in described.get("Changes", [])]
    counts = {a: sum(1 for c in changes if c["Action"] == a) for a in ("Add", "Modify", "Remove")}
    print(f"{stack}: {kind.lower()}, " + ", ".join(f"{n} {a.lower()}" for a, n in counts.items()), file=sys.stderr)
    try:
        cfn.execute_change_set(ChangeSetName=change_set, StackName=stack, DisableRollback=False)
    except ClientError as e:
        raise DeployError(str(e)) from e
    while True:
        status = (_stack(cfn, stack) or {}).get("StackStatus", "GONE")
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.time() > deadline:
            raise DeployError(f"stack still {status} after {timeout:.0f} s")
        time.sleep(POLL)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        reasons = _failure_reasons(cfn, stack, started) if status != "GONE" else []
        raise DeployError(f"stack {stack} ended {status}" + "".join(f"\n  {r}" for r in reasons))
    return "created" if kind == "CREATE" else "updated"


def main(argv: list[str]) -> int:
    match argv:
        case ["build-state", root]:
            print(build_state(Path(root)))
        case ["prepare", root, packaged, kept, bucket]:
            print(prepare(Path(root), Path(packaged), Path(kept), bucket))
        case ["packaged-current", packaged, wanted, bucket]:
            return 0 if packaged_current(Path(packaged), wanted, bucket) else 1
        case ["keep-package", packaged, wanted, kept]:
            keep_package(Path(packaged), wanted, Path(kept))
        case ["restore-package", kept, packaged, wanted, bucket]:
            return 0 if restore_package(Path(kept), Path(packaged), wanted, bucket) else 1
        case ["deploy", stack, packaged, bucket, outputs_file, web_dir, *params]:
            if bad := [p for p in params if "=" not in p]:
                print(f"parameters are Name=Value, not {' '.join(bad)}", file=sys.stderr)
                return 2
            try:
                print(
                    f"{stack}: {deploy(stack, Path(packaged), bucket, dict(p.split('=', 1) for p in params))}",
                    file=sys.stderr,
                )
            except DeployError as e:
                print(f"deploy of {stack} failed: {e}", file=sys.stderr)
                if "Stage already exists" in str(e):
                    print(
                        "LocalStack cannot update a stack whose API definition changed (it creates the new stage before"
                        " deleting the old one). Start fresh: make down && make deploy",
                        file=sys.stderr,
                    )
                return 1
            finish(stack, Path(outputs_file), Path(web_dir))
        case ["finish", stack, outputs_file, web_dir]:
            finish(stack, Path(outputs_file), Path(web_dir))
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
