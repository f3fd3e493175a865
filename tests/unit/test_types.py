"""The app code type-checks (mypy): the layer's package and every handler."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean_on_the_app_code():
    result = subprocess.run(["bash", str(ROOT / "scripts" / "typecheck.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
