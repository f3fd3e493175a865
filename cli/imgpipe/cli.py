"""imgpipe: login, upload, status, wait, ls, get, reprocess, focus, rm, trace, token, logout, users add. ``--json``
on every command (before or after its name); errors are one line; text from the server or from file names is shown
as text, never as Rich markup or terminal control sequences."""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import mimetypes
import os
import sys
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import requests  # type: ignore[import-untyped]  # no stubs in the dev environment
import typer
from botocore.exceptions import BotoCoreError, ClientError
from image_pipeline import contracts
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from imgpipe import auth
from imgpipe.client import TERMINAL, Api, ApiFailure, Bearer, CliError, Target, aws_message, dumps

EXIT_STATUS = (
    "Exit status: 0 done; 1 refused or not processed (an image not PROCESSED, a wrong password, a user who exists "
    'already); 2 an error, "not signed in" included; 130 interrupted.'
)


def safe(value: object) -> str:
    """Text from the server or a file name as it may go to a terminal: control characters (escape sequences, newlines)
    and bidi overrides spelt out (\\x1b, \\n, \\u202e), so it stays on its line and cannot drive the terminal."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) == "Cc" or ch in _BIDI else ch
        for ch in str(value)
    )


_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain(value: object, style: str = "") -> Text:
    """``value`` as literal text: never read as Rich markup (a file named ``[/]`` or ``[link=...]x[/link]``)."""
    return Text(safe(value), style=style)


def say(value: object, style: str = "") -> None:
    """One line of literal text on stdout, never wrapped (piped, Rich would wrap at 80 columns)."""
    out.print(plain(value, style), soft_wrap=True)


def cells(*values: object) -> list[Text]:
    """A table row of literal text (Text cells, already styled, as they are)."""
    return [value if isinstance(value, Text) else plain(value) for value in values]


class Imgpipe(TyperGroup):
    """The root command: every error reported on one line (as JSON with --json), with an exit status that means
    something (EXIT_STATUS)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (CliError, ClientError, BotoCoreError, requests.RequestException, OSError) as e:
            fail(e)
        except KeyboardInterrupt:
            err.print("imgpipe: interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=Imgpipe,
    help="The image pipeline from a terminal: the local cloud by default, a real AWS stack with --region.",
    epilog=EXIT_STATUS,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
users = typer.Typer(
    help="The stack's users (its Cognito user pool): an operator's commands, with AWS credentials, no sign-in.",
    no_args_is_help=True,
)
app.add_typer(users, name="users")
out = Console()
err = Console(stderr=True)
ACCEPTED = set(contracts.UPLOAD_CONTENT_TYPES)
for _ext, _type in ((".heic", "image/heic"), (".heif", "image/heif"), (".avif", "image/avif"), (".webp", "image/webp")):
    mimetypes.add_type(_type, _ext)
STATUS_STYLE = {
    contracts.PROCESSED: "green",
    contracts.REJECTED: "red",
    contracts.FAILED: "red",
    contracts.EXPIRED: "red",
    contracts.DELETED: "dim",
}


class State:
    """This run's: the target, --json, and (commands that speak the API) the bearer token's source."""

    target: Target
    json: bool = False
    bearer: Bearer | None = None
    _api: Api | None = None

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.target, self.bearer or auth.bearer(self.target))
        return self._api


state = State()
P = ParamSpec("P")
R = TypeVar("R")


