"""LocalStack Lambda runtime executor that runs execution environments as local processes (no Docker).

Each execution environment is an ``init`` supervisor process (Runtime API server, timeout and memory enforcement)
that runs the handler with the official ``awslambdaric`` under the interpreter of the function's runtime, taken from
``$LOCALCLOUD_RUNTIMES_DIR/<runtime>/bin/python``; the runtime process is forked from a ``forkserver`` of that
interpreter and layers (ForkServers) unless LOCALCLOUD_LAMBDA_FORK_SERVER=0 (both modules of this package).

Protocol with LocalStack's executor endpoint: invocations are POSTed to the supervisor (``/invoke``);
start-up status (ready/error) comes back over HTTP to the endpoint's routes; each invocation's result
and logs come back as one frame on a pipe and resolve the endpoint's invocation future directly
(saving two HTTP round trips through LocalStack's gateway per invoke).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import http.client
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult, S3Code
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.utils.archives import unzip
from localstack.utils.files import chmod_r

from localcloud.plugins.fault_injection import crash_requested
from localcloud.plugins.lambda_executor.forkserver import startup_vars

LOG = logging.getLogger(__name__)

STARTUP_LINE_TIMEOUT_S = 30
STOP_GRACE_S = 2
LOG_LINES_KEPT = 2000

# LocalStack keeps the write end; every supervisor gets the read end and exits on EOF, so no
# execution environment outlives LocalStack, however it ends.
_LIFELINE_READ, _LIFELINE_WRITE = os.pipe()

if os.environ.get("LOCALCLOUD_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(os.environ["LOCALCLOUD_SWITCH_INTERVAL"]))


def runtimes_dir() -> Path:
    return Path(os.environ.get("LOCALCLOUD_RUNTIMES_DIR", "")).expanduser()


def runtime_python(runtime: str | None) -> str:
    """The interpreter that provides a Lambda runtime locally, or a LambdaRuntimeException saying what to do."""
    if not runtime or not runtime.startswith("python"):
        raise LambdaRuntimeException(
            f"Runtime '{runtime}' is not supported by the local process executor (only pythonX.Y runtimes)."
        )
    python = runtimes_dir() / runtime / "bin" / "python"
    if not python.exists():
        available = sorted(p.name for p in runtimes_dir().glob("python*") if (p / "bin" / "python").exists())
        raise LambdaRuntimeException(
            f"Runtime '{runtime}' is not available locally: {python} is missing "
            f"(available: {', '.join(available) or 'none'}). Install a Python {runtime.removeprefix('python')} "
            f"and run `make setup` to build its runtime environment."
        )
    return str(python)


FORK_SERVER_SCRIPT = str(Path(__file__).with_name("forkserver.py"))
FORK_SERVERS_KEPT = 8
FORK_SERVER_START_S = 30


class ForkServers:
    """One forkserver per (runtime interpreter, layer folders), started with the first execution environment
    that needs it; environments then fork their runtime from it instead of starting an interpreter that imports boto3
    and the rest again. The least recently used beyond FORK_SERVERS_KEPT is stopped (each deploy of a stack brings a new
    layer version). LOCALCLOUD_LAMBDA_FORK_SERVER=0 turns it off: every runtime is a new interpreter, as before."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.servers: OrderedDict[tuple, tuple[subprocess.Popen, str]] = OrderedDict()
        self.started = 0

    def address_for(self, python: str, paths: list[str], env: dict[str, str]) -> str | None:
        """The abstract socket name of the server for this runtime, these layers and the variables of ``env`` read as a
        process starts (MALLOC_ARENA_MAX...: a runtime forked from a server without them would not apply them);
        None if there is none."""
        if os.environ.get("LOCALCLOUD_LAMBDA_FORK_SERVER", "1") == "0":
            return None
        startup = {k: v for k, v in startup_vars(env).items() if k != "PYTHONPATH"}  # the server's is the layers
        key = (python, tuple(paths), tuple(sorted(startup.items())))
        with self.lock:
            entry = self.servers.get(key)
            if entry is not None and entry[0].poll() is None:
                self.servers.move_to_end(key)
                return entry[1]
            self.started += 1
            address = f"localcloud-fork-{os.getpid()}-{self.started}"
            env = {
                **startup,
                "PYTHONPATH": os.pathsep.join(paths),
                "PYTHONUNBUFFERED": "1",  # its runtimes write straight to their pipe, as a runtime started so does
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            }
            server = subprocess.Popen(
                [python, "-P", FORK_SERVER_SCRIPT, address, str(_LIFELINE_READ)],
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                pass_fds=(_LIFELINE_READ,),
            )
            if not _accepting(address, server, FORK_SERVER_START_S):
                server.kill()
                LOG.warning("localcloud: fork server for %s did not start: runtimes start afresh", python)
                return None
            self.servers[key] = (server, address)
            while len(self.servers) > FORK_SERVERS_KEPT:
                _, (old, _) = self.servers.popitem(last=False)
                old.terminate()  # runtimes it forked live on; their supervisors stop them
            return address


