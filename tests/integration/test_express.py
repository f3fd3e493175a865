"""The pipeline as an Express workflow (WorkflowType=EXPRESS): its own stack on the local cloud, the same product.

Express executions cannot be listed, described or asked for their history (the local cloud refuses their ARNs as AWS
does): the tests wait on the image's record and read the executions' histories from the state machine's log, as
GET /images/{id}/trace does. Express starts are at-least-once: duplicate deliveries must change nothing. The
pipeline's user-level tests (test_pipeline.py) and two fault tests (test_faults.py) run here too, against this
stack."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

from tests import images

from .conftest import (
    SUCCESS_STATES,
    Client,
    deploy,
    ended_trace,
    expected_renditions,
    new_user,
    object_created_event,
    reprocess_all,
    sign_in,
    stored_renditions,
    token_of_new_user,
)

# The pipeline's user-level tests and two fault tests (those that read no Standard execution history) run on this
# Express stack too: collected here, they take this module's stack and client.
from .test_faults import (  # noqa: F401
    test_original_replaced_while_processing_fails_with_a_named_error,
    test_permanent_fault_ends_failed_with_the_error_recorded,
)
from .test_pipeline import (  # noqa: F401
    test_animated_gif_gives_a_valid_rendition,
    test_bad_input_ends_rejected_with_its_code_and_writes_nothing,
    test_exif_orientation_is_applied_and_metadata_stripped,
    test_large_jpeg_is_resized_stored_and_downloadable,
    test_object_put_straight_into_the_bucket_is_processed,
    test_png_alpha_is_kept,
    test_small_image_is_not_upscaled,
    test_twenty_concurrent_uploads_all_end_processed,
)
from .test_surfaces import imgpipe

# Every setting the last test changes is named (a deploy keeps a parameter's previous value when it is not given, as
# sam deploy does).
STACK_NAME = "image-pipeline-express"
SETTINGS = ["WorkflowType=EXPRESS", "ImageTableName=image-pipeline-express"]
# the default set, and on this stack two fixed-shape profiles (the default stack has none)
DEFAULT_SET = [
    "RenditionSizes=200,400,800,1600",
    "RenditionFormats=avif,webp,jpeg",
    "RenditionProfiles=square:400x400:attention,card:1200x630:centre",
]


@pytest.fixture(scope="module")
def stack(localcloud):
    return deploy(STACK_NAME, *SETTINGS, *DEFAULT_SET)


@pytest.fixture(scope="module")
def client(stack) -> Client:
    return Client(stack)


@pytest.fixture(scope="module")
def admin(stack) -> Client:
    return Client(stack, token_of_new_user(stack, "admin", admin=True))


def logged_outcomes(aws, stack, arns: list[str], timeout: float = 90) -> dict[str, str]:
    """How each Express execution ended, from the state machine's log (waits until all have ended)."""
    from image_pipeline import trace

    logs, group = aws("logs"), stack.outputs["ImagePipelineStateMachineLogGroupName"]
    deadline = time.monotonic() + timeout
    while True:
        histories = trace.express_histories(logs, group, set(arns), since=None)
        ended = {arn: trace.timeline(events)["status"] for arn, events in histories.items()}
        if all(ended.get(arn, "RUNNING") != "RUNNING" for arn in arns):
            return ended
        assert time.monotonic() < deadline, f"executions still running: {ended}"
        time.sleep(0.5)


def test_the_state_machine_is_express(aws, stack):
    described = aws("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine)
    assert described["type"] == "EXPRESS"
    assert described["loggingConfiguration"]["level"] == "ALL"  # the history of an Express execution is its log


def test_an_upload_is_processed_announced_and_traced_from_the_log(client, stack, bus_events):
    image_id = client.upload(images.jpeg(2400, 1800), "image/jpeg")
    record = client.wait(image_id)
    assert record["status"] == "PROCESSED", record
    link = client.download(image_id)
    assert link.status_code == 200, link.text
    got = requests.get(link.json()["downloadUrl"])
    assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).size == (800, 600)

    [event] = bus_events({image_id})
    assert event["detail-type"] == "Image Processed" and event["detail"]["status"] == "PROCESSED"

    [execution] = ended_trace(client, stack, image_id)["executions"]
    assert execution["name"] == record["execution"] and execution["status"] == "SUCCEEDED"
    assert [s["name"] for s in execution["states"]] == SUCCESS_STATES
    assert all(s["durationMs"] is not None for s in execution["states"])


