"""One Lambda execution environment as local processes: what Lambda's init (RAPID) does in a sandbox.

Started by ``localcloud.plugins.lambda_executor.executor`` with the function's environment plus a private ``LOCALCLOUD_INIT``
JSON config. It serves, on one loopback port:

- ``POST /invoke`` from LocalStack's executor endpoint (answered at once, result delivered by callback);
- the Lambda Runtime API (``/2018-06-01/runtime/...``) for the official ``awslambdaric`` child.

It reports readiness, results, errors and logs to LocalStack's executor endpoint, enforces the timeout
(the child is killed and replaced) and MemorySize (an address-space limit on the child), and exits with
its child when LocalStack goes away (EOF on the lifeline pipe) or on SIGTERM.
Standard library only: it runs under LocalStack's interpreter, the child under the function's runtime.
This module is the process (lifeline, signals, start-up); ``sandbox`` is the child, its limits and
results, ``runtime_api`` the HTTP server.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from localcloud.plugins.lambda_executor.runtime_api import make_handler
from localcloud.plugins.lambda_executor.sandbox import Sandbox


def watch_lifeline(fd: int, sandbox: Sandbox) -> None:
    """LocalStack holds the write end: EOF means it is gone (even after kill -9), so we go too."""
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    sandbox.shutdown()
    os._exit(0)


def main() -> None:
    config = json.loads(os.environ.pop("LOCALCLOUD_INIT"))
    env = dict(os.environ)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    config["port"] = server.server_address[1]
    sandbox = Sandbox(config, env)
    server.RequestHandlerClass = make_handler(sandbox)

    def on_term(signum, frame):
        sandbox.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    if config.get("lifeline_fd") is not None:
        threading.Thread(target=watch_lifeline, args=(int(config["lifeline_fd"]), sandbox), daemon=True).start()
    with sandbox.cond:
        sandbox.spawn()
    print(f"LOCALCLOUD_PORT {config['port']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
