"""A fork server for Lambda runtimes: one process per (runtime Python, layer folders) that has imported what every
runtime imports and that no environment variable steers (boto3, botocore, s3transfer, urllib3 and some of the
standard library), and forks a runtime process from itself for each execution environment instead of a new
interpreter doing those imports again (~0.3 s of CPU per environment start, measured on this project's functions).
It also has botocore read the data files most functions use once, into a loader that every botocore session of the
runtimes it forks uses (share_botocore_loaders: ~0.3-0.6 s of CPU less per environment start).

Run by the runtime's own interpreter as a script (standard library only, Python 3.11+):
``python -P forkserver.py NAME LIFELINE_FD`` (-P: not this script's folder on sys.path), with the layers' folders in PYTHONPATH, as a runtime would have them.
It serves a SOCK_SEQPACKET Unix socket with the abstract name NAME. A request is one message: JSON ``{"argv", "cwd", "env", "as_limit"}`` with
the write end of the runtime's output pipe attached (SCM_RIGHTS). The reply is ``{"pid": N}``; when that process
ends, ``{"exit": CODE}`` follows on the same connection (CODE as ``subprocess.Popen.returncode``: negative for a
signal). The forked process:
- takes the pipe as its stdout and stderr, /dev/null as stdin, the request's folder and exactly its environment, the
  address-space limit, and sys.path as ``python -m`` with that PYTHONPATH would have it (the folder first);
- runs ``python -m awslambdaric HANDLER`` in itself (awslambdaric reads its environment at import, so it is not
  preloaded), or ``exec``s that very command when the function's code has a module of the same top-level name as one
  preloaded (its own boto3, say), so that its code wins as it would on Lambda, or when its environment differs from
  the server's in a variable read only as a process starts (``MALLOC_ARENA_MAX``, ``PYTHONHASHSEED``, ``TZ``...:
  STARTUP_PREFIXES), so that it applies. The executor starts one server per set of those values.
The server exits when LIFELINE_FD reaches end of file (LocalStack is gone); runtimes it forked live on under their
supervisors, which kill them when they stop.
"""

from __future__ import annotations

import array
import gc
import json
import os
import resource
import runpy
import selectors
import signal
import socket
import sys
import traceback

PRELOAD = (
    "json",
    "logging",
    "decimal",
    "uuid",
    "datetime",
    "http.client",
    "concurrent.futures",
    "email.utils",
    "ssl",
    "boto3",
    "boto3.session",
    "botocore.session",
    "botocore.client",
    "botocore.httpsession",
    "s3transfer.manager",
    "urllib3",
    # Found in the layers' folders when a function has them (this project's: ~40 ms of CPU per environment start,
    # -X importtime after the modules above). Not Pillow's format plugins: each registers its format as it is
    # imported, and the order of registration (which opener is tried first) stays the function's own.
    "asyncio",
    "typing_extensions",
    "simplejson",
    "wrapt",
    "PIL.Image",
    "PIL.ImageChops",
    "PIL.ImageCms",
    "PIL.ImageFile",
    "PIL.ImageOps",
)
MAX_REQUEST = 1 << 20
# Variables read once, as a process starts (glibc's malloc and loader, the interpreter, locale and time zone): a
# runtime is forked only when they equal the server's, else it ``exec``s a new interpreter with them.
# Also those a preloaded module reads as it is imported: Pillow's PILLOW_ALIGNMENT, PILLOW_BLOCK_SIZE and
# PILLOW_BLOCKS_MAX, wrapt's WRAPT_DISABLE_EXTENSIONS.
STARTUP_PREFIXES = (
    "MALLOC_",
    "GLIBC_",
    "LD_",
    "PYTHON",
    "LANG",
    "LC_",
    "TZ",
    "OPENSSL_",
    "SSL_CERT_",
    "PILLOW_",
    "WRAPT_",
)


def startup_vars(env) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES)}


def preload() -> None:
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a layer without boto3 still gets the rest
            pass


