"""Fixtures for the local-cloud tests: deploy small test functions and layers from tests/localcloud/functions."""

from __future__ import annotations

import io
import json
import subprocess
import time
import uuid
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FUNCTIONS = HERE / "functions"
RUNTIME_PIP = ROOT / ".venv" / "runtimes" / "python3.11" / "bin" / "pip"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def wait_for_stack(cfn, stack: str) -> dict:
    """The stack (name or id) once no operation on it is in progress (at most a minute)."""
    deadline = time.monotonic() + 60
    while True:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not described["StackStatus"].endswith("_IN_PROGRESS"):
            return described
        assert time.monotonic() < deadline, described["StackStatus"]
        time.sleep(0.5)


def zip_dir(files: dict[str, Path]) -> bytes:
    """Zip {archive name: path}; a directory path is added recursively under its archive name."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in files.items():
            if path.is_dir():
                for f in sorted(path.rglob("*")):
                    if f.is_file() and "__pycache__" not in f.parts:
                        zf.write(f, f"{name}/{f.relative_to(path)}")
            else:
                zf.write(path, name)
    return buf.getvalue()


def in_localstack_env(code: str, timeout: float = 60) -> None:
    """Run ``code`` in LocalStack's environment, in a new interpreter; an assertion of it fails the test."""
    python = ROOT / ".venv" / "localstack" / "bin" / "python"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def bucket(aws):
    """An S3 bucket of the test's own; emptied and deleted afterwards."""
    s3 = aws("s3")
    name = f"localcloud-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def lambda_role(aws):
    iam = aws("iam")
    name = f"localcloud-test-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    yield arn
    iam.delete_role(RoleName=name)


@pytest.fixture(scope="session")
def deps_layer(aws, tmp_path_factory):
    """A layer with a third-party package (attrs, installed from PyPI) and a module of its own."""
    root = tmp_path_factory.mktemp("layer")
    site = root / "python" / "lib" / "python3.11" / "site-packages"
    subprocess.run([str(RUNTIME_PIP), "install", "-q", "--target", str(site), "attrs==25.4.0"], check=True)
    (root / "python" / "textlib.py").write_text((FUNCTIONS / "layer" / "textlib.py").read_text())
    lam = aws("lambda")
    name = f"localcloud-deps-{uuid.uuid4().hex[:8]}"
    layer = lam.publish_layer_version(
        LayerName=name, Content={"ZipFile": zip_dir({"python": root / "python"})}, CompatibleRuntimes=["python3.11"]
    )
    yield layer["LayerVersionArn"]
    lam.delete_layer_version(LayerName=name, VersionNumber=layer["Version"])


@pytest.fixture(scope="session")
def make_function(aws, lambda_role):
    """Create a python3.11 function from a module in functions/; deleted at the end of the session."""
    lam = aws("lambda")
    created: list[str] = []

    def make(
        module: str, handler: str = "handler", timeout: int = 10, memory: int = 128, layers=(), env=None, extra=None
    ) -> str:
        name = f"lc-{module.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=lambda_role,
            Handler=f"{module}.{handler}",
            Code={"ZipFile": zip_dir({f"{module}.py": FUNCTIONS / f"{module}.py", **(extra or {})})},
            Timeout=timeout,
            MemorySize=memory,
            Layers=list(layers),
            Environment={"Variables": env or {}},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def invoke(lam, name: str, event: dict) -> tuple[dict | None, dict]:
    """Invoke synchronously; returns (decoded payload, raw response)."""
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    body = resp["Payload"].read()
    return (json.loads(body) if body else None), resp
