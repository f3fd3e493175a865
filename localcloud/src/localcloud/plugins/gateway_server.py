"""A lighter HTTP/1.1 server for LocalStack's gateway: a thread per connection, blocking sockets.

LocalStack serves its gateway (a WSGI application) through twisted by default: the reactor thread parses each
request, hands it to a worker thread, and every write of the response goes back to the reactor thread and waits for
it (``blockingCallFromThread``). Profiled on this project's burst, twisted's HTTP server was the largest single share of
LocalStack's CPU (33% of the samples holding the GIL); a trivial request (DynamoDB ``ListTables``) cost ~2.9 ms of
LocalStack CPU. Here each connection's thread reads its requests, calls the same WSGI application and writes the
response itself: no hand-offs between threads.

What it implements, as twisted does for LocalStack: HTTP/1.1 keep-alive (and HTTP/1.0), request bodies by
``Content-Length`` or ``Transfer-Encoding: chunked`` (read whole before the request is handled, as twisted does, so
handlers may read the body more than once), ``Expect: 100-continue``, header names as the client spelled them
(``rolo.headers``), responses of known length or chunked, no body for HEAD, 1xx, 204 and 304, and TLS on the same
port (a first byte of 0x16 is a TLS handshake). Not implemented: websockets and HTTP/2, which this project does not
use (such a request gets a 501 or the connection is closed).

Selected with ``GATEWAY_SERVER=localcloud`` (scripts/up.sh does, ``LOCALCLOUD_GATEWAY_SERVER=twisted`` returns to
twisted). Standard library only, besides the LocalStack interfaces it plugs into.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

LOG = logging.getLogger(__name__)

MAX_LINE = 65_536  # bytes of a request line or a header line
MAX_HEADERS = 200
SPOOL = 8 * 1024 * 1024  # a body larger than this is kept in a temporary file (twisted: 100 KB)
NO_BODY = {204, 304}


class BadRequest(Exception):
    pass


def _read_chunked(rfile: io.BufferedReader, body: Any) -> int:
    total = 0
    while True:
        line = rfile.readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise BadRequest("truncated chunk size")
        size = int(line.split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            while rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return total
        data = rfile.read(size)
        if len(data) != size:
            raise BadRequest("truncated chunk")
        body.write(data)
        total += size
        rfile.readline(MAX_LINE)  # the CRLF after the chunk


def _read_body(rfile: io.BufferedReader, length: int | None, chunked: bool) -> tuple[Any, int]:
    if not chunked and not length:
        return io.BytesIO(b""), 0
    body: Any = io.BytesIO() if (length or 0) <= SPOOL and not chunked else tempfile.SpooledTemporaryFile(SPOOL)
    if chunked:
        total = _read_chunked(rfile, body)
    else:
        assert length is not None
        remaining = length
        while remaining:
            data = rfile.read(min(remaining, 1 << 20))
            if not data:
                raise BadRequest("body shorter than its Content-Length")
            body.write(data)
            remaining -= len(data)
        total = length
    body.seek(0)
    return body, total


class Connection:
    """One client connection: requests in order, each answered before the next is read."""

    def __init__(self, server: ThreadedRuntimeServer, sock: socket.socket, addr: tuple, port: int):
        self.server, self.sock, self.addr, self.port = server, sock, addr, port
        self.scheme = "http"

    def run(self) -> None:
        sock = self.sock
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.server.tls and sock.recv(1, socket.MSG_PEEK) == b"\x16":
                sock = self.sock = self.server.tls.wrap_socket(sock, server_side=True)
                self.scheme = "https"
            rfile = sock.makefile("rb", buffering=65_536)
            while self.handle_one(rfile):
                pass
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            pass
        except Exception:
            LOG.exception("localcloud gateway server: connection from %s failed", self.addr)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def error(self, status: int, reason: str) -> bool:
        body = f'{{"message": "{reason}"}}'.encode()
        self.send(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        return False

    def handle_one(self, rfile: io.BufferedReader) -> bool:
        line = rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # stray CRLFs between requests are allowed
            line = rfile.readline(MAX_LINE + 1)
        if not line:
            return False
        if line.startswith(b"PRI * HTTP/2"):
            return False
        parts = line.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3 or len(line) > MAX_LINE:
            return self.error(400, "Bad Request")
        method, target, version = (p.decode("latin-1") for p in parts)
        raw_headers: list[tuple[bytes, bytes]] = []
        while True:
            hline = rfile.readline(MAX_LINE + 1)
            if hline in (b"\r\n", b"\n"):
                break
            if not hline or len(hline) > MAX_LINE or len(raw_headers) >= MAX_HEADERS:
                return self.error(400, "Bad Request") if hline else False
            if hline[0] in (32, 9) and raw_headers:  # obsolete line folding
                name, value = raw_headers[-1]
                raw_headers[-1] = (name, value + b" " + hline.strip())
                continue
            name, sep, value = hline.partition(b":")
            if not sep:
                return self.error(400, "Bad Request")
            raw_headers.append((name.strip(), value.strip()))

        environ: dict[str, Any] = {}
        for name, value in raw_headers:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            environ[key] = environ[key] + "," + text if key in environ else text
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if "websocket" in environ.get("HTTP_UPGRADE", "").lower():
            return self.error(501, "Not Implemented")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length: int | None = None
        if not chunked and "HTTP_CONTENT_LENGTH" in environ:
            try:
                length = int(environ["HTTP_CONTENT_LENGTH"])
            except ValueError:
                return self.error(400, "Bad Request")
            if length < 0:
                return self.error(400, "Bad Request")
        if "100-continue" in environ.get("HTTP_EXPECT", "").lower() and version == "HTTP/1.1" and (chunked or length):
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body, total = _read_body(rfile, length, chunked)
        except (BadRequest, ValueError):
            return self.error(400, "Bad Request")

        content_length = environ.pop("HTTP_CONTENT_LENGTH", "")
        if target.startswith("/"):
            path, _, query = target.partition("?")
        else:  # absolute form (a proxy-style request)
            split = urlsplit(target)
            path, query = split.path or "/", split.query
        environ.update(
            {
                "REQUEST_METHOD": method,
                "SCRIPT_NAME": "",
                "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
                "QUERY_STRING": query,
                "REQUEST_URI": target,
                "RAW_URI": target,
                "SERVER_NAME": self.server.host,
                "SERVER_PORT": str(self.port),
                "SERVER_PROTOCOL": version,
                "REMOTE_ADDR": self.addr[0],
                "REMOTE_PORT": str(self.addr[1]),
                "CONTENT_TYPE": environ.pop("HTTP_CONTENT_TYPE", ""),
                "CONTENT_LENGTH": str(total) if (chunked or length) else content_length,
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": self.scheme,
                "wsgi.input": body,
                "wsgi.input_terminated": True,
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "rolo.headers": raw_headers,
            }
        )
        return self.respond(environ, method, version, keep_alive)

    def respond(self, environ: dict, method: str, version: str, keep_alive: bool) -> bool:
        started: list = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started[:] = [status, headers]
            return lambda data: None  # the write() callable; LocalStack's gateway returns its body instead

        result: Iterable[bytes] = ()
        try:
            assert self.server.app is not None
            result = self.server.app(environ, start_response)
            iterator = iter(result)
            first = b""
            for first in iterator:  # the first non-empty chunk, so that headers and a small body go in one send
                if first:
                    break
        except Exception:  # nothing is sent yet: the client gets a 500, not a dropped connection
            LOG.exception("localcloud gateway server: %s %s failed", method, environ.get("RAW_URI"))
            close = getattr(result, "close", None)
            if close:
                close()
            environ["wsgi.input"].close()
            return self.error(500, "Internal Server Error")
        try:
            status, headers = started
            code = int(status[:3])
            names = {name.lower() for name, _ in headers}
            if "close" in {value.lower() for name, value in headers if name.lower() == "connection"}:
                keep_alive = False
            has_body = method != "HEAD" and code not in NO_BODY and code >= 200
            chunked = has_body and "content-length" not in names and version == "HTTP/1.1"
            if has_body and "content-length" not in names and not chunked:
                keep_alive = False  # HTTP/1.0 without a length: the end of the body is the end of the connection
            head = [f"{version if version in ('HTTP/1.0', 'HTTP/1.1') else 'HTTP/1.1'} {status}\r\n"]
            head += [f"{name}: {value}\r\n" for name, value in headers]
            if chunked:
                head.append("Transfer-Encoding: chunked\r\n")
            if not keep_alive and "connection" not in names:
                head.append("Connection: close\r\n")
            elif keep_alive and version == "HTTP/1.0":
                head.append("Connection: keep-alive\r\n")
            head.append("\r\n")
            data = "".join(head).encode("latin-1")
            if not has_body:
                self.send(data)
                for _ in iterator:  # let a generator finish
                    pass
            elif chunked:
                self.send(data + (b"%x\r\n%s\r\n" % (len(first), first) if first else b""))
                for chunk in iterator:
                    if chunk:
                        self.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.send(b"0\r\n\r\n")
            else:
                self.send(data + first)
                for chunk in iterator:
                    if chunk:
                        self.send(chunk)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
            environ["wsgi.input"].close()
        return keep_alive


class ThreadedRuntimeServer:
    """LocalStack's ``RuntimeServer`` interface: register the gateway on its addresses, run until shut down."""

    def __init__(self) -> None:
        self.listeners: list[tuple[socket.socket, int]] = []
        self.app: Callable | None = None
        self.tls: ssl.SSLContext | None = None
        self.host = "localhost"
        self.stopped = threading.Event()

    def register(self, gateway: Any, listen: list, ssl_creds: tuple[str, str] | None = None) -> None:
        from rolo.gateway.wsgi import WsgiGateway

        self.app = WsgiGateway(gateway)
        if ssl_creds:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(*ssl_creds)
        for where in listen:
            family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((where.host, where.port))
            sock.listen(1024)
            self.listeners.append((sock, where.port))

    def serve(self, sock: socket.socket, port: int) -> None:
        while not self.stopped.is_set():
            try:
                conn, addr = sock.accept()
            except OSError:
                if self.stopped.is_set():
                    return
                continue
            worker = Connection(self, conn, addr, port)
            threading.Thread(target=worker.run, name=f"gateway-{addr[1]}", daemon=True).start()

    def run(self) -> None:
        for sock, port in self.listeners[1:]:
            threading.Thread(target=self.serve, args=(sock, port), name="gateway-accept", daemon=True).start()
        if self.listeners:
            self.serve(*self.listeners[0])
        self.stopped.wait()

    def shutdown(self) -> None:
        self.stopped.set()
        for sock, _ in self.listeners:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
