"""What imgpipe prints of untrusted text (file names, the API's ids, statuses and messages, log lines) is shown as
text: never read as Rich markup (a file named "[/]" would crash it, "[link=...]x[/link]" would become a hyperlink) nor
passed to the terminal as control sequences. The API is faked by replacing Api's methods; the output goes to terminal
consoles that record it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from imgpipe import cli
from imgpipe.cli import app
from imgpipe.client import Api, ApiFailure
from rich.console import Console
from typer.testing import CliRunner

LINK = "[link=https://evil.example]x[/link]"
OSC_LINK = "a\x1b]8;;https://evil.example\x07b\x1b]8;;\x07"  # a hyperlink in the terminal's own escape sequences
HOSTILE = ["[/]", LINK, "[bold red]loud", "[/link]", OSC_LINK, "two\nlines", "\u202egpj.exe", "back\\"]


@pytest.fixture
def terminal(monkeypatch, tmp_path) -> SimpleNamespace:
    """imgpipe's stdout and stderr consoles as a colour terminal's, recorded; a bearer token in IMGPIPE_TOKEN."""
    for name in ("IMGPIPE_API_URL", "IMGPIPE_ENDPOINT_URL", "IMGPIPE_STACK", "IMGPIPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMGPIPE_TOKEN", "token")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    def console() -> Console:
        return Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=400, record=True)

    consoles = SimpleNamespace(out=console(), err=console())
    monkeypatch.setattr(cli, "out", consoles.out)
    monkeypatch.setattr(cli, "err", consoles.err)
    return consoles


def imgpipe(*args: str):
    return CliRunner().invoke(app, ["--api-url", "http://127.0.0.1:9", *args])


def shown(console: Console) -> str:
    """What the console showed, after checking it drove the terminal with colours only: no OSC sequence (hyperlink,
    window title), no bell, no cursor movement."""
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b]" not in raw and "\x07" not in raw
    assert "<a " not in console.export_html(clear=False)
    return console.export_text(clear=False)


def assert_shown_as_text(console: Console, *texts: str) -> None:
    text = shown(console)
    for value in texts:
        assert cli.safe(value) in text


def test_safe_spells_out_control_characters_and_bidi_overrides():
    assert cli.safe("a\x1b[31mb\nc\u202ed\x07") == "a\\x1b[31mb\\nc\\u202ed\\x07"
    assert cli.safe("[/] é ✓") == "[/] é ✓"


def test_ls_shows_hostile_file_names_ids_and_reasons_as_text(terminal, monkeypatch):
    # GIVEN images whose file names, ids, statuses and reasons are markup and escape sequences
    records = [
        {
            "imageId": f"id{n}{name}",
            "filename": name,
            "status": "REJECTED" if n % 2 else name,
            "uploadTimestamp": "2026-01-02T03:04:05Z",
            "error": {"code": name, "message": f"bad {name}"},
        }
        for n, name in enumerate(HOSTILE)
    ]
    monkeypatch.setattr(Api, "images", lambda self, status=None, limit=20: iter(records))
    # WHEN they are listed
    done = imgpipe("ls")
    # THEN no crash, no hyperlink, no escape sequence: each is shown as it is (control characters spelt out)
    assert done.exit_code == 0, done.output
    assert_shown_as_text(terminal.out, *HOSTILE, *(f"bad {name}" for name in HOSTILE))
    assert "evil.example" in shown(terminal.out)  # shown, as text


def test_ls_json_keeps_the_names_as_they_are(terminal, monkeypatch):
    records = [{"imageId": "img-1", "filename": name, "status": "PROCESSED"} for name in HOSTILE]
    monkeypatch.setattr(Api, "images", lambda self, status=None, limit=20: iter(records))
    done = imgpipe("ls", "--json")
    assert done.exit_code == 0
    assert [i["filename"] for i in json.loads(done.stdout)["images"]] == HOSTILE
    assert "\x1b" not in done.stdout  # JSON escapes control characters


def test_status_shows_a_hostile_record_as_text(terminal, monkeypatch):
    record = {
        "imageId": "[/]",
        "filename": LINK,
        "status": "[/]",
        "error": {"code": "[/]", "message": OSC_LINK},
        "uploadTimestamp": "[red]",
        "updatedAt": "[/red]",
        "original": {"format": "[/]", "width": 1, "height": 2, "bytes": 3},
        "renditions": [{"size": "[/]", "format": LINK, "width": 1, "height": 1}],
        "execution": "[link=https://evil.example]run[/link]",
    }
    monkeypatch.setattr(Api, "image", lambda self, image_id: record)
    done = imgpipe("status", "[/]")
    assert done.exit_code == 0, done.output
    assert_shown_as_text(terminal.out, LINK, OSC_LINK, "[/] 1x2, 3 bytes", f"[/]/{LINK} 1x1", record["execution"])


def test_upload_progress_live_table_and_summary_show_hostile_names_as_text(terminal, monkeypatch, tmp_path):
    # GIVEN files named with markup and escape sequences ("/" cannot be in a file name), ids and reasons from the API
    names = ["[link=https:evil.example]x.jpg", "[bold]b[red].jpg", "esc\x1b]8;;https:evil.example\x07.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(b"\xff\xd8\xff" + b"\0" * 1000)

    def grant(self: Api, path: Path, content_type: str | None) -> dict[str, Any]:
        return {"imageId": f"[/]{path.name}", "uploadUrl": "http://127.0.0.1:9/", "headers": {}}

    def put(self: Api, grant: dict[str, Any], path: Path, progress) -> None:
        progress(path.stat().st_size)

    def wait(self: Api, image_id: str, timeout: float, on_change=None) -> dict[str, Any]:
        record = {"imageId": image_id, "status": "REJECTED", "error": {"code": "[/]", "message": LINK}}
        if on_change:
            on_change(record)
        return record

    monkeypatch.setattr(Api, "grant", grant)
    monkeypatch.setattr(Api, "put", put)
    monkeypatch.setattr(Api, "wait", wait)
    # WHEN they are uploaded and watched
    done = imgpipe("upload", str(tmp_path), "--wait")
    # THEN the summary, the progress bars and the live table show them as text
    assert done.exit_code == 1, done.output  # rejected: the outcome, not a crash
    assert_shown_as_text(terminal.out, *names, *(f"[/]{name}" for name in names), f"[/]: {LINK}", "3 REJECTED")
    shown(terminal.err)


def test_trace_shows_hostile_names_errors_and_log_lines_as_text(terminal, monkeypatch):
    result = {
        "imageId": "img-1",
        "status": "[/]",
        "executions": [
            {
                "name": LINK,
                "status": "FAILED",
                "error": "[/]",
                "start": "2026-01-02T03:04:05.000Z",
                "durationMs": 1000,
                "states": [
                    {
                        "name": "[/]",
                        "type": LINK,
                        "start": "2026-01-02T03:04:05.100Z",
                        "durationMs": 10,
                        "retries": 1,
                        "errors": [OSC_LINK],
                    }
                ],
            }
        ],
    }
    lines = [
        {"function": "[/]", "timestamp": 1767323045000, "message": json.dumps({"level": "ERROR", "message": LINK})},
        {"function": "resize", "timestamp": 1767323045100, "message": f"Traceback {OSC_LINK}"},
    ]
    monkeypatch.setattr(Api, "call", lambda self, method, path, **kwargs: result)
    monkeypatch.setattr(cli, "function_logs", lambda image_id, start, end: lines)
    done = imgpipe("trace", "[/]")
    assert done.exit_code == 0, done.output
    assert_shown_as_text(terminal.out, LINK, f"({'[/]'})", OSC_LINK, f"ERROR {LINK}", f"Traceback {OSC_LINK}")


def test_an_api_error_message_is_one_line_of_text(terminal, monkeypatch):
    def refuse(self: Api, image_id: str) -> dict[str, Any]:
        raise ApiFailure(404, "NOT_FOUND", f"[/] gone\nnext {LINK} {OSC_LINK}", {})

    monkeypatch.setattr(Api, "image", refuse)
    done = imgpipe("status", "[/]")
    assert done.exit_code == 2
    assert shown(terminal.err) == cli.safe(f"imgpipe: NOT_FOUND (404): [/] gone\nnext {LINK} {OSC_LINK}") + "\n"


def test_rm_and_wait_show_the_ids_given_as_text(terminal, monkeypatch):
    monkeypatch.setattr(Api, "call", lambda self, method, path, **kwargs: None)
    assert imgpipe("rm", "[/]", LINK).exit_code == 0
    assert_shown_as_text(terminal.out, "deleted [/]", f"deleted {LINK}")
    monkeypatch.setattr(Api, "image", lambda self, image_id: {"imageId": image_id, "status": "PROCESSED"})
    assert imgpipe("wait", LINK).exit_code == 0
    assert_shown_as_text(terminal.err, f"{LINK} PROCESSED")
