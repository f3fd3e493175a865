"""What people use: GET /images, DELETE /images/{id} (also racing a running execution), GET /images/{id}/trace,
and the imgpipe command line run as a user runs it, against the deployed stack."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import requests

from tests import images

from .conftest import ROOT, SUCCESS_STATES, ended_trace, wait_executions_done

IMGPIPE = ROOT / ".venv" / "dev" / "bin" / "imgpipe"


def objects_left(s3, stack, image_id: str) -> list[str]:
    """Every object of the image: versions and delete markers of its original, renditions."""
    left = []
    versions = s3.list_object_versions(Bucket=stack.original_bucket, Prefix=f"uploads/{image_id}")
    left += [f"{v['Key']}@{v['VersionId']}" for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])]
    listed = s3.list_objects_v2(Bucket=stack.processed_bucket, Prefix=f"renditions/{image_id}")
    left += [o["Key"] for o in listed.get("Contents", [])]
    return left


def test_images_are_listed_newest_first_a_page_at_a_time(client):
    ids = [client.upload(images.jpeg(320, 240)) for _ in range(3)]
    seen, cursor = [], None
    while len(seen) < 50:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.http.get(f"{client.stack.api}/images", params=params).json()
        assert len(page["images"]) <= 2
        seen += [i["imageId"] for i in page["images"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen[:3] == ids[::-1]  # newest first
    assert len(seen) == len(set(seen))
    bad = client.http.get(f"{client.stack.api}/images", params={"limit": "500"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_LIMIT"
    bad = client.http.get(f"{client.stack.api}/images", params={"cursor": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_CURSOR"


def test_delete_leaves_nothing_behind_is_idempotent_and_announced(client, stack, aws, bus_events):
    s3 = aws("s3")
    image_id = client.upload(images.jpeg(1600, 1200))
    assert client.wait(image_id)["status"] == "PROCESSED"
    assert objects_left(s3, stack, image_id)
    url = f"{stack.api}/images/{image_id}"
    assert client.http.delete(url).status_code == 204
    assert objects_left(s3, stack, image_id) == []
    gone = client.image(image_id)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "NOT_FOUND"
    assert client.download(image_id).status_code == 404
    assert image_id not in {i["imageId"] for i in client.http.get(f"{stack.api}/images").json()["images"]}
    assert client.http.delete(url).status_code == 204  # again: the same answer
    never = client.http.delete(f"{stack.api}/images/2a321b24-8f83-49ed-ad4b-626e2ec02201")
    assert never.status_code == 404 and never.json()["error"]["code"] == "NOT_FOUND"
    deleted = [e for e in bus_events({image_id}) if e["detail-type"] == "Image Deleted"]
    assert [e["detail"]["previousStatus"] for e in deleted] == ["PROCESSED"]  # once, though deleted twice
    assert deleted[0]["detail"]["owner"] == jwt.decode(client.token, options={"verify_signature": False})["sub"]


@pytest.mark.parametrize("late", ["store-answer", "mark-processed"])
def test_a_delete_racing_the_execution_leaves_no_rendition_and_no_record(client, stack, aws, faults, late):
    """The image is deleted while its execution runs (Store published the set but has not answered yet; or Mark
    processed has not run yet): the execution cannot write the record again, and removes what it stored after the
    delete's cleanup."""
    s3, sfn = aws("s3"), aws("stepfunctions")
    if late == "store-answer":
        faults(service="lambda", operation="Invoke", resource="StoreFunction", latency_after_ms=4_000, count=1)
    else:
        faults(service="lambda", operation="Invoke", resource="MarkProcessedFunction", latency_ms=4_000, count=1)
    image_id = client.upload(images.jpeg(2400, 1800))
    prefix = f"renditions/{image_id}/"
    deadline = time.monotonic() + 60
    while not s3.list_objects_v2(Bucket=stack.processed_bucket, Prefix=prefix).get("KeyCount"):
        assert time.monotonic() < deadline, f"nothing under {prefix}"
        time.sleep(0.1)
    assert client.http.delete(f"{stack.api}/images/{image_id}").status_code == 204
    wait_executions_done(sfn, stack.state_machine, timeout=90)
    assert objects_left(s3, stack, image_id) == []
    assert client.image(image_id).status_code == 404  # not resurrected by the execution