def test_profiles_are_rendered_and_downloaded_and_the_attention_square_keeps_the_subject(client, stack):
    scene, _ = images.wide_scene_with_subject()
    image_id = client.upload(images.encode(scene, "JPEG", quality=92), "image/jpeg")
    record = client.wait(image_id)
    assert record["status"] == "PROCESSED", record
    assert {name: [(r["format"], r["width"], r["height"]) for r in rs] for name, rs in record["profiles"].items()} == {
        "card": [("avif", 1143, 600), ("webp", 1143, 600), ("jpeg", 1143, 600)],  # 1800x600: no upscaling
        "square": [("avif", 400, 400), ("webp", 400, 400), ("jpeg", 400, 400)],
    }
    asked = client.http.get(
        f"{stack.api}/download", params={"imageId": image_id, "profile": "square", "format": "jpeg"}
    )
    assert asked.status_code == 200, asked.text
    got = requests.get(asked.json()["downloadUrl"])
    square = Image.open(io.BytesIO(got.content))
    assert got.headers["Content-Type"] == "image/jpeg" and square.size == (400, 400)
    assert red_pixels(square) > 1000  # the subject near the right edge, not the centre
    picture = client.http.get(f"{stack.api}/images/{image_id}/srcset").json()
    assert set(picture["profiles"]) == {"card", "square"}
    assert requests.get(picture["profiles"]["square"]["fallback"]["src"]).headers["Content-Type"] == "image/jpeg"
    missing = client.http.get(f"{stack.api}/download", params={"imageId": image_id, "profile": "banner"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NO_SUCH_PROFILE"
    assert missing.json()["profiles"] == ["card", "square"]


def red_pixels(im: Image.Image) -> int:
    """How many pixels of the wide scene's saturated red subject an image holds."""
    raw = im.convert("RGB").tobytes()
    return sum(1 for i in range(0, len(raw), 3) if raw[i] > 180 and raw[i + 1] < 90 and raw[i + 2] < 90)


def test_a_focal_point_re_renders_only_the_crops_centred_on_it(client, aws, stack):
    scene, _ = images.wide_scene_with_subject()
    image_id = client.upload(images.encode(scene, "JPEG", quality=92), "image/jpeg")
    first = client.wait(image_id)
    assert first["status"] == "PROCESSED" and first["focalPoint"] is None, first
    s3 = aws("s3")
    before = stored_renditions(s3, stack, image_id)

    # another user cannot set it: 404 as for an unknown id, and nothing runs
    stranger = Client(stack).http.patch(f"{stack.api}/images/{image_id}", json={"focalPoint": {"x": 0, "y": 0}})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "NOT_FOUND"
    # the owner sets one near the left edge, far from the subject the attention crop found
    patched = client.http.patch(f"{stack.api}/images/{image_id}", json={"focalPoint": {"x": 0.05, "y": 0.5}})
    assert patched.status_code == 202, patched.text
    assert patched.json()["focalPoint"] == {"x": 0.05, "y": 0.5} and patched.json()["rendering"]

    record = client.wait(image_id, execution=patched.json()["rendering"])
    assert record["status"] == "PROCESSED" and record["focalPoint"] == {"x": 0.05, "y": 0.5}, record
    # the set and the default are the ones the upload made; only the crops are new
    assert (record["renditions"], record["processed"]) == (first["renditions"], first["processed"])
    after = stored_renditions(s3, stack, image_id)
    made = after - before
    assert made and all(key.rsplit("/", 1)[1].split(".")[0] in ("square", "card") for key in made), made
    assert {k for k in after if k.rsplit("/", 1)[1][0].isdigit() or "/default." in k} <= before
    asked = client.http.get(
        f"{stack.api}/download", params={"imageId": image_id, "profile": "square", "format": "jpeg"}
    )
    square = Image.open(io.BytesIO(requests.get(asked.json()["downloadUrl"]).content))
    assert square.size == (400, 400) and red_pixels(square) == 0  # centred on the left edge, not on the subject
    [_, crops_run] = ended_trace(client, stack, image_id)["executions"]
    assert crops_run["name"] == patched.json()["rendering"] and crops_run["status"] == "SUCCEEDED"
    assert [s["name"] for s in crops_run["states"]] == SUCCESS_STATES

    # imgpipe clears it and waits: the square goes back to the attention crop, on the subject
    cleared = imgpipe(
        "--json", "focus", image_id, "--clear", "--wait", IMGPIPE_TOKEN=client.token, IMGPIPE_STACK=STACK_NAME
    )
    assert cleared.returncode == 0, cleared.stderr
    shown = json.loads(cleared.stdout)
    assert shown["status"] == "PROCESSED" and shown["focalPoint"] is None and shown["execution"] == shown["rendering"]
    asked = client.http.get(
        f"{stack.api}/download", params={"imageId": image_id, "profile": "square", "format": "jpeg"}
    )
    assert red_pixels(Image.open(io.BytesIO(requests.get(asked.json()["downloadUrl"]).content))) > 1000
    assert imgpipe("focus", image_id, "1.5", "0", IMGPIPE_TOKEN=client.token, IMGPIPE_STACK=STACK_NAME).returncode == 2


def test_a_click_on_the_web_page_re_renders_the_crops_on_that_point(browser, stack):
    """The web page's Focus dialog on a stack with crops: the click's point is recorded, the page waits for the
    crops-only run it started, and the square is then cut around that point."""
    username, password = new_user(stack, "web-focus")
    me = Client(stack, sign_in(stack, username, password))
    scene, _ = images.wide_scene_with_subject()
    image_id = me.upload(images.encode(scene, "JPEG", quality=92), "image/jpeg")
    assert me.wait(image_id)["status"] == "PROCESSED"
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.outputs["LocalWebUrl"])
    page.get_by_test_id("sign-in-username").fill(username)
    page.get_by_test_id("sign-in-password").fill(password)
    page.get_by_test_id("sign-in-submit").click()
    card = page.locator(f'[data-image-id="{image_id}"]')
    expect(card).to_have_attribute("data-status", "PROCESSED", timeout=30_000)

    card.get_by_test_id("focus-button").click()
    whole = page.get_by_test_id("focus-image")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=whole.element_handle(), timeout=20_000)
    box = whole.bounding_box()
    assert box and abs(box["width"] / box["height"] - 3) < 0.05  # the whole 3:1 scene
    whole.click(position={"x": box["width"] * 0.05, "y": box["height"] * 0.5})  # the left edge, far from the subject
    expect(page.get_by_test_id("focus-status")).to_have_text("Crops ready.", timeout=60_000)

    record = me.image(image_id).json()
    assert abs(record["focalPoint"]["x"] - 0.05) < 0.01 and len(record["executions"]) == 2, record
    asked = me.http.get(f"{stack.api}/download", params={"imageId": image_id, "profile": "square", "format": "jpeg"})
    assert red_pixels(Image.open(io.BytesIO(requests.get(asked.json()["downloadUrl"]).content))) == 0
    assert errors == []


