"""The process executor runs real Lambda functions through LocalStack's Lambda API."""

from __future__ import annotations

import base64
import hashlib
import io
import time
import urllib.request
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ROOT

from .conftest import in_localstack_env, invoke, zip_dir


@pytest.fixture(scope="module")
def behaviours(make_function):
    return make_function("behaviours", timeout=2, memory=128)


def test_function_with_layer_and_dependency_reads_and_writes_s3(aws, make_function, deps_layer):
    # GIVEN a python3.11 function using a layer (third-party attrs + a module) and an object in S3
    s3 = aws("s3")
    bucket = f"lc-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in.txt", Body=b"hello layer")
    name = make_function("s3_copy", layers=[deps_layer])

    # WHEN it is invoked
    payload, resp = invoke(aws("lambda"), name, {"bucket": bucket, "key": "in.txt"})

    # THEN it read the object, used the layer, and wrote its result to S3
    assert "FunctionError" not in resp, payload
    assert payload["key"] == "in.txt.out" and payload["size"] == len("hello layer")
    assert s3.get_object(Bucket=bucket, Key="in.txt.out")["Body"].read() == b"HELLO LAYER!"
    assert 0 < payload["remaining_ms"] <= 10_000
    assert not payload["task_root"].startswith("/var/task")
    for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)


def test_warm_environment_is_reused(aws, behaviours):
    lam = aws("lambda")
    first, _ = invoke(lam, behaviours, {"action": "echo"})
    second, _ = invoke(lam, behaviours, {"action": "echo"})
    assert second["pid"] == first["pid"]
    assert second["calls"] == first["calls"] + 1


def test_timeout_fails_the_invocation_and_replaces_the_process(aws, behaviours):
    lam = aws("lambda")
    before, _ = invoke(lam, behaviours, {"action": "echo"})

    started = time.monotonic()
    payload, resp = invoke(lam, behaviours, {"action": "sleep", "seconds": 30})
    elapsed = time.monotonic() - started

    assert resp.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in payload["errorMessage"]
    assert elapsed < 10
    after, resp = invoke(lam, behaviours, {"action": "echo"})
    assert "FunctionError" not in resp
    assert after["pid"] != before["pid"]


def test_memory_size_is_enforced(aws, behaviours):
    lam = aws("lambda")
    small, resp = invoke(lam, behaviours, {"action": "allocate", "mb": 32})
    assert "FunctionError" not in resp, small

    payload, resp = invoke(lam, behaviours, {"action": "allocate", "mb": 512})

    assert resp.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    again, resp = invoke(lam, behaviours, {"action": "allocate", "mb": 32})
    assert "FunctionError" not in resp, again


def test_custom_exception_reaches_the_caller_by_class_name(aws, behaviours):
    payload, resp = invoke(aws("lambda"), behaviours, {"action": "raise", "message": "db down"})
    assert resp.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "FlakyDependencyError"
    assert payload["errorMessage"] == "db down"
    assert any("raise FlakyDependencyError" in line for line in payload["stackTrace"])


def test_crashed_runtime_reports_exit_error_and_recovers(aws, behaviours):
    lam = aws("lambda")
    payload, resp = invoke(lam, behaviours, {"action": "crash"})
    assert resp.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    payload, resp = invoke(lam, behaviours, {"action": "echo"})
    assert "FunctionError" not in resp


def test_logs_reach_cloudwatch_logs(aws, behaviours):
    text = f"log-line-{uuid.uuid4().hex}"
    _, resp = invoke(aws("lambda"), behaviours, {"action": "print", "text": text})

    tail = base64.b64decode(resp["LogResult"]).decode()
    assert text in tail and "REPORT RequestId:" in tail
    logs = aws("logs")
    deadline = time.monotonic() + 15
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:  # Lambda makes the log group with the first logs it sends, after the invoke has returned (so does AWS)
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{behaviours}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(text in m for m in messages):
            break
        time.sleep(0.3)
    assert any(text in m for m in messages)
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any(m.startswith("REPORT RequestId:") and "Max Memory Used" in m for m in messages)