def test_the_trace_shows_each_state_of_the_execution(client, stack):
    image_id = client.upload(images.jpeg(640, 480))
    record = client.wait(image_id)
    trace = ended_trace(client, stack, image_id)  # the record is PROCESSED before its execution has ended
    [execution] = trace["executions"]
    assert execution["name"] == record["execution"] and execution["status"] == "SUCCEEDED"
    assert "arn:" not in json.dumps(trace) + json.dumps(record)  # names, not ARNs: they hold the account id
    names = [s["name"] for s in execution["states"]]
    assert names == SUCCESS_STATES
    assert all(s["durationMs"] is not None and s["durationMs"] >= 0 for s in execution["states"])
    assert sum(s["durationMs"] for s in execution["states"]) <= execution["durationMs"]


# ---------------------------------------------------------------- imgpipe


CONFIG: dict[str, str] = {}  # XDG_CONFIG_HOME of the signed-in user (the module's fixture sets it)


def imgpipe(*args: str, cwd: Path | None = None, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")},
        "COLUMNS": "200",
        "IMGPIPE_ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566"),
        **CONFIG,
        **env,
    }
    return subprocess.run(
        [str(IMGPIPE), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300, input=stdin
    )


@pytest.fixture(scope="module", autouse=True)
def signed_in(stack, tmp_path_factory):
    """A user made and signed in with imgpipe itself, its tokens in a config folder of this module's own."""
    CONFIG["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    password = "Surfaces-password-42"
    added = imgpipe("users", "add", "surfaces", "--password-stdin", "--update", stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    login = imgpipe("login", "surfaces", "--password-stdin", stdin=password + "\n")
    assert login.returncode == 0, login.stderr
    yield
    CONFIG.clear()


def test_without_sign_in_imgpipe_says_what_to_do_and_refuses_forged_tokens(tmp_path):
    for command in (["ls"], ["status", "2a321b24-8f83-49ed-ad4b-626e2ec02201"], ["token"]):
        done = imgpipe(*command, XDG_CONFIG_HOME=str(tmp_path))
        assert done.returncode == 2 and done.stderr.strip() == "imgpipe: not signed in: run imgpipe login", command
    forged = imgpipe("ls", IMGPIPE_TOKEN="eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", XDG_CONFIG_HOME=str(tmp_path))
    assert forged.returncode == 2 and "refused" in forged.stderr
    token = imgpipe("token").stdout.strip()
    assert token.count(".") == 2
    mode = (Path(CONFIG["XDG_CONFIG_HOME"]) / "imgpipe" / "sessions").stat().st_mode & 0o777
    assert mode == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in (Path(CONFIG["XDG_CONFIG_HOME"]) / "imgpipe").rglob("*.json"))


def test_json_goes_after_the_command_too(folder):
    after = imgpipe("ls", "--limit", "1", "--json")
    assert after.returncode == 0, after.stderr
    assert "images" in json.loads(after.stdout)


def test_untrusted_file_names_are_shown_as_text(stack):
    # GIVEN images whose names (as a client declared them: any text, slashes too) are Rich markup
    token = imgpipe("token").stdout.strip()
    names = ["[/]", "[link=https://evil.example]x[/link]"]
    for name in names:
        grant = requests.post(
            f"{stack.api}/upload",
            json={"filename": name, "size": 10},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert grant.status_code == 201, grant.text
    # WHEN they are listed THEN the names show as they are: no crash, no link
    listed = imgpipe("ls", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    for name in names:
        assert name in listed.stdout
    assert "\x1b]8;" not in listed.stdout


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder as a person has one: two photos (one in a subfolder), a file that is not an image, a hidden file."""
    root = tmp_path_factory.mktemp("holiday")
    (root / "beach.jpg").write_bytes(images.jpeg(1600, 1200))
    (root / "day2").mkdir()
    (root / "day2" / "sunset.webp").write_bytes(images.webp(1200, 900))
    (root / "notes.jpg").write_text("this is not a photo")
    (root / ".DS_Store").write_bytes(b"\0" * 10)
    return root


def test_upload_a_folder_with_wait_reports_each_outcome_and_fails_for_the_bad_file(stack, folder):
    done = imgpipe("--json", "upload", str(folder), "--wait", "--jobs", "3")
    assert done.returncode == 1, done.stderr  # one file was rejected
    result = json.loads(done.stdout)
    by_name = {Path(r["file"]).name: r for r in result["images"]}
    assert set(by_name) == {"beach.jpg", "sunset.webp", "notes.jpg"}  # the hidden file is skipped
    assert by_name["beach.jpg"]["status"] == by_name["sunset.webp"]["status"] == "PROCESSED"
    assert (
        by_name["notes.jpg"]["status"] == "REJECTED" and by_name["notes.jpg"]["error"]["code"] == "UNSUPPORTED_FORMAT"
    )
    assert result["ok"] is False

    human = imgpipe("upload", str(folder / "beach.jpg"), "--wait")  # the human output: a summary table
    assert human.returncode == 0, human.stderr
    assert "PROCESSED" in human.stdout and "1 PROCESSED" in human.stdout and "Traceback" not in human.stderr


def test_status_ls_get_trace_reprocess_and_rm(stack, folder, tmp_path, aws):
    [uploaded] = json.loads(imgpipe("--json", "upload", str(folder / "beach.jpg"), "--wait").stdout)["images"]
    image_id = uploaded["imageId"]
    assert json.loads(imgpipe("--json", "status", image_id).stdout)["status"] == "PROCESSED"
    listed = json.loads(imgpipe("--json", "ls", "--status", "PROCESSED", "--limit", "5").stdout)["images"]
    assert image_id in {i["imageId"] for i in listed}

    got = imgpipe("--json", "get", image_id, "--size", "400", "--format", "webp", "-o", str(tmp_path / "b.webp"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "b.webp").read_bytes()[8:12] == b"WEBP" and json.loads(got.stdout)["width"] == 400

    wait_executions_done(aws("stepfunctions"), stack.state_machine)  # the record is PROCESSED before the end
    trace = imgpipe("trace", image_id)
    assert trace.returncode == 0, trace.stderr
    for state in ("Validate image", "Resize image", "Store renditions", "Mark processed", "SUCCEEDED"):
        assert state in trace.stdout
    assert "log lines" in trace.stdout and "validated" in trace.stdout  # the functions' own lines of this image

    again = imgpipe("--json", "reprocess", image_id, "--wait")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "PROCESSED"
    wait_executions_done(aws("stepfunctions"), stack.state_machine)
    traced = json.loads(imgpipe("--json", "trace", image_id, "--no-logs").stdout)
    assert len(traced["executions"]) == 2 and all(e["status"] == "SUCCEEDED" for e in traced["executions"])

    # a focal point is kept for the crops; this stack has none configured, so nothing is rendered
    focused = imgpipe("--json", "focus", image_id, "0.25", "0.75")
    assert focused.returncode == 0, focused.stderr
    assert json.loads(focused.stdout)["focalPoint"] == {"x": 0.25, "y": 0.75}
    assert json.loads(focused.stdout)["rendering"] is None
    assert "focal point" in imgpipe("status", image_id).stdout
    assert imgpipe("focus", image_id, "0.5").returncode == 2  # X without Y

    assert imgpipe("rm", image_id).returncode == 0
    assert objects_left(aws("s3"), stack, image_id) == []
    missing = imgpipe("status", image_id)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == "imgpipe: NOT_FOUND (404): the image was deleted"  # one line, no traceback


def test_upload_retries_when_storage_throttles(stack, faults, tmp_path):
    rule = faults(service="s3", operation="PutObject", resource=stack.original_bucket, error="SlowDown", count=2)
    photo = tmp_path / "throttled.jpg"
    photo.write_bytes(images.jpeg(640, 480))
    done = imgpipe("--json", "upload", str(photo), "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [i["status"] for i in json.loads(done.stdout)["images"]] == ["PROCESSED"]
    assert faults.fired()[rule["id"]] == 2  # two 503 SlowDown answers, each retried
