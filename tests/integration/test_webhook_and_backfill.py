"""Completion events to a webhook, and the backfill after a configuration change, on a stack of their own
(``image-pipeline-hooked``: a webhook URL and secret, two sizes and two formats, small backfill pages)."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time

import jwt
import pytest
import requests

from tests import images

from .conftest import ROOT, Client, deploy


class Receiver(http.server.ThreadingHTTPServer):
    """The webhook's receiver on 127.0.0.1: keeps the requests whose secret header is right, answers 401 to others."""

    def __init__(self, secret: str) -> None:
        self.secret, self.received, self.refused = secret, [], 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805 - the handler's self; the server is self
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                if handler.headers.get("X-Image-Pipeline-Secret") == self.secret:
                    self.received.append(json.loads(body))
                    handler.send_response(200)
                else:
                    self.refused += 1
                    handler.send_response(401)
                handler.end_headers()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def events_of(self, image_ids: set[str], timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [e for e in self.received if e["detail"]["imageId"] in image_ids]
            if {e["detail"]["imageId"] for e in mine} == image_ids:
                return mine
            time.sleep(0.2)
        raise AssertionError(f"the webhook got no event for some of {image_ids}: {self.received}")


SECRET = "a-webhook-secret-of-this-test"


@pytest.fixture(scope="module")
def hooked(localcloud):
    receiver = Receiver(SECRET)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/image-events"
    settings = [f"WebhookUrl={url}", f"WebhookSecret={SECRET}", "ImageTableName=image-pipeline-hooked"]
    settings += ["BackfillPageSize=2", "BackfillPagesPerExecution=1"]
    stack = deploy("image-pipeline-hooked", *settings, "RenditionSizes=200,400", "RenditionFormats=webp,jpeg")
    yield stack, receiver, settings
    receiver.shutdown()


def test_the_webhook_receives_the_events_with_the_secret_header(hooked):
    stack, receiver, _ = hooked
    client = Client(stack)
    good, bad = client.upload(images.jpeg(640, 480), "image/jpeg"), client.upload(b"\x89PNG\r\n\x1a\n broken")
    assert client.wait(good)["status"] == "PROCESSED" and client.wait(bad)["status"] == "REJECTED"
    events = {e["detail"]["imageId"]: e for e in receiver.events_of({good, bad})}
    assert events[good]["detail-type"] == "Image Processed" and events[bad]["detail-type"] == "Image Rejected"
    owner = jwt.decode(client.token, options={"verify_signature": False})["sub"]
    assert events[good]["detail"]["owner"] == events[bad]["detail"]["owner"] == owner  # deliveries can be routed
    assert receiver.refused == 0


def test_backfill_re_renders_every_image_after_a_configuration_change_and_never_leaves_one_without(hooked, aws):
    stack, _, settings = hooked
    client = Client(stack)
    ids = [client.upload(images.jpeg(1000 + 10 * i, 750), "image/jpeg") for i in range(5)]
    assert all(client.wait(i)["status"] == "PROCESSED" for i in ids)
    before = {i: client.wait(i)["renditions"] for i in ids}
    assert {(r["size"], r["format"]) for r in before[ids[0]]} == {
        (200, "webp"),
        (200, "jpeg"),
        (400, "webp"),
        (400, "jpeg"),
    }

    deploy("image-pipeline-hooked", *settings, "RenditionSizes=300,600", "RenditionFormats=avif,jpeg")
    stale = aws("dynamodb").scan(  # what the backfill must re-render (a kept local cloud has earlier runs' too)
        TableName="image-pipeline-hooked",
        FilterExpression="#s = :p AND renditionSet <> :new",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": {"S": "PROCESSED"}, ":new": {"S": "300,600/avif,jpeg/800"}},
        Select="COUNT",
    )["Count"]
    # while the backfill runs, every image stays downloadable (its previous renditions are served)
    failures: list[tuple[str, int]] = []
    stop = threading.Event()

    def keep_downloading() -> None:
        while not stop.is_set():
            for i in ids:
                resp = client.download(i)
                if resp.status_code != 200:
                    failures.append((i, resp.status_code))

    watcher = threading.Thread(target=keep_downloading)
    watcher.start()
    try:  # the documented verb; 2 images a page, 1 page an execution: a run of several executions
        run = subprocess.run(
            ["make", "-s", "reprocess-all", "STACK=image-pipeline-hooked"], cwd=ROOT, capture_output=True, text=True
        )
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.stdout + run.stderr
    assert stale >= 5 and f"backfill SUCCEEDED: {stale} re-rendered, 0 failed" in run.stdout, run.stdout
    assert run.stdout.count("continued in") >= 2  # 2 images a page, 1 page an execution
    assert failures == []
    for i in ids:
        body = client.wait(i)
        assert {(r["size"], r["format"]) for r in body["renditions"]} == {
            (300, "avif"),
            (300, "jpeg"),
            (600, "avif"),
            (600, "jpeg"),
        }, i
        params = {"imageId": i, "size": 600, "format": "avif"}
        url = client.http.get(f"{stack.api}/download", params=params, timeout=30).json()["downloadUrl"]
        assert requests.get(url, timeout=30).headers["Content-Type"] == "image/avif"
        # the new version holds what the record names; the old one is retired (deleted after the grace period)
        prefix = f"renditions/{i}/{body['processed']['key'].split('/')[2]}/"
        listed = aws("s3").list_objects_v2(Bucket=stack.processed_bucket, Prefix=prefix)["Contents"]
        names = {o["Key"].rsplit("/", 1)[-1] for o in listed}
        assert names == {"300.avif", "300.jpg", "600.avif", "600.jpg", "default.jpg"}, i  # + the 800-px default

    # a second run finds nothing left to do
    again = subprocess.run(
        ["make", "-s", "reprocess-all", "STACK=image-pipeline-hooked"], cwd=ROOT, capture_output=True, text=True
    )
    assert again.returncode == 0 and "backfill SUCCEEDED: 0 re-rendered, 0 failed" in again.stdout, again.stdout
