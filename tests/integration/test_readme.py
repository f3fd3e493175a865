"""The shell blocks marked `<!-- tested -->` in the README and the docs run as pasted, in one shell, from a directory
laid out like the repository's root (its .localcloud, .venv, scripts and events): they cannot drift from the code.

They run in a fixed order: README.md's blocks, then those of each page of DOCUMENTS after it, each file's top to
bottom. Later blocks use what earlier ones set (`$API`, `$TOKEN`, `$imageId`, `photo.jpg`, `output()`): a marked
block keeps its place in this order wherever it moves, and a page with marked blocks must be listed here."""

from __future__ import annotations

import os
import re
import subprocess

from .conftest import ROOT

MARKER = re.compile(r"^<!-- tested -->$", re.M)  # on a line of its own, right above the block
MARKED = re.compile(r"^<!-- tested -->\n```bash\n(.*?)\n```", re.S | re.M)
# The order the blocks run in: the README's quick start (imgpipe signs in; curl uploads $imageId), then the operator's
# page (completion events, the workflow driven by hand on $imageId, fault injection).
DOCUMENTS = ("README.md", "docs/operations.md")


def readme_blocks() -> list[str]:
    """Every marked block, in the order they run."""
    return [block for name in DOCUMENTS for block in MARKED.findall((ROOT / name).read_text())]


def test_the_readme_has_its_usage_blocks_marked():
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    marked = {p.relative_to(ROOT).as_posix() for p in pages if MARKER.search(p.read_text())}
    assert marked == set(DOCUMENTS), "a page with marked blocks that DOCUMENTS does not run, or one without any"
    for name in DOCUMENTS:  # every marker is followed by a bash block, which runs
        text = (ROOT / name).read_text()
        assert len(MARKER.findall(text)) == len(MARKED.findall(text)), name
    blocks = readme_blocks()
    assert len(blocks) >= 5
    joined = "\n".join(blocks)
    for command in (
        "imgpipe upload",
        'curl -s -X POST "$API/upload"',
        "get-execution-history",
        "start-execution",
        "-X DELETE",
        "_localcloud/faults",
    ):
        assert command in joined, command


def test_the_readme_blocks_run_as_pasted(stack, tmp_path):
    for name in (".localcloud", ".venv", "scripts", "events"):
        (tmp_path / name).symlink_to(ROOT / name)
    # as a person pastes them: one interactive-like shell; stop at the first command that fails
    script = "set -eo pipefail\n" + "\n".join(
        f"echo '>>> block {i}'\n{block}" for i, block in enumerate(readme_blocks())
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGPIPE_", "PYTEST_"))}
    env["COLUMNS"] = "160"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # imgpipe's sign-in: this test's own, not the user's
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    (ROOT / ".localcloud" / "readme-blocks.out").write_text(output)  # for a look after a failure
    assert done.returncode == 0, output[-4000:]
    # the commands' own errors go to stderr (the functions' log lines they print may quote an exception)
    assert "Traceback" not in done.stderr and "None\tNone" not in output
    assert (tmp_path / "photo-800.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # the curl block's download
    assert (tmp_path / "beach-400.webp").read_bytes()[8:12] == b"WEBP"  # imgpipe get
    assert '"status": "PROCESSED"' in done.stdout  # the curl block's record
    assert "1 PROCESSED, 1 REJECTED" in done.stdout  # imgpipe upload --wait's summary
    assert "\n204\n204\n" in done.stdout  # DELETE, and DELETE again
    assert re.search(r"\n2\t\+\d+ms\tTaskStateEntered\tValidate image\n", done.stdout)  # the history, every column
    assert "\tExecutionSucceeded\t{" in done.stdout
    assert "Skip duplicate" not in done.stderr
    assert re.search(r"\n[0-9a-f-]{36} PROCESSED, version [0-9a-f]{16}\n", done.stdout)  # the four steps by hand