def test_every_printed_line_reaches_its_own_invocations_log_tail_in_order(aws, behaviours):
    """300 invocations (4 callers, so several environments), each printing 3 lines just before it returns: every
    line in its own invocation's LogResult, in order, between START and END (it once went missing: the output
    thread had read it but not stored it when the result was delivered)."""
    lam, token = aws("lambda"), uuid.uuid4().hex[:8]

    def run(i: int) -> tuple[list[str], list[str]]:
        lines = [f"{token} call {i} line {j}" for j in range(3)]
        payload, resp = invoke(lam, behaviours, {"action": "print", "lines": lines})
        assert payload == {"printed": True}
        tail = base64.b64decode(resp["LogResult"]).decode().splitlines()
        start = next(n for n, line in enumerate(tail) if line.startswith("START RequestId:"))
        end = next(n for n, line in enumerate(tail) if line.startswith("END RequestId:"))
        return lines, tail[start + 1 : end]

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(run, range(300)))

    missing = [(i, got) for i, (lines, got) in enumerate(outcomes) if got != lines]
    assert not missing, f"{len(missing)} of 300 invocations lost or reordered lines, e.g. {missing[:3]}"


def test_twenty_concurrent_invocations_all_succeed(aws, make_function):
    name = make_function("behaviours", timeout=30)
    lam = aws("lambda")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: invoke(lam, name, {"action": "echo", "i": i}), range(20)))

    assert all("FunctionError" not in resp for _, resp in results)
    assert sorted(payload["event"]["i"] for payload, _ in results) == list(range(20))


def test_runtime_without_local_interpreter_fails_clearly(aws, lambda_role):
    lam = aws("lambda")
    name = f"lc-noruntime-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="nodejs20.x",
        Role=lambda_role,
        Handler="index.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    try:
        deadline = time.monotonic() + 15
        config = lam.get_function_configuration(FunctionName=name)
        while config["State"] == "Pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            config = lam.get_function_configuration(FunctionName=name)
        assert config["State"] == "Failed"
        assert "not supported by the local process executor" in config.get("StateReason", "")
    finally:
        try:
            lam.delete_function(FunctionName=name)
        except lam.exceptions.ClientError:
            pass  # LocalStack cannot delete a function whose version never started (its own limitation)


def test_environment_start_works_with_descriptors_above_1024():
    """Under a burst LocalStack holds >1024 descriptors; the executor must not use select() (FD_SETSIZE)."""
    code = """
import os, sys
from localcloud.plugins.lambda_executor.executor import wait_readable
held = [os.dup(0) for _ in range(1100)]
r, w = os.pipe()
assert r > 1024, r
reader = os.fdopen(r)
assert not wait_readable(reader, 0.05)
os.write(w, b"LOCALCLOUD_PORT 1234\\n")
assert wait_readable(reader, 1) and reader.readline() == "LOCALCLOUD_PORT 1234\\n"
"""
    in_localstack_env(code)


def test_an_invocations_output_is_in_its_logs_whatever_the_output_thread_is_doing():
    """The handler prints, then posts its result; the line must be in that invocation's logs even if the thread
    that collects the child's output has not run since (it once lost the line: it had read the chunk and was
    waiting for the lock that the result's delivery held)."""
    code = """
import os, threading, types
from localcloud.plugins.lambda_executor.sandbox import Sandbox
results_r, results_w = os.pipe()
env = {"LOCALSTACK_RUNTIME_ID": "r", "LOCALSTACK_RUNTIME_ENDPOINT": "http://127.0.0.1:9"}
sandbox = Sandbox({"result_fd": results_w, "memory_mb": 128, "timeout_s": 3}, env)
out_r, out_w = os.pipe()
os.set_blocking(out_r, False)  # as spawn() leaves the child's stdout
sandbox.child = types.SimpleNamespace(stdout=os.fdopen(out_r, "rb"), pid=None)
os.write(out_w, b"handler says hello\\n")  # printed by the handler; no output thread runs at all here
with sandbox.cond:
    logs = sandbox.take_logs()
assert logs == "handler says hello\\n", repr(logs)
with sandbox.cond:
    assert sandbox.take_logs() == ""  # taken once
"""
    in_localstack_env(code)


