"""The gateway's HTTP server (localcloud/plugins/gateway_server.py, or twisted with LOCALCLOUD_GATEWAY_SERVER=twisted): what clients
rely on at the HTTP level, spoken over raw sockets so that nothing in between (urllib3, botocore) smooths it over.
The same tests pass against twisted, LocalStack's own server."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from urllib.parse import urlsplit


def connect(endpoint: str) -> socket.socket:
    url = urlsplit(endpoint)
    return socket.create_connection((url.hostname, url.port), timeout=30)


def read_response(f) -> tuple[int, dict[str, str]]:
    """The status line and headers (lower-cased names) of one response from the file F; read_body reads its body."""
    status = int(f.readline().split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def read_body(f, headers: dict[str, str], method: str = "GET", status: int = 200) -> bytes:
    if method == "HEAD" or status in (204, 304) or status < 200:
        return b""
    if "content-length" in headers:
        return f.read(int(headers["content-length"]))
    if "chunked" in headers.get("transfer-encoding", ""):
        body = b""
        while size := int(f.readline().split(b";")[0], 16):
            body += f.read(size)
            f.readline()
        f.readline()
        return body
    return f.read()


def request(target: str, host: str, method: str = "GET", extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"{method} {target} {version}\r\nHost: {host}\r\n{extra}\r\n".encode()


def test_requests_on_one_kept_alive_connection_each_get_their_own_answer(localcloud) -> None:
    host = urlsplit(localcloud).netloc
    with connect(localcloud) as sock:
        f = sock.makefile("rb")
        # two requests written at once (pipelined), then a third after the answers
        sock.sendall(request("/_localstack/health", host) + request("/_localstack/nothing-here", host))
        first = read_response(f)
        assert first[0] == 200 and b'"services"' in read_body(f, first[1])
        second = read_response(f)
        assert second[0] == 404
        read_body(f, second[1], status=second[0])
        sock.sendall(request("/_localstack/health", host, extra="Connection: close\r\n"))
        third = read_response(f)
        assert third[0] == 200
        read_body(f, third[1])
        assert f.read() == b""  # closed, as asked


def test_an_http_1_0_request_is_answered_and_the_connection_closed(localcloud) -> None:
    with connect(localcloud) as sock:
        f = sock.makefile("rb")
        sock.sendall(request("/_localstack/health", urlsplit(localcloud).netloc, version="HTTP/1.0"))
        status, headers = read_response(f)
        assert status == 200
        assert b'"services"' in read_body(f, headers)
        assert f.read() == b""


def test_a_chunked_upload_after_100_continue_is_stored_whole_and_head_sends_no_body(aws, bucket, localcloud) -> None:
    s3 = aws("s3")
    url = urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "big.bin"}))
    data = os.urandom(9 * 1024 * 1024 + 123)  # more than the server keeps in memory before it spools to a file
    with connect(localcloud) as sock:
        f = sock.makefile("rb")
        target = f"{url.path}?{url.query}"
        sock.sendall(request(target, url.netloc, "PUT", "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n"))
        interim = read_response(f)
        assert interim[0] == 100  # the body is sent only now, as botocore and curl do
        for start in range(0, len(data), 1 << 20):
            chunk = data[start : start + (1 << 20)]
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        status, headers = read_response(f)
        assert status == 200, read_body(f, headers, status=status)
        read_body(f, headers, status=status)

        # HEAD then GET on the same connection: HEAD's answer has the length but no body
        head = urlsplit(s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "big.bin"}))
        get = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "big.bin"}))
        sock.sendall(request(f"{head.path}?{head.query}", url.netloc, "HEAD"))
        status, headers = read_response(f)
        assert status == 200 and int(headers["content-length"]) == len(data)
        assert read_body(f, headers, "HEAD") == b""
        sock.sendall(request(f"{get.path}?{get.query}", url.netloc))
        status, headers = read_response(f)
        assert status == 200
        assert hashlib.sha256(read_body(f, headers)).digest() == hashlib.sha256(data).digest()


def test_tls_is_served_on_the_same_port(localcloud) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # LocalStack's own self-signed certificate
    with connect(localcloud) as raw, context.wrap_socket(raw) as sock:
        f = sock.makefile("rb")
        sock.sendall(request("/_localstack/health", urlsplit(localcloud).netloc, extra="Connection: close\r\n"))
        status, headers = read_response(f)
        assert status == 200 and b'"services"' in read_body(f, headers)
