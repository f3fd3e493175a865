"""Lifecycle of the local cloud: no Lambda process outlives LocalStack, whether stopped or killed; a start-up that
lost a localcloud hook fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

import boto3
import pytest

from .conftest import FUNCTIONS, ROOT, TRUST, zip_dir

PORT = "4599"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().split(") ")[1].split()[1])


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def assert_uses_the_environments_service_catalog(state, endpoint: str) -> None:
    """LocalStack builds an index of every service's operations in each new state folder (~3.7 s of CPU) unless its
    static libraries have one: scripts/setup.sh builds it once per environment and scripts/up.sh links it in."""
    linked = list((state / "fs" / "usr" / "lib" / "localstack").glob("service-catalog-*.dill"))
    assert len(linked) == 1 and linked[0].is_symlink() and linked[0].resolve().is_file()
    # requests are routed to their service with the index (by host, target prefix, signing name, path)
    assert boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1").get_caller_identity()["Account"]
    assert "Buckets" in boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").list_buckets()
    assert "TableNames" in boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").list_tables()
    built_here = list((state / "fs" / "var" / "lib" / "localstack" / "cache").glob("service-catalog-*"))
    assert built_here == []


@pytest.fixture
def second_cloud(tmp_path):
    """Another local cloud on its own port and state folder, so the shared one is not disturbed."""
    env = {**os.environ, "LOCALCLOUD_PORT": PORT, "LOCALCLOUD_STATE_DIR": str(tmp_path)}
    subprocess.run(["bash", str(ROOT / "scripts" / "up.sh")], env=env, check=True)
    yield env, tmp_path
    subprocess.run(["bash", str(ROOT / "scripts" / "down.sh")], env=env, check=True)


def start_runtime(endpoint: str) -> tuple[int, int]:
    """Invoke a fresh function; returns (runtime pid, supervisor pid)."""
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    role = iam.create_role(RoleName=f"r-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"][
        "Arn"
    ]
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="behaviours.handler",
        Code={"ZipFile": zip_dir({"behaviours.py": FUNCTIONS / "behaviours.py"})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    payload = json.loads(lam.invoke(FunctionName=name, Payload=b'{"action": "echo"}')["Payload"].read())
    runtime = int(payload["pid"])
    return runtime, parent_of(runtime)


def test_down_stops_every_lambda_process(second_cloud):
    env, state = second_cloud
    # this test's local cloud, in a new state folder, also shows that folder uses the environment's service catalog
    assert_uses_the_environments_service_catalog(state, f"http://localhost:{PORT}")
    pids = list(start_runtime(f"http://localhost:{PORT}"))
    assert all(alive(p) for p in pids)

    subprocess.run(["bash", str(ROOT / "scripts" / "down.sh")], env=env, check=True)

    assert wait_gone(pids) == []


def test_lambda_processes_exit_when_localstack_is_killed(second_cloud):
    _, state = second_cloud
    pids = list(start_runtime(f"http://localhost:{PORT}"))
    localstack = int((state / "localstack.pid").read_text())
    # kill only LocalStack's own process: its children must notice by themselves
    os.kill(localstack, signal.SIGKILL)

    assert wait_gone(pids) == []


def test_up_fails_naming_a_hook_that_did_not_install_unless_it_is_skipped(tmp_path):
    """A hook whose target is missing (here made to look missing, as on another LocalStack version) leaves LocalStack
    running without its fix: scripts/up.sh fails, names the hook and its error, and stops that local cloud. Named in
    LOCALCLOUD_SKIP_HOOKS, the hook is left out on purpose and the local cloud starts without it."""
    broken = {"LOCALCLOUD_BREAK_TARGET": "pause_disabled_schedules:enable_rule"}  # its second target of two
    env = {**os.environ, "LOCALCLOUD_PORT": PORT, "LOCALCLOUD_STATE_DIR": str(tmp_path), **broken}
    up, down = ["bash", str(ROOT / "scripts" / "up.sh")], ["bash", str(ROOT / "scripts" / "down.sh")]
    try:
        failed = subprocess.run(up, env=env, capture_output=True, text=True, timeout=120)

        assert failed.returncode != 0, failed.stdout
        assert (
            "error: localcloud hook pause_disabled_schedules did not install: "
            "localstack.services.events.provider:EventsProvider.enable_rule is not there"
        ) in failed.stderr
        assert "LOCALCLOUD_SKIP_HOOKS=pause_disabled_schedules" in failed.stderr
        assert not (tmp_path / "localstack.pid").exists()  # stopped
        log = (tmp_path / "localstack.log").read_text()
        assert "localcloud: pausing of disabled schedules not installed (hook pause_disabled_schedules)" in log
        assert "disabled scheduled rules stop running" not in log
        assert "stack updates change EventBridge rules and their targets" in log  # the other hooks installed

        skipping = {**env, "LOCALCLOUD_SKIP_HOOKS": "pause_disabled_schedules"}
        subprocess.run(up, env=skipping, check=True, capture_output=True, text=True, timeout=120)
        with urllib.request.urlopen(f"http://localhost:{PORT}/_localcloud/hooks", timeout=10) as resp:
            report = json.load(resp)
        assert report["failed"] == {} and report["hooks"]["pause_disabled_schedules"]["status"] == "skipped"
    finally:
        subprocess.run(down, env=env, check=True, capture_output=True)