def test_step_functions_task_clients_send_one_connection_header_however_many_tasks_ran():
    """Every Step Functions Task asks the client factory for a client; the clients share one event emitter. The
    handler that adds `Connection: close` was registered once per client made, so each Task added a handler and a
    header to every later request (after a few thousand Tasks, building a request took most of LocalStack's CPU)."""
    code = """
import http.server, json, threading
from localstack.aws.connect import connect_to
from localcloud.patches.stepfunctions import FreshConnections
seen = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append(self.headers.get_all("Connection"))
        body = json.dumps({"AccountLimit": {}, "AccountUsage": {}}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
factory = FreshConnections(connect_to)
kwargs = dict(region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
              aws_access_key_id="test", aws_secret_access_key="test")
clients = {id(factory.get_client("lambda", **kwargs)) for _ in range(20)}
for _ in range(5):
    factory.get_client("lambda", **kwargs).get_account_settings()
assert len(clients) == 1, clients  # made once per arguments
assert seen == [["close"]] * 5, seen
"""
    in_localstack_env(code)


def test_step_functions_tasks_asking_at_once_share_one_session_and_one_client():
    """The first Tasks of a burst ask for their role's session and client at the same moment: each made its own
    (~50 ms, and a request parser LocalStack keeps for good). One is made; the others wait for it."""
    code = """
import threading, time
from localcloud.patches.stepfunctions import CachedAssumedRoles
made = {"sessions": 0, "clients": 0}
class Events:
    def register(self, *args, **kwargs): pass
class Client:
    meta = type("Meta", (), {"events": Events()})()
class Session:
    def get_client(self, service):
        made["clients"] += 1
        time.sleep(0.05)  # what making a botocore client costs
        return Client()
class Factory:
    def with_assumed_role(self, **kwargs):
        made["sessions"] += 1
        time.sleep(0.05)  # an AssumeRole
        return Session()
roles = CachedAssumedRoles(Factory())
barrier, clients = threading.Barrier(16), []
def task():
    barrier.wait()
    clients.append(roles.with_assumed_role(role_arn="arn:aws:iam::000000000000:role/sfn").get_client("lambda"))
threads = [threading.Thread(target=task) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
assert made == {"sessions": 1, "clients": 1}, made
assert len({id(c) for c in clients}) == 1
"""
    in_localstack_env(code)