# botocore reads its data files (service models, endpoint rules, endpoints.json; JSON, much of it gzipped) again for
# every Session, as each Session makes a Loader of its own, and a runtime makes several as it starts: boto3's default
# session, the X-Ray SDK's (its sampling client, made when Powertools' Tracer imports it)... ~0.3-0.6 s of CPU per
# execution environment, measured on this project's functions. The server makes one Loader per data path (what
# AWS_DATA_PATH or the profile's data_path says), reads into it the files most functions use, and the sessions of
# every runtime forked from it use that Loader: what the clients of one session share anyway.
WARM_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
WARM_SERVICES = ("s3", "dynamodb", "sts", "xray", "stepfunctions", "events", "sqs", "sns", "lambda", "logs")
WARM_MODELS = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")


def share_botocore_loaders() -> None:
    try:
        import botocore.loaders
        import botocore.session
    except Exception:  # noqa: BLE001 - a layer without botocore
        return
    create = botocore.loaders.create_loader
    loaders: dict = {}

    def create_loader(search_path_string=None):
        loader = loaders.get(search_path_string)
        if loader is None:
            loader = loaders[search_path_string] = create(search_path_string)
        return loader

    botocore.session.create_loader = create_loader
    loader = create_loader(botocore.session.Session().get_config_variable("data_path"))
    for name in WARM_DATA:
        try:
            loader.load_data(name)
        except Exception:  # noqa: BLE001 - a botocore without this file
            pass
    for service in WARM_SERVICES:
        for model in WARM_MODELS:
            try:
                loader.load_service_model(service, model)
            except Exception:  # noqa: BLE001 - a service without waiters, say
                pass


def preloaded_roots() -> set[str]:
    return {name.split(".")[0] for name in sys.modules}


def shadowed(task_root: str, roots: set[str]) -> bool:
    """Whether the function's code has a top-level module or package named like one already imported here."""
    try:
        entries = os.listdir(task_root)
    except OSError:
        return False
    names = {e[:-3] if e.endswith(".py") else e.split(".")[0] for e in entries}
    return bool(names & roots - {"__pycache__"})


def run_child(request: dict, out_fd: int, base_path: list[str], roots: set[str]) -> None:
    """In the forked process: become the runtime. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
            if fd > 2:
                try:
                    os.close(fd)
                except OSError:
                    pass
        limit = int(request["as_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.chdir(request["cwd"])
        env = request["env"]
        argv = request["argv"]
        if shadowed(request["cwd"], roots) or startup_vars(env) != startup_vars(os.environ):
            os.execve(sys.executable, [sys.executable, *argv], env)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = [request["cwd"], *base_path]
        assert argv[:2] == ["-m", "awslambdaric"], argv
        sys.argv = ["awslambdaric", *argv[2:]]
        runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - as an interpreter would: print it, exit 1
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(address: str, lifeline_fd: int) -> None:
    base_path = list(sys.path)
    preload()
    share_botocore_loaders()
    # What is loaded now lives as long as each runtime: frozen, the runtimes' cycle collections do not visit it again
    # (~50 ms less CPU per environment start, measured on this project's functions: the collections during the
    # functions' own imports walked every preloaded object), and its memory stays shared with the server.
    gc.collect()
    gc.freeze()
    roots = preloaded_roots()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind("\0" + address)  # an abstract name: nothing on disk to clean up; connectable once preloaded
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "reap")
    selector.register(lifeline_fd, selectors.EVENT_READ, "lifeline")
    while True:
        for key, _ in selector.select():
            if key.data == "lifeline":
                if not os.read(lifeline_fd, 1):
                    return
            elif key.data == "reap":
                os.read(wake_r, 512)
                reap(children)
            elif key.data == "accept":
                conn, _ = listener.accept()
                fork_one(conn, children, selector, listener, base_path, roots)


def fork_one(conn: socket.socket, children: dict, selector, listener, base_path: list[str], roots: set[str]) -> None:
    try:
        data, ancillary, _, _ = conn.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(4))
        if not data:  # a probe: is the server accepting yet?
            conn.close()
            return
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        request = json.loads(data)
        if len(fds) != 1:
            raise ValueError(f"expected one descriptor, got {len(fds)}")
    except (OSError, ValueError) as e:
        print(f"localcloud.forkserver: bad request: {e}", file=sys.stderr, flush=True)
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        selector.close()
        listener.close()
        run_child(request, fds[0], base_path, roots)
    os.close(fds[0])
    children[pid] = conn
    try:
        conn.send(json.dumps({"pid": pid}).encode())
    except OSError:
        pass  # the supervisor went away; the runtime is its to kill, and it ends with LocalStack's session


def reap(children: dict) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
