"""The real-world corpus fetched by scripts/fetch_corpus.py (see README.md here)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIR = ROOT / ".venv" / "corpus"
FILES = json.loads((Path(__file__).parent / "manifest.json").read_text())["files"]


def read(name: str) -> bytes:
    """A corpus file's bytes; a missing corpus is an error (scripts/setup.sh fetches it), never a skip."""
    if name not in FILES:
        raise KeyError(f"{name} is not in tests/corpus/manifest.json")
    path = DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run scripts/setup.sh (make setup) to fetch the corpus")
    return path.read_bytes()
