"""The HTTP side of one execution environment: ``POST /invoke`` from LocalStack's executor endpoint and the Lambda
Runtime API (``/2018-06-01/runtime/...``) for the official ``awslambdaric`` child, both served on one loopback port
and delegating to the ``Sandbox``. Standard library only.
"""

from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler

from localcloud.plugins.lambda_executor.sandbox import Invocation, Sandbox

RUNTIME_PREFIX = "/2018-06-01/runtime"


def make_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet access log
            pass

        def body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == f"{RUNTIME_PREFIX}/invocation/next":
                inv = sandbox.next_invocation()
                headers = {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_epoch_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                    "Lambda-Runtime-Trace-Id": inv.trace_id,
                }
                self.reply(200, inv.payload, headers)
            else:
                self.reply(404, b'{"errorType":"NotFound"}')

        def do_POST(self) -> None:
            body = self.body()
            parts = self.path.split("/")
            if self.path == "/invoke":
                data = json.loads(body)
                sandbox.invoke(
                    Invocation(
                        request_id=data.get("invoke-id") or str(uuid.uuid4()),
                        function_arn=data.get("invoked-function-arn", ""),
                        payload=(data.get("payload") or "").encode(),
                        trace_id=data.get("trace-id") or "",
                        timeout_s=sandbox.timeout_s,
                        crash=bool(data.get("localcloud-crash")),
                    )
                )
                self.reply(202)
            elif self.path == f"{RUNTIME_PREFIX}/init/error":
                sandbox.init_error(body)
                self.reply(202, b'{"status":"OK"}')
            elif (
                self.path.startswith(f"{RUNTIME_PREFIX}/invocation/")
                and len(parts) == 6
                and parts[5] in ("response", "error")
            ):
                ok = sandbox.complete(parts[4], parts[5], body)
                self.reply(202 if ok else 400, b'{"status":"OK"}' if ok else b'{"errorType":"InvalidRequestID"}')
            else:
                self.reply(404, b'{"errorType":"NotFound"}')

    return Handler