def test_bad_input_ends_rejected_with_its_code(client, aws, stack):
    image_id = client.upload(b"this is not an image at all", "image/jpeg")
    record = client.wait(image_id)
    assert record["status"] == "REJECTED" and record["error"]["code"] == "UNSUPPORTED_FORMAT", record
    assert stored_renditions(aws("s3"), stack, image_id) == set()
    [execution] = ended_trace(client, stack, image_id)["executions"]
    assert execution["status"] == "FAILED" and execution["error"] == "InvalidImageError"


def test_concurrent_duplicate_deliveries_process_once(client, aws, stack):
    """At-least-once starts: the object's event four more times at once; one execution claims and processes it."""
    s3, sfn = aws("s3"), aws("stepfunctions")
    image_id = client.upload(images.jpeg(1600, 1200), "image/jpeg")
    event = object_created_event(s3, stack, image_id)
    arns = [
        sfn.start_execution(stateMachineArn=stack.state_machine, input=json.dumps(event))["executionArn"]
        for _ in range(4)
    ]
    assert all(":express:" in arn for arn in arns)

    record = client.wait(image_id)
    outcomes = logged_outcomes(aws, stack, arns)

    assert record["status"] == "PROCESSED", record
    assert set(outcomes.values()) == {"SUCCEEDED"}, outcomes  # the duplicates end in Skip duplicate
    assert len(record["executions"]) == 1  # one execution ever owned the image
    assert stored_renditions(s3, stack, image_id) == expected_renditions(record)
    time.sleep(1)
    assert client.image(image_id).json() == record  # nothing changed it afterwards