def signed_in(command: Callable[P, R]) -> Callable[P, R]:  # noqa: UP047 - imgpipe runs on 3.11 (requires-python)
    """The command speaks the HTTP API: without a bearer token (IMGPIPE_TOKEN or a kept sign-in) it fails with
    "not signed in" (exit status 2) before it does anything else."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        state.bearer = auth.bearer(state.target)
        return command(*args, **kwargs)

    return run


def _json_after(value: bool) -> None:
    if value:
        state.json = True


# --json after the command's name as well as before it: an option of each command that sets what the root's sets
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="machine-readable output", callback=_json_after, expose_value=False),
]


@app.callback()
def options(
    stack: Annotated[str, typer.Option(envvar="IMGPIPE_STACK", help="CloudFormation stack name")] = "image-pipeline",
    region: Annotated[str | None, typer.Option(help="a real AWS region (default: the local cloud)")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(envvar="IMGPIPE_ENDPOINT_URL", help="the local cloud's endpoint")
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(envvar="IMGPIPE_API_URL", help="the API's base URL (else from the stack)")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="IMGPIPE_API_KEY", help="x-api-key, if the stack needs one")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="machine-readable output (also after the command)")
    ] = False,
) -> None:
    state.target = Target.choose(stack, region, endpoint_url, api_url, api_key)
    state.json, state.bearer, state._api = json_output, None, None


def fail(e: Exception) -> NoReturn:
    """Report ``e`` on one line (stderr; stdout as JSON with --json) and exit: its exit_code, else 2."""
    if isinstance(e, ClientError):
        message, code = aws_message(e), str(e.response.get("Error", {}).get("Code") or "ClientError")
    else:
        message, code = str(e), str(getattr(e, "code", None) or e.__class__.__name__)
    if state.json:
        print(json.dumps({"error": {"code": code, "message": message}}))
    else:
        err.print(plain(f"imgpipe: {message}"), soft_wrap=True)  # one line, whatever the terminal's width
    raise typer.Exit(getattr(e, "exit_code", 2))


def emit(value: Any) -> None:
    print(dumps(value))


def status_text(status: str) -> Text:
    return plain(status, STATUS_STYLE.get(status, "yellow"))


def reason(record: dict[str, Any]) -> str:
    error = record.get("error") or {}
    return f"{error.get('code')}: {error.get('message')}" if error else ""


# ---------------------------------------------------------------- upload


def expand(paths: list[str]) -> list[Path]:
    """Files, folders (every file below, hidden ones skipped) and globs, each file once, in order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
            if not matches:
                raise CliError(f"{raw}: no such file, folder or matching file")
            found += matches
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)  # each file once, shown as the user named it
    return list(unique.values())


def content_type(path: Path) -> str | None:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed in ACCEPTED else None  # else the pipeline judges the bytes


@app.command()
@signed_in
def upload(
    paths: Annotated[list[str], typer.Argument(help="files, folders and globs")],
    wait: Annotated[bool, typer.Option("--wait", help="watch until every image is processed or rejected")] = False,
    jobs: Annotated[int, typer.Option(min=1, max=32, help="uploads at a time")] = 4,
    timeout: Annotated[float, typer.Option(help="seconds to wait for processing (--wait)")] = 600,
    json_output: JsonOption = False,
) -> None:
    """Upload images (each straight to S3 with a presigned URL); with --wait, until each is terminal."""
    files = expand(paths)
    api = state.api
    results: dict[Path, dict[str, Any]] = {
        p: {"file": str(p), "imageId": None, "status": None, "error": None} for p in files
    }
    progress = Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=state.json,
    )
    overall = progress.add_task(f"[bold]{len(files)} files", total=sum(p.stat().st_size for p in files))

    def one(path: Path) -> None:
        task = progress.add_task(escape(safe(path.name[:40])), total=path.stat().st_size)

        def advance(n: int) -> None:
            progress.advance(task, n)
            progress.advance(overall, n)

        try:
            grant = api.grant(path, content_type(path))
            results[path]["imageId"] = grant["imageId"]
            api.put(grant, path, advance)
            results[path]["status"] = "UPLOADED"
        except ApiFailure as e:  # refused before any byte was sent: the reason is the API's
            results[path].update(status="REFUSED", error={"code": e.code, "message": str(e)})
            progress.advance(overall, path.stat().st_size - progress.tasks[task].completed)
        except CliError as e:
            results[path].update(status="UPLOAD_FAILED", error={"code": "UPLOAD_FAILED", "message": str(e)})
        finally:
            progress.remove_task(task)

    with progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(one, p) for p in files]):
            future.result()
    if wait:
        watch_all([r for r in results.values() if r["status"] == "UPLOADED"], api, timeout)
    summarize(list(results.values()), waited=wait)