def _accepting(address: str, server: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
            try:
                probe.connect("\0" + address)
                return True
            except OSError:
                pass
        time.sleep(0.02)
    return False


FORK_SERVERS = ForkServers()


def python_path(function_version: FunctionVersion) -> list[str]:
    """Layer folders as Lambda's /opt/python would put them on sys.path (later layers win)."""
    version = function_version.config.runtime.removeprefix("python")
    paths: list[str] = []
    for layer in reversed(function_version.config.layers or []):
        if layer.code is None:
            continue
        root = Path(layer.code.get_unzipped_code_location())
        paths += [str(root / "python" / "lib" / f"python{version}" / "site-packages"), str(root / "python")]
    return paths


def prepare_layer_code(code) -> None:
    """Put a layer version's code unzipped where LocalStack's ``get_unzipped_code_location`` says.

    LocalStack unzips each layer version's archive into a folder of its own. The same archive comes back often:
    every stack of this project publishes the same ~40 MB layer (116 MB unzipped, ~2.3 s of CPU to unzip) as a new
    layer version, and each test lane's local cloud has its own. With ``LOCALCLOUD_CODE_CACHE`` set (scripts/up.sh
    sets it for every local cloud of a checkout) an archive is unzipped once per content (its CodeSha256) into that
    folder, and the version's location is a link to it; layers are only ever on the import path, where a link is
    what the folder was. LocalStack's ``destroy_cached`` removes the version's folder, which holds the link, not the
    shared copy. (A function's own code stays unzipped per version: it is small, and it is the runtime's working
    folder, which a link would change.) Lambda mounts layers read-only at /opt; here a function could write into
    the shared copy, as it could into its own before.
    """
    cache = os.environ.get("LOCALCLOUD_CODE_CACHE")
    if not cache or not isinstance(code, S3Code) or not code.code_sha256:
        code.prepare_for_execution()
        return
    target = code.get_unzipped_code_location()
    with code._disk_lock:
        if target.exists():
            return
        entry = Path(cache) / hashlib.sha256(code.code_sha256.encode()).hexdigest()
        entry.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{entry}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another local cloud of the checkout may be unzipping the same archive
            if not entry.exists():
                unzipping = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".unzipping-"))
                try:
                    with tempfile.NamedTemporaryFile(dir=entry.parent, prefix=".archive-") as archive:
                        code._download_archive_to_file(archive)
                        unzip(archive.name, str(unzipping))
                    chmod_r(str(unzipping), 0o755)
                    unzipping.rename(entry)
                except BaseException:
                    shutil.rmtree(unzipping, ignore_errors=True)
                    raise
            os.utime(entry)  # in use: scripts/up.sh prunes entries unused for a day
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(entry, target_is_directory=True)


class _Sent:
    """The part of requests.Response that ExecutorEndpoint.invoke reads."""

    def __init__(self, status: int) -> None:
        self.status_code = status
        self.ok = 200 <= status < 400


class KeepAliveExecutorEndpoint(ExecutorEndpoint):
    """Sends invocations over one kept-alive connection instead of a new one per invoke."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._conn: http.client.HTTPConnection | None = None

    def _perform_invoke(self, invocation_url: str, proxies: dict, payload: dict) -> _Sent:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        last_error: Exception | None = None
        for attempt in range(6):  # as the base class: first try, then 5 retries with backoff
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.container_address, self.container_port, timeout=30)
                self._conn.request("POST", "/invoke", body=body, headers=headers)
                response = self._conn.getresponse()
                response.read()
                return _Sent(response.status)
            except (OSError, http.client.HTTPException) as e:
                last_error, self._conn = e, None
                time.sleep(min(0.1 * 2**attempt, 1.0) if attempt else 0)
        raise ConnectionError(f"cannot reach execution environment at {invocation_url}: {last_error}")

    def shutdown(self) -> None:
        if self._conn is not None:
            self._conn.close()
        super().shutdown()


def wait_readable(stream, timeout: float) -> bool:
    """Whether ``stream`` has something to read within ``timeout`` s. epoll, not select(): under a burst
    LocalStack holds well over 1024 descriptors, and select() refuses any above that (measured: 253 failed
    environment starts in a 300-upload burst)."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        return bool(selector.select(timeout))


class ProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = KeepAliveExecutorEndpoint(self.id, container_address="127.0.0.1", container_port=None)
        self.process: subprocess.Popen | None = None
        self.output: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self.results_fd: int | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        self.executor_endpoint.start()
        fv = self.function_version
        python = runtime_python(fv.config.runtime)
        self.results_fd, result_write = os.pipe()
        task_root = str(fv.config.code.get_unzipped_code_location())
        paths = python_path(fv)
        env = {key: str(value) for key, value in env_vars.items()}
        env.update(
            {
                "LAMBDA_TASK_ROOT": task_root,
                "LAMBDA_RUNTIME_DIR": str(Path(python).parent.parent),
                "PATH": env.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
                "LANG": env.get("LANG") or "en_US.UTF-8",
                "LD_LIBRARY_PATH": env.get("LD_LIBRARY_PATH") or "",
            }
        )
        env["LOCALCLOUD_INIT"] = json.dumps(
            {
                "python": python,
                "task_root": task_root,
                "python_path": paths,
                # the runtime's environment is this one with PYTHONUNBUFFERED=1 (Sandbox.child_env)
                "fork_server": FORK_SERVERS.address_for(python, paths, {**env, "PYTHONUNBUFFERED": "1"}),
                "memory_mb": fv.config.memory_size,
                "cpu_by_memory": os.environ.get("LOCALCLOUD_CPU_BY_MEMORY") == "1",
                "timeout_s": fv.config.timeout,
                "version": fv.id.qualifier,
                "lifeline_fd": _LIFELINE_READ,
                "result_fd": result_write,
            }
        )
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-m", "localcloud.plugins.lambda_executor.init"],
            env=env,
            cwd=task_root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(_LIFELINE_READ, result_write),
            text=True,
        )
        os.close(result_write)
        threading.Thread(target=self._read_results, daemon=True, name=f"lambda-results-{self.id}").start()
        self.executor_endpoint.container_port = self._read_port()
        threading.Thread(target=self._pump_output, daemon=True, name=f"lambda-output-{self.id}").start()
        self.executor_endpoint.wait_for_startup()

    def _read_port(self) -> int:
        line = self.process.stdout.readline() if wait_readable(self.process.stdout, STARTUP_LINE_TIMEOUT_S) else ""
        if not line.startswith("LOCALCLOUD_PORT "):
            rest = line + (self.process.stdout.read() if self.process.poll() is not None else "")
            raise LambdaRuntimeException(f"Execution environment {self.id} did not start: {rest.strip()}")
        return int(line.split()[1])

    def _read_results(self) -> None:
        with os.fdopen(self.results_fd, "rb") as frames:
            for line in frames:
                frame = json.loads(line)
                result = InvocationResult(
                    frame["id"],
                    base64.b64decode(frame["payload"]),
                    is_error=frame["kind"] == "error",
                    logs=frame["logs"],
                )
                future = self.executor_endpoint.invocation_future
                if future is not None and not future.done():
                    future.set_result(result)
        # the supervisor is gone: fail an invocation still waiting rather than let it hang
        future = self.executor_endpoint.invocation_future
        if future is not None and not future.done():
            error = {"errorType": "Runtime.ExitError", "errorMessage": "Error: execution environment exited"}
            future.set_result(InvocationResult("", json.dumps(error).encode(), is_error=True, logs=self.get_logs()))

    def _pump_output(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # noqa: BLE001 - mirror the docker executor: never fail a stop
            LOG.debug("Error while stopping executor endpoint of %s: %s", self.id, e)

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://127.0.0.1:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]):
        if crash_requested(self.function_version.id.function_name):
            payload = {**payload, "localcloud-crash": True}  # the supervisor kills the runtime mid-invocation
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        return "".join(self.output)

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        started = time.perf_counter()
        runtime_python(function_version.config.runtime)
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        for layer in function_version.config.layers or []:
            if layer.code is not None:
                prepare_layer_code(layer.code)
        LOG.debug("Prepared %s in %.1f ms", function_version.qualified_arn, (time.perf_counter() - started) * 1000)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        if not runtimes_dir().is_dir():
            LOG.warning("LOCALCLOUD_RUNTIMES_DIR (%s) is not a folder: Lambda functions cannot run", runtimes_dir())
            return False
        return True
