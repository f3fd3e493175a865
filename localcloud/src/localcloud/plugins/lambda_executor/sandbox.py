"""The sandbox of one Lambda execution environment: the runtime child process, its limits (timeout, MemorySize as
an address-space limit), the invocation queue, and the results and logs it reports to LocalStack.

Used by ``localcloud.plugins.lambda_executor.init`` (the supervisor process); standard library only.
"""

from __future__ import annotations

import array
import base64
import http.client
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field

MIB = 1024 * 1024
INIT_AS_LIMIT_MB = 4096  # address-space cap while the runtime initialises (before MemorySize applies)
MIN_HEADROOM_MB = 16
# Lambda gives a function CPU in proportion to its memory: "at 1,769 MB, a function has the equivalent of one vCPU".
MB_PER_VCPU = 1769
CFS_PERIOD_US = 100_000
CGROUP_V1_CPU = "/sys/fs/cgroup/cpu"
CGROUP_V2 = "/sys/fs/cgroup"


class CpuShare:
    """Lambda's CPU share for a MemorySize (``memory_mb / 1769`` of a CPU) as a CFS quota on a cgroup of its own, which
    the runtime process (and every thread and process it starts) joins. Opt-in (LOCALCLOUD_CPU_BY_MEMORY=1; what
    ``make bench-memory`` measures with); needs a writable cgroup cpu controller (v1, or v2 with cpu delegated),
    which root has on this machine. One CPU of this host stands for one Lambda vCPU."""

    def __init__(self, name: str, memory_mb: int) -> None:
        quota = max(1000, round(CFS_PERIOD_US * memory_mb / MB_PER_VCPU))
        if os.path.exists(f"{CGROUP_V1_CPU}/cpu.cfs_quota_us"):
            self.path = f"{CGROUP_V1_CPU}/localcloud/{name}"
            os.makedirs(self.path, exist_ok=True)
            _write(f"{self.path}/cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(f"{self.path}/cpu.cfs_quota_us", str(quota))
        elif "cpu" in _read(f"{CGROUP_V2}/cgroup.controllers").split():
            parent = f"{CGROUP_V2}/localcloud"
            os.makedirs(parent, exist_ok=True)
            _write(f"{CGROUP_V2}/cgroup.subtree_control", "+cpu")
            _write(f"{parent}/cgroup.subtree_control", "+cpu")
            self.path = f"{parent}/{name}"
            os.makedirs(self.path, exist_ok=True)
            _write(f"{self.path}/cpu.max", f"{quota} {CFS_PERIOD_US}")
        else:
            raise OSError("no writable cgroup cpu controller: LOCALCLOUD_CPU_BY_MEMORY needs one")
        self.cpus = quota / CFS_PERIOD_US

    @staticmethod
    def supported() -> bool:
        return os.access(f"{CGROUP_V1_CPU}/cgroup.procs", os.W_OK) or (
            "cpu" in _read(f"{CGROUP_V2}/cgroup.controllers").split() and os.access(CGROUP_V2, os.W_OK)
        )

    def add(self, pid: int) -> None:
        _write(f"{self.path}/cgroup.procs", str(pid))

    def remove(self) -> None:
        """Best effort: the group goes once its processes are gone."""
        for _ in range(20):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class ForkedChild:
    """A runtime process forked by the forkserver, with the part of ``subprocess.Popen`` the sandbox uses (pid,
    stdout, poll, wait, kill). It is the fork server's child, not ours: its exit status comes on the connection."""

    def __init__(self, server: str, argv: list[str], cwd: str, env: dict[str, str], as_limit: int) -> None:
        read_fd, write_fd = os.pipe()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.sock.settimeout(10)
            self.sock.connect("\0" + server)
            request = json.dumps({"argv": argv, "cwd": cwd, "env": env, "as_limit": as_limit}).encode()
            self.sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [write_fd]))])
            self.pid = int(json.loads(self.sock.recv(4096) or b"{}")["pid"])
        except BaseException:
            self.sock.close()
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.sock.settimeout(None)
        self.stdout = open(read_fd, "rb", buffering=0)  # noqa: SIM115 - lives as long as the process
        self.returncode: int | None = None
        self.lost = False  # the fork server went away before the process ended: its status is unknown
        self.lock = threading.Lock()

    def _receive(self, timeout: float | None) -> bool:
        """True once the exit status is known, waiting up to ``timeout`` s (None: as long as it takes)."""
        if self.returncode is not None:
            return True
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLHUP)
        if not poller.poll(None if timeout is None else int(timeout * 1000)):
            return False
        with self.lock:
            if self.returncode is None:
                try:
                    data = self.sock.recv(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return False
                except OSError:
                    data = b""
                if data:
                    self.returncode = int(json.loads(data)["exit"])
                else:
                    self.lost, self.returncode = True, -signal.SIGKILL
                self.sock.close()
        return True

    def poll(self) -> int | None:
        self._receive(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._receive(timeout):
            raise subprocess.TimeoutExpired(["awslambdaric"], timeout or 0)
        return self.returncode  # type: ignore[return-value]

    def kill(self) -> None:
        if self.returncode is None or self.lost:  # once reaped, the pid may be another process's
            os.kill(self.pid, signal.SIGKILL)


@dataclass
class Invocation:
    request_id: str
    function_arn: str
    payload: bytes
    trace_id: str
    timeout_s: float
    crash: bool = False
    received: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: bool = False

    @property
    def deadline_epoch_ms(self) -> int:
        return int((time.time() + self.timeout_s - (time.monotonic() - self.received)) * 1000)


class Callbacks:
    """Posts to LocalStack's executor endpoint over one keep-alive connection."""

    def __init__(self, base_url: str) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.prefix = url.hostname, url.port or 80, url.path.rstrip("/")
        self.lock = threading.Lock()
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        with self.lock:
            for attempt in range(3):
                try:
                    if self.conn is None:
                        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                    self.conn.request("POST", self.prefix + path, body=body, headers=headers)
                    self.conn.getresponse().read()
                    return
                except (OSError, http.client.HTTPException):
                    self.conn = None
                    if attempt == 2:
                        raise
                    time.sleep(0.05 * (attempt + 1))


class Results:
    """Delivers each invocation's result and logs to the executor as one frame on a pipe.

    The executor (in LocalStack's process) resolves the invocation future of LocalStack's executor
    endpoint with it: one write instead of two HTTP callbacks through LocalStack's gateway (~4 ms).
    Frame: one JSON line {"id", "kind": "response"|"error", "logs", "payload": base64}.
    """

    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "wb", buffering=1 << 16)
        self.lock = threading.Lock()

    def send(self, request_id: str, kind: str, payload: bytes, logs: str) -> None:
        frame = {"id": request_id, "kind": kind, "logs": logs, "payload": base64.b64encode(payload).decode()}
        line = json.dumps(frame).encode() + b"\n"
        try:
            with self.lock:
                self.out.write(line)
                self.out.flush()
        except OSError as exc:
            print(f"localcloud.init: cannot deliver result of {request_id}: {exc}", file=sys.stderr, flush=True)


class Sandbox:
    def __init__(self, config: dict, env: dict[str, str]) -> None:
        self.config = config
        self.results = Results(int(config["result_fd"]))
        self.env = env
        self.runtime_id = env["LOCALSTACK_RUNTIME_ID"]
        self.callbacks = Callbacks(env["LOCALSTACK_RUNTIME_ENDPOINT"])
        self.memory_mb = int(config["memory_mb"])
        self.timeout_s = float(config["timeout_s"])
        self.cond = threading.Condition()
        self.child: subprocess.Popen | ForkedChild | None = None
        self.generation = 0
        self.spawned_at = 0.0
        self.init_duration_ms: float | None = None
        self.child_ready = False
        self.reported_ready = False
        self.pending: deque[Invocation] = deque()
        self.current: Invocation | None = None
        self.logbuf = bytearray()
        self.stopping = False
        self.cpu = CpuShare(self.runtime_id, self.memory_mb) if config.get("cpu_by_memory") else None

    # ---- child process -------------------------------------------------------------------------
    def spawn(self) -> None:
        """Start a fresh runtime process (caller holds the lock)."""
        self.generation += 1
        generation = self.generation
        self.child_ready = False
        self.init_duration_ms = None
        self.spawned_at = time.monotonic()
        argv = ["-m", "awslambdaric", self.env.get("_HANDLER", "")]
        self.child = None
        if self.config.get("fork_server"):
            try:
                self.child = ForkedChild(
                    self.config["fork_server"], argv, self.config["task_root"], self.child_env(), INIT_AS_LIMIT_MB * MIB
                )
            except (OSError, ValueError, KeyError) as exc:
                print(
                    f"localcloud.init: fork server unavailable ({exc}): a new interpreter", file=sys.stderr, flush=True
                )
        if self.child is None:
            self.child = subprocess.Popen(
                [self.config["python"], *argv],
                cwd=self.config["task_root"],
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_limit_address_space,
            )
        if self.cpu is not None:
            self.cpu.add(self.child.pid)  # before its first invocation: it is still importing the handler
        os.set_blocking(self.child.stdout.fileno(), False)  # before anyone reads it: take_logs drains it, never waits
        threading.Thread(target=self.pump_output, args=(self.child, generation), daemon=True).start()

    def child_env(self) -> dict[str, str]:
        env = dict(self.env)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.config['port']}"
        env["PYTHONPATH"] = os.pathsep.join(self.config["python_path"])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def pump_output(self, child: subprocess.Popen | ForkedChild, generation: int) -> None:
        """Collect the child's output as it comes. Every read happens under the lock (the pipe is non-blocking and
        this thread only waits for it to become readable), so ``take_logs`` never misses a chunk that was read but
        not yet stored: what is not in ``logbuf`` is still in the pipe, and ``take_logs`` drains it itself."""
        fd = child.stdout.fileno()  # non-blocking since spawn()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        eof = False
        while not eof:
            poller.poll()
            with self.cond:
                eof = self._drain(fd, generation)
        code = child.wait()
        self.child_exited(generation, code)

    def _drain(self, fd: int, generation: int) -> bool:
        """Read what the pipe holds into ``logbuf`` (caller holds the lock); True at end of file."""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not chunk:
                return True
            if generation == self.generation:
                self.logbuf += chunk
                self.cond.notify_all()

    def child_exited(self, generation: int, code: int) -> None:
        with self.cond:
            if generation != self.generation or self.stopping:
                return  # a child we replaced on purpose
            self.child = None
            inv, self.current = self.current, None
            was_ready = self.child_ready
            logs = self.take_logs()
        reason = (
            f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}" if code < 0 else f"exit status {code}"
        )
        if inv is not None:
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {inv.request_id} Error: Runtime exited with error: {reason}",
            }
            self.finish(inv, "error", json.dumps(error).encode(), logs)
        elif not was_ready and not self.reported_ready:
            error = {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited during init: {reason}"}
            self.post_status("error", json.dumps(error).encode(), logs)

    def take_logs(self) -> str:
        """Everything the child printed so far (caller holds the lock). The child writes its output before it posts
        its result, so draining the pipe here, under the lock, yields all of it."""
        child = self.child
        if child is not None and child.stdout is not None:
            self._drain(child.stdout.fileno(), self.generation)
        text = self.logbuf.decode("utf-8", "replace")
        self.logbuf.clear()
        return text

    def kill_child(self) -> None:
        """Kill the runtime and forget it (caller holds the lock)."""
        self.generation += 1
        if self.child is not None:
            try:
                self.child.kill()
            except ProcessLookupError:
                pass
            self.child = None

    # ---- Runtime API (called by awslambdaric) --------------------------------------------------
    def next_invocation(self) -> Invocation:
        with self.cond:
            if not self.child_ready:
                self.child_ready = True
                self.init_duration_ms = (time.monotonic() - self.spawned_at) * 1000
                self.apply_memory_limit()
            first = not self.reported_ready
            self.reported_ready = True
        if first:
            self.post_status("ready", b"{}")
        with self.cond:
            while not self.pending:
                self.cond.wait()
            inv = self.pending.popleft()
            inv.started = time.monotonic()
            self.current = inv
            if inv.crash:  # fault injection: the worker dies in the middle of this invocation
                threading.Timer(0.002, self.crash_child, args=(self.child,)).start()
            return inv

    def crash_child(self, child: subprocess.Popen | ForkedChild | None) -> None:
        if child is not None and child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)

    def apply_memory_limit(self) -> None:
        """MemorySize as an address-space limit: what init mapped, plus what is left of MemorySize."""
        pid = self.child.pid if self.child else None
        if pid is None:
            return
        vm = _proc_status(pid)
        headroom = max(self.memory_mb * MIB - vm.get("VmRSS", 0), MIN_HEADROOM_MB * MIB)
        limit = vm.get("VmSize", 0) + headroom
        try:
            resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        except (ProcessLookupError, PermissionError, ValueError):
            pass

    def complete(self, request_id: str, kind: str, body: bytes) -> bool:
        with self.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id or inv.finished:
                return False
            self.current = None
            logs = self.take_logs()
            replace = False
            if kind == "error":
                body, replace = _translate_error(body, request_id)
            if replace:
                self.kill_child()
                self.spawn()
        self.finish(inv, kind, body, logs)
        return True

    def init_error(self, body: bytes) -> None:
        with self.cond:
            inv, self.current = self.current, None
            if inv is None and self.pending:
                inv = self.pending.popleft()
            logs = self.take_logs()
            reported = self.reported_ready
            self.reported_ready = True
        if inv is not None:
            self.finish(inv, "error", body, logs)
        elif not reported:
            self.post_status("error", body, logs)

    # ---- LocalStack side -----------------------------------------------------------------------
    def invoke(self, inv: Invocation) -> None:
        with self.cond:
            if self.child is None:
                self.spawn()
            self.pending.append(inv)
            self.cond.notify_all()
        timer = threading.Timer(inv.timeout_s, self.time_out, args=(inv,))
        timer.daemon = True
        timer.start()

    def time_out(self, inv: Invocation) -> None:
        with self.cond:
            if inv.finished:
                return
            if self.current is inv:
                self.current = None
            elif inv in self.pending:
                self.pending.remove(inv)
            logs = self.take_logs()
            self.kill_child()
            self.spawn()
        message = f"RequestId: {inv.request_id} Error: Task timed out after {inv.timeout_s:.2f} seconds"
        error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
        self.finish(inv, "error", json.dumps(error).encode(), logs + _timestamped(message))

    def finish(self, inv: Invocation, kind: str, body: bytes, logs: str) -> None:
        with self.cond:
            if inv.finished:
                return
            inv.finished = True
            init_ms = self.init_duration_ms if inv.started and self.child_ready else None
            self.init_duration_ms = None
            pid = self.child.pid if self.child else None
        duration_ms = (time.monotonic() - (inv.started or inv.received)) * 1000
        max_mb = _proc_status(pid).get("VmHWM", 0) // MIB if pid else 0
        report = (
            f"REPORT RequestId: {inv.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration_ms + 0.999))} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {max_mb} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        text = (
            f"START RequestId: {inv.request_id} Version: {self.config['version']}\n{logs}"
            f"{'' if not logs or logs.endswith(chr(10)) else chr(10)}END RequestId: {inv.request_id}\n{report}\n"
        )
        self.results.send(inv.request_id, kind, body, text)

    def post_status(self, status: str, body: bytes, logs: str = "") -> None:
        if logs:
            print(logs, flush=True)
        try:
            self.callbacks.post(f"/status/{self.runtime_id}/{status}", body)
        except (OSError, http.client.HTTPException) as exc:
            print(f"localcloud.init: cannot report status {status}: {exc}", file=sys.stderr, flush=True)

    def shutdown(self) -> None:
        with self.cond:
            self.stopping = True
            child = self.child
            self.kill_child()
        if self.cpu is not None:
            if child is not None:
                try:
                    child.wait(1)
                except subprocess.TimeoutExpired:
                    pass
            self.cpu.remove()


def _translate_error(body: bytes, request_id: str) -> tuple[bytes, bool]:
    """A MemoryError under the address-space limit is Lambda's out-of-memory: report it so, replace the process."""
    try:
        error = json.loads(body)
    except ValueError:
        return body, False
    if isinstance(error, dict) and error.get("errorType") == "MemoryError":
        oom = {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: out of memory (MemoryError)",
        }
        return json.dumps(oom).encode(), True
    return body, False


def _timestamped(message: str) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z {message}\n"


def _proc_status(pid: int | None) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key.startswith("Vm") and rest.strip().endswith("kB"):
                    values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return values


def _limit_address_space() -> None:
    limit = INIT_AS_LIMIT_MB * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