def watch_all(items: list[dict[str, Any]], api: Api, timeout: float) -> None:
    """Poll every uploaded image (backing off per image) until all are terminal; a live table meanwhile."""
    lock = threading.Lock()

    def table() -> Table:
        t = Table(title="processing", expand=False)
        for column in ("file", "image id", "status", "reason"):
            t.add_column(column)
        with lock:
            for item in items:
                t.add_row(*cells(Path(item["file"]).name, item["imageId"], status_text(item["status"]), reason(item)))
        return t

    def follow(item: dict[str, Any]) -> None:
        def changed(record: dict[str, Any]) -> None:
            with lock:
                item.update(status=record["status"], error=record.get("error"))

        try:
            changed(api.wait(item["imageId"], timeout, changed))
        except CliError as e:  # e.g. deleted meanwhile: that image's line says so, the others go on
            with lock:
                item.update(status="UNKNOWN", error={"code": getattr(e, "code", "ERROR"), "message": str(e)})

    live = nullcontext() if state.json else Live(table(), console=err, refresh_per_second=4, transient=True)
    with live, ThreadPoolExecutor(max_workers=min(16, max(1, len(items)))) as pool:
        futures = [pool.submit(follow, item) for item in items]
        while not all(f.done() for f in futures):
            if isinstance(live, Live):
                live.update(table())
            time.sleep(0.25)
        for f in futures:
            f.result()