def parent_command(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return fh.read().replace(b"\0", b" ").decode()


def test_runtimes_forked_from_one_server_each_see_only_their_own_function(aws, make_function, tmp_path):
    """Runtimes come from a fork server that has imported boto3 and the rest once (localcloud.plugins.lambda_executor.forkserver). Each must
    still see exactly its own function's environment, folder and import path, and code it ships under the name of a
    module the server preloaded (here jmespath, which botocore imports) must be its own, as on Lambda, and variables
    read as a process starts must apply."""
    lam = aws("lambda")
    first = make_function("runtime_view", env={"ONLY_FIRST": "1"})
    second = make_function("runtime_view", env={"ONLY_SECOND": "2"})
    views = [invoke(lam, name, {})[0] for name in (first, second)]
    for name, view, mine, other in (
        (first, views[0], "ONLY_FIRST", "ONLY_SECOND"),
        (second, *views[1:], "ONLY_SECOND", "ONLY_FIRST"),
    ):
        env = view["env"]
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
        assert mine in env and other not in env
        assert view["cwd"] == env["LAMBDA_TASK_ROOT"] == view["path"][0]
        assert "forkserver.py" in parent_command(view["ppid"])  # forked, not a new interpreter
    assert views[0]["ppid"] == views[1]["ppid"]  # one server for the same runtime and layers
    # what the server imported is frozen: the runtimes' cycle collections do not walk it again
    assert views[0]["frozen"] > 10_000 and views[1]["frozen"] == views[0]["frozen"]

    assert views[0]["hash_randomization"] == 1
    # a variable read only as a process starts applies too (MALLOC_ARENA_MAX is one; this one Python can report)
    seeded = make_function("runtime_view", env={"PYTHONHASHSEED": "0"})
    view, _ = invoke(lam, seeded, {})
    assert view["hash_randomization"] == 0
    assert "forkserver.py" in parent_command(view["ppid"]) and view["ppid"] != views[0]["ppid"]  # a server of its own

    (tmp_path / "jmespath.py").write_text('MARKER = "the function\'s own"\n')
    shadowing = make_function("runtime_view", extra={"jmespath.py": tmp_path / "jmespath.py"})
    view, _ = invoke(lam, shadowing, {"module": "jmespath"})
    assert view["marker"] == "the function's own", view["module_file"]
    assert view["module_file"] == f"{view['env']['LAMBDA_TASK_ROOT']}/jmespath.py"


def test_a_runtimes_botocore_sessions_share_one_data_loader_per_data_path(aws, make_function, tmp_path):
    """The fork server reads botocore's data files once, into one loader per data path that every session of the
    runtimes it forks uses (localcloud.plugins.lambda_executor.forkserver.share_botocore_loaders); a function that sets AWS_DATA_PATH gets
    a loader that searches it."""
    lam = aws("lambda")
    plain = make_function("runtime_view")
    own_models = make_function("runtime_view", env={"AWS_DATA_PATH": str(tmp_path)})

    shared, _ = invoke(lam, plain, {"botocore": True})
    steered, _ = invoke(lam, own_models, {"botocore": True})

    assert shared["botocore"]["shared"] and shared["botocore"]["s3_model_read"]  # read before the runtime started
    assert str(tmp_path) not in shared["botocore"]["search_paths"]
    assert steered["botocore"]["shared"] and str(tmp_path) in steered["botocore"]["search_paths"]


def test_a_layer_published_again_is_unzipped_once_and_outlives_its_versions(aws, make_function, tmp_path):
    """Layer versions of the same archive (every stack publishes the project's layer again) share one unzipped copy
    (localcloud.plugins.lambda_executor.executor.prepare_layer_code): each version's folder links to it, the functions of either version
    import from it, and deleting one version leaves the copy to the other."""
    lam = aws("lambda")
    (tmp_path / "python").mkdir()
    marker = uuid.uuid4().hex
    (tmp_path / "python" / "shared_marker.py").write_text(f'MARKER = "{marker}"\n')
    archive = zip_dir({"python": tmp_path / "python"})
    name = f"localcloud-shared-{uuid.uuid4().hex[:8]}"
    versions = [
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": archive}, CompatibleRuntimes=["python3.11"])
        for _ in range(2)
    ]
    assert versions[0]["Version"] != versions[1]["Version"]
    functions = [make_function("runtime_view", layers=[v["LayerVersionArn"]]) for v in versions]

    views = [invoke(lam, function, {"module": "shared_marker"})[0] for function in functions]

    files = [Path(view["module_file"]) for view in views]
    assert [view["marker"] for view in views] == [marker, marker]
    assert files[0] != files[1]  # each version has its own location ...
    assert files[0].resolve() == files[1].resolve()  # ... and both are one unzipped copy
    assert files[0].resolve().is_relative_to(ROOT / ".localcloud" / "code")

    lam.delete_layer_version(LayerName=name, VersionNumber=versions[0]["Version"])
    assert files[1].resolve().is_file()
    view, resp = invoke(lam, functions[1], {"module": "shared_marker"})
    assert "FunctionError" not in resp and view["marker"] == marker
    lam.delete_layer_version(LayerName=name, VersionNumber=versions[1]["Version"])


def test_get_function_gives_a_code_url_that_downloads_the_functions_archive(aws, behaviours):
    """GetFunction's Code.Location (signed by one kept client per endpoint: localcloud.patches.lambda_) is a presigned URL
    of the function's own archive, each time it is asked for."""
    lam = aws("lambda")
    for _ in range(2):
        function = lam.get_function(FunctionName=behaviours)
        with urllib.request.urlopen(function["Code"]["Location"], timeout=10) as resp:
            archive = resp.read()
        digest = base64.b64encode(hashlib.sha256(archive).digest()).decode()
        assert digest == function["Configuration"]["CodeSha256"]
        assert "behaviours.py" in zipfile.ZipFile(io.BytesIO(archive)).namelist()