def test_a_killed_worker_is_retried_and_the_retry_is_in_the_trace(client, aws, stack, faults):
    resize = next(
        r["PhysicalResourceId"]
        for r in aws("cloudformation").describe_stack_resources(StackName="image-pipeline-express")["StackResources"]
        if r["LogicalResourceId"] == "ResizeFunction"
    )
    rule = faults(service="lambda", operation="Invoke", resource=resize, action="crash", count=1)
    image_id = client.upload(images.jpeg(2000, 1500), "image/jpeg")
    record = client.wait(image_id, timeout=120)
    assert faults.fired()[rule["id"]] == 1
    assert record["status"] == "PROCESSED", record
    trace = ended_trace(client, stack, image_id)
    [resized] = [s for s in trace["executions"][0]["states"] if s["name"] == "Resize image"]
    assert resized["retries"] == 1 and resized["errors"] == ["Runtime.ExitError"], resized


def test_a_profile_added_is_backfilled_alone_and_a_profile_removed_is_pruned(client, aws, stack):
    """It changes the stack's profiles (the set stays): the backfill renders only the missing crops."""
    image_id = client.upload(images.jpeg(1600, 1200), "image/jpeg")
    first = client.wait(image_id)
    assert first["status"] == "PROCESSED" and set(first["profiles"]) == {"square", "card"}, first
    s3 = aws("s3")
    before = stored_renditions(s3, stack, image_id)
    # card removed, banner added (small: the run renders it for every image of this stack)
    profiles = "RenditionProfiles=square:400x400:attention,banner:400x100:entropy"
    deploy("image-pipeline-express", *SETTINGS, *DEFAULT_SET[:2], profiles)
    run = reprocess_all("image-pipeline-express")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"backfill SUCCEEDED: (\d+) re-rendered, 0 failed", run.stdout), run.stdout
    record = client.wait(image_id)
    assert len(record["executions"]) == 2, record  # its upload, and the backfill's crops-only run
    assert (record["renditions"], record["processed"]) == (first["renditions"], first["processed"])
    assert record["profiles"]["square"] == first["profiles"]["square"]  # current: kept, not rendered again
    assert [(r["format"], r["width"], r["height"]) for r in record["profiles"]["banner"]] == [
        ("avif", 400, 100),
        ("webp", 400, 100),
        ("jpeg", 400, 100),
    ]
    assert set(record["profiles"]) == {"square", "banner"}  # the card is pruned from the record (its keys retired)
    made = stored_renditions(s3, stack, image_id) - before
    assert {key.rsplit("/", 1)[1] for key in made} == {"banner.avif", "banner.webp", "banner.jpg"}


def test_the_backfill_re_renders_through_the_express_pipeline(client, stack):
    """Last in this module: it changes the stack's rendition set. The backfill (a Standard workflow) runs each image
    through the Express pipeline and waits on it (startExecution.sync:2)."""
    ids = [client.upload(images.jpeg(1000 + 10 * i, 750), "image/jpeg") for i in range(3)]
    assert all(client.wait(i)["status"] == "PROCESSED" for i in ids)
    deploy("image-pipeline-express", *SETTINGS, "RenditionSizes=300", "RenditionFormats=webp")
    run = reprocess_all("image-pipeline-express")
    assert run.returncode == 0, run.stdout + run.stderr
    done = re.search(r"backfill SUCCEEDED: (\d+) re-rendered, 0 failed", run.stdout)
    assert done and int(done[1]) >= 3, run.stdout
    for image_id in ids:
        record = client.wait(image_id)
        assert [(r["size"], r["format"]) for r in record["renditions"]] == [(300, "webp")], record
        assert len(record["executions"]) == 2  # its first processing, and the backfill's