def summarize(results: list[dict[str, Any]], waited: bool) -> None:
    good = (contracts.PROCESSED,) if waited else ("UPLOADED", contracts.PROCESSED)
    failed = [r for r in results if r["status"] not in good]
    if state.json:
        emit({"images": results, "ok": not failed})
    else:
        t = Table(title="summary")
        for column in ("file", "image id", "status", "reason"):
            t.add_column(column)
        for r in results:
            t.add_row(*cells(r["file"], r["imageId"] or "-", status_text(r["status"] or "-"), reason(r)))
        out.print(t)
        counts: dict[str, int] = {}
        for r in results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        say(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------- one image


def show_image(record: dict[str, Any]) -> None:
    t = Table(show_header=False, box=None)
    t.add_row(*cells("image id", record["imageId"]))
    t.add_row(*cells("file", record.get("filename") or "-"))
    t.add_row(*cells("status", status_text(record["status"])))
    if record.get("error"):
        t.add_row(*cells("reason", reason(record)))
    t.add_row(*cells("uploaded", record.get("uploadTimestamp") or "-"))
    t.add_row(*cells("updated", record.get("updatedAt") or "-"))
    original = record.get("original")
    if original:
        described = f"{original['format']} {original['width']}x{original['height']}, {original['bytes']} bytes"
        t.add_row(*cells("original", described))
    renditions = record.get("renditions") or []
    if renditions:
        listed = ", ".join(f"{r['size']}/{r['format']} {r['width']}x{r['height']}" for r in renditions)
        t.add_row(*cells("renditions", listed))
    for name, crops in sorted((record.get("profiles") or {}).items()):
        t.add_row(*cells(f"profile {name}", ", ".join(f"{r['format']} {r['width']}x{r['height']}" for r in crops)))
    if record.get("focalPoint"):
        t.add_row(*cells("focal point", f"x {record['focalPoint']['x']}, y {record['focalPoint']['y']}"))
    t.add_row(*cells("execution", record.get("execution") or "-"))
    out.print(t)


@app.command()
@signed_in
def status(image_id: str, json_output: JsonOption = False) -> None:
    """An image's status, metadata and renditions."""
    record = state.api.image(image_id)
    emit(record) if state.json else show_image(record)


@app.command("wait")
@signed_in
def wait_command(
    image_id: str, timeout: Annotated[float, typer.Option(help="seconds")] = 600, json_output: JsonOption = False
) -> None:
    """Wait until the image is terminal; exit status 0 only if it is PROCESSED."""
    record = state.api.wait(
        image_id, timeout, None if state.json else lambda r: err.print(plain(image_id), status_text(r["status"]))
    )
    emit(record) if state.json else show_image(record)
    if record["status"] != contracts.PROCESSED:
        raise typer.Exit(1)


@app.command("ls")
@signed_in
def list_command(
    status_filter: Annotated[
        str | None, typer.Option("--status", help="PENDING, PROCESSING, PROCESSED, REJECTED, FAILED, EXPIRED")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many (newest first)")] = 50,
    json_output: JsonOption = False,
) -> None:
    """The images, newest first."""
    images = []
    for record in state.api.images(status_filter.upper() if status_filter else None, limit):
        images.append(record)
        if len(images) >= limit:
            break
    if state.json:
        emit({"images": images})
        return
    t = Table()
    for column in ("image id", "file", "status", "uploaded", "size", "reason"):
        t.add_column(column)
    for r in images:
        original = r.get("original") or {}
        size = f"{original['width']}x{original['height']}" if original else "-"
        t.add_row(
            *cells(
                r["imageId"],
                r.get("filename") or "-",
                status_text(r["status"]),
                (r.get("uploadTimestamp") or "")[:19],
                size,
                reason(r),
            )
        )
    out.print(t)


@app.command()
@signed_in
def get(
    image_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
    size: Annotated[int | None, typer.Option(help="a box of the rendition set, e.g. 400")] = None,
    format: Annotated[str | None, typer.Option(help="avif, webp, jpeg, png or auto")] = None,
    profile: Annotated[str | None, typer.Option(help="a fixed-shape profile (RenditionProfiles), e.g. square")] = None,
    json_output: JsonOption = False,
) -> None:
    """Download a rendition (the default one without --size/--format/--profile)."""
    params = {"imageId": image_id}
    if size is not None:
        params["size"] = str(size)
    if profile is not None:
        params["profile"] = profile
    if format is not None:
        params["format"] = format
    answer = state.api.call("GET", "download", params=params, headers={"Accept": "image/avif,image/webp,*/*"}) or {}
    response = requests.get(answer["downloadUrl"], timeout=60)
    if not response.ok:
        raise CliError(f"download failed: HTTP {response.status_code}")
    output.write_bytes(response.content)
    result = {
        **{k: v for k, v in answer.items() if k != "downloadUrl"},
        "file": str(output),
        "written": len(response.content),
    }
    emit(result) if state.json else say(
        f"{output}: {len(response.content)} bytes"
        + (f" ({answer['format']} {answer['width']}x{answer['height']})" if "format" in answer else "")
    )


def reprocess_event(image_id: str) -> dict[str, Any]:
    """The S3 "Object Created" event of the image's original with "reprocess": true (what the workflow takes)."""
    record = state.api.image(image_id)
    original = record.get("original")
    if not original:
        raise CliError(f"{image_id} has no validated original ({record['status']}): upload it again")
    bucket = state.target.output("OriginalBucketName")
    try:
        head = state.target.client("s3").head_object(Bucket=bucket, Key=original["key"])
    except ClientError as e:
        raise CliError(f"the original of {image_id} is not readable: {aws_message(e)}") from None
    event = contracts.reprocess_event(bucket, original["key"], head["ETag"].strip('"'))
    event["detail"]["object"]["size"] = head["ContentLength"]
    return {
        **event,
        "version": "0",
        "account": state.target.output("ImagePipelineStateMachineArn").split(":")[4],
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "region": state.target.region,
        "resources": [f"arn:aws:s3:::{bucket}"],
    }


def wait_for_execution(image_id: str, arn: str, timeout: float) -> dict[str, Any]:
    """The image's record once execution ``arn`` has finished with it: terminal and recorded by that execution, or
    the execution ended without claiming it (then the record as it is)."""
    sfn, deadline, delay = state.target.client("stepfunctions"), time.monotonic() + timeout, 0.3
    name = arn.split(":")[7]  # the API names executions by name (…:execution:SM:NAME, …:express:SM:NAME:ID)
    express = arn.split(":")[5] == "express"  # not describable: it ends within 5 minutes, the record tells
    while True:
        record = state.api.image(image_id)
        if record.get("execution") == name and record["status"] in TERMINAL:
            return record
        if not express and sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            record = state.api.image(image_id)  # it may have recorded the end just before it ended
            if record.get("execution") != name:
                raise CliError(f"execution {name} ended without processing {image_id} (imgpipe trace)")
            return record
        if time.monotonic() > deadline:
            raise CliError(f"{image_id} is still {record['status']} after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


@app.command()
@signed_in  # it reads the image's record from the API (and starts the execution with AWS credentials)
def reprocess(
    image_id: str,
    print_event: Annotated[bool, typer.Option("--print-event", help="only print the execution input")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait until it is terminal again")] = False,
    json_output: JsonOption = False,
) -> None:
    """Run the image through the pipeline again (Step Functions StartExecution with a reprocess event)."""
    event = reprocess_event(image_id)
    if print_event:
        print(json.dumps(event, indent=2))
        return
    arn = state.target.client("stepfunctions").start_execution(
        stateMachineArn=state.target.output("ImagePipelineStateMachineArn"), input=json.dumps(event)
    )["executionArn"]
    record = wait_for_execution(image_id, arn, 600) if wait else None
    if state.json:
        emit({"imageId": image_id, "executionArn": arn, **({"status": record["status"]} if record else {})})
    else:
        say(f"started {arn}")
        if record:
            out.print(plain(image_id), status_text(record["status"]))
    if record and record["status"] != contracts.PROCESSED:
        raise typer.Exit(1)


@app.command()
@signed_in
def focus(
    image_id: str,
    x: Annotated[float | None, typer.Argument(help="0-1 across the upright image, from the left", min=0, max=1)] = None,
    y: Annotated[float | None, typer.Argument(help="0-1 down the upright image, from the top", min=0, max=1)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the focal point: each crop's own strategy")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the crops are rendered")] = False,
    json_output: JsonOption = False,
) -> None:
    """Set the image's focal point (PATCH /images/{id}): its fixed-shape crops are rendered again centred on it,
    and nothing else is."""
    if clear == (x is not None and y is not None) or (x is None) != (y is None):
        raise CliError("give X and Y (each 0-1), or --clear")
    point = None if clear else {"x": x, "y": y}
    answer = state.api.call("PATCH", f"images/{image_id}", json={"focalPoint": point}) or {}
    rendering = answer.get("rendering")
    record = state.api.wait(image_id, 600, execution=rendering) if wait and rendering else answer
    if state.json:
        emit({**record, "rendering": rendering})
        return
    say(
        f"focal point {'cleared' if clear else f'x {x}, y {y}'}"
        + (f"; rendering the crops ({rendering})" if rendering else "; no crops to render")
    )
    if wait and rendering:
        show_image(record)


@app.command()
@signed_in
def rm(image_ids: Annotated[list[str], typer.Argument(help="image ids")], json_output: JsonOption = False) -> None:
    """Delete images: every version of the original, every rendition and the record (again: no error)."""
    for image_id in image_ids:
        state.api.call("DELETE", f"images/{image_id}")
        if not state.json:
            say(f"deleted {image_id}")
    if state.json:
        emit({"deleted": image_ids})


# ---------------------------------------------------------------- trace


def function_logs(image_id: str, start: str, end: str | None) -> list[dict[str, Any]]:
    """The stack's functions' log lines that name the image, within its executions' time (CloudWatch Logs)."""
    cfn, logs = state.target.client("cloudformation"), state.target.client("logs")
    groups = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=state.target.stack):
        groups += [
            r["PhysicalResourceId"]
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::Logs::LogGroup" and r["PhysicalResourceId"].startswith("/aws/lambda/")
        ]
    since = int((datetime.fromisoformat(start.replace("Z", "+00:00")) - timedelta(seconds=2)).timestamp() * 1000)
    until = (
        int((datetime.fromisoformat(end.replace("Z", "+00:00")) + timedelta(seconds=5)).timestamp() * 1000)
        if end
        else None
    )
    lines = []
    for group in groups:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": since, "filterPattern": f'"{image_id}"'}
        if until:
            kwargs["endTime"] = until
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                for e in page.get("events", []):
                    if image_id in e["message"]:
                        lines.append(
                            {
                                "function": group.rsplit("/", 1)[-1],
                                "timestamp": e["timestamp"],
                                "message": e["message"].strip(),
                            }
                        )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
    return sorted(lines, key=lambda line: line["timestamp"])


def short_message(message: str) -> str:
    try:
        data = json.loads(message)
    except ValueError:  # the runtime's own lines (START/END, an uncaught error): their first line says it
        return message.strip().splitlines()[0][:200] if message.strip() else ""
    fields = [f"{data.get('level', '')} {data.get('message', '')}".strip()]
    fields += [f"{k}={data[k]}" for k in ("error", "reason", "code", "status") if k in data]
    return " ".join(fields)[:200]


@app.command()
@signed_in
def trace(
    image_id: str,
    logs: Annotated[bool, typer.Option("--logs/--no-logs", help="the functions' log lines (CloudWatch Logs)")] = True,
    json_output: JsonOption = False,
) -> None:
    """The execution(s) behind an image: each state with start, duration, retries and errors; the log lines."""
    result = state.api.call("GET", f"images/{image_id}/trace") or {}
    executions = result.get("executions", [])
    if logs and executions:
        last = executions[-1]
        end = None if last["status"] == "RUNNING" else _end(last)
        try:
            result["logs"] = function_logs(image_id, executions[0]["start"], end)
        except (ClientError, BotoCoreError) as e:
            result["logs"] = []
            result["logsError"] = str(e)
    if state.json:
        emit(result)
        return
    out.print(plain(image_id, "bold"), status_text(result.get("status", "?")))
    if not executions:
        out.print("no execution yet: the upload has not arrived")
    for execution in executions:
        t = Table(
            title=Text.assemble(
                plain(execution["name"]),
                "  ",
                status_text(execution["status"]),
                plain(f" ({execution['error']})" if execution.get("error") else ""),
                f"  {_secs(execution.get('durationMs'))}",
            ),
            title_justify="left",
        )
        for column, justify in (
            ("state", "left"),
            ("type", "left"),
            ("start", "left"),
            ("+ms", "right"),
            ("duration", "right"),
            ("retries", "right"),
            ("errors", "left"),
        ):
            t.add_column(column, justify=justify)  # type: ignore[arg-type]
        started = datetime.fromisoformat(execution["start"].replace("Z", "+00:00"))
        for s in execution["states"]:
            offset = (datetime.fromisoformat(s["start"].replace("Z", "+00:00")) - started).total_seconds() * 1000
            t.add_row(
                *cells(
                    s["name"],
                    s["type"],
                    s["start"][11:23],
                    f"{offset:.0f}",
                    _secs(s["durationMs"]),
                    str(s["retries"]) if s["retries"] else "",
                    ", ".join(s["errors"]),
                )
            )
        out.print(t)
    if result.get("logs"):
        out.print("[bold]log lines[/bold]")
        for line in result["logs"]:
            at = datetime.fromtimestamp(line["timestamp"] / 1000).astimezone().strftime("%H:%M:%S.%f")[:-3]
            out.print(
                Text.assemble(at, " ", plain(line["function"], "cyan"), " ", plain(short_message(line["message"]))),
                highlight=False,
            )
    elif result.get("logsError"):
        say(f"log lines unavailable: {result['logsError']}", "yellow")


def _end(execution: dict[str, Any]) -> str | None:
    if execution.get("durationMs") is None:
        return None
    started = datetime.fromisoformat(execution["start"].replace("Z", "+00:00"))
    return (started + timedelta(milliseconds=execution["durationMs"])).isoformat()


def _secs(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.3f} s"


@app.command()
def web(json_output: JsonOption = False) -> None:
    """The web page's address (no sign-in: the page signs in itself)."""
    emit({"webUrl": state.target.web_url}) if state.json else say(state.target.web_url)


# ---------------------------------------------------------------- signing in


def read_password(from_stdin: bool, confirm: bool) -> str:
    """The first line of stdin (its newline stripped), or a hidden prompt on the terminal."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("--password-stdin: no password on the first line of stdin")
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm, err=True))


def pool_output(key: str) -> str:
    if key not in state.target.outputs:
        raise CliError(
            f"stack {state.target.stack} has no user pool of its own (no output {key}): "
            "its users sign in with the issuer it trusts (IMGPIPE_TOKEN)"
        )
    return state.target.outputs[key]


@app.command(
    help="Sign in to the stack's user pool: the tokens are kept for this stack and refreshed when needed.\n\n"
    "They are kept in your config directory (~/.config/imgpipe/sessions/ on Linux), one file per stack, readable by "
    "you only. A wrong password: exit status 1; a temporary password: an operator sets a permanent one with "
    "imgpipe users add NAME --update."
)
def login(
    name: Annotated[str, typer.Argument(help="user name")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
    ] = False,
    client_id: Annotated[
        str | None,
        typer.Option(envvar="IMGPIPE_CLIENT_ID", help="the user pool's app client (else the stack's UserPoolClientId)"),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    client_id = client_id or pool_output("UserPoolClientId")
    password = read_password(password_stdin, confirm=False)
    session, path = auth.login(state.target, name, password, client_id)
    if state.json:
        emit({"username": session.username, "stack": session.stack, "where": state.target.where, "file": str(path)})
    else:
        say(f"signed in to {session.stack} ({state.target.where}) as {session.username}")
    if os.environ.get(auth.TOKEN_ENV):
        err.print(
            plain(f"imgpipe: note: {auth.TOKEN_ENV} is set and takes precedence over this sign-in"), soft_wrap=True
        )


@app.command()
def logout(json_output: JsonOption = False) -> None:
    """Forget the kept sign-in to this stack, and revoke its refresh token where the user pool can."""
    session, revoked = auth.logout(state.target)
    if state.json:
        emit({"signedOut": session is not None, "username": session.username if session else None, "revoked": revoked})
    elif session:
        say(f"signed out of {session.stack} ({state.target.where}): {session.username}'s tokens forgotten")
    else:
        say(f"not signed in to {state.target.stack} ({state.target.where}): nothing to forget")


@app.command(
    help="Print a bearer token and nothing else: IMGPIPE_TOKEN, or the kept IdToken (refreshed if needed).\n\n"
    'For curl -H "Authorization: Bearer $(imgpipe token)" and the like.'
)
@signed_in
def token(json_output: JsonOption = False) -> None:
    value = (state.bearer or auth.bearer(state.target)).token()
    if state.json:
        emit({"token": value, "claims": auth.claims(value)})
    else:
        print(value)


@users.command(
    "add",
    help="Add a user who can sign in, with a permanent password (no invitation is sent); --admin: an admin.\n\n"
    "A user who exists already is refused (exit status 1) unless --update: then its password is set anew (a "
    "temporary one replaced) and --admin adds it to the admin group; nothing is ever removed. A password the user "
    "pool's policy refuses: exit status 1, and no user is left behind. Needs AWS credentials, not a sign-in.",
)
def users_add(
    name: Annotated[str, typer.Argument(help="user name")],
    admin: Annotated[bool, typer.Option("--admin", help="also a member of the admin group (AdminGroupName)")] = False,
    update: Annotated[
        bool, typer.Option("--update", help="the user may exist: set its password (with --admin, add it to the group)")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    pool = pool_output("UserPoolId")
    group = state.target.outputs.get("AdminGroupName") or "admin"
    password = read_password(password_stdin, confirm=True)
    cognito = state.target.client("cognito-idp")
    created = False
    try:
        cognito.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")
        created = True
    except ClientError as e:
        if auth.error_code(e) != "UsernameExistsException":
            raise
        if not update:
            raise CliError(
                f"user {name} exists already: imgpipe users add {name} --update sets its password", 1
            ) from None
    try:
        cognito.admin_set_user_password(UserPoolId=pool, Username=name, Password=password, Permanent=True)
    except ClientError as e:
        if created:  # undone, so that the same command with a better password can be run again
            with contextlib.suppress(ClientError):
                cognito.admin_delete_user(UserPoolId=pool, Username=name)
        if auth.error_code(e) in ("InvalidPasswordException", "InvalidParameterException"):
            raise CliError(aws_message(e), exit_code=1) from None
        raise
    if admin:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName=group)
    if state.json:
        emit({"username": name, "created": created, "admin": admin})
    else:
        done = "added" if created else "updated"
        say(f"{done} {name}" + (f" (member of {group})" if admin else "") + f": imgpipe login {name}")


def main() -> None:
    app()
