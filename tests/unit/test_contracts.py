"""The shared contracts: one module the layer and imgpipe both import, and the only one imgpipe takes from the layer,
as its package ships it (what `pipx install .` installs)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

from image_pipeline import contracts

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared" / "image_pipeline"


def test_the_package_ships_imgpipe_and_of_the_layer_only_the_contracts(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.startswith("image_pipeline/")) == [
        "image_pipeline/__init__.py",
        "image_pipeline/contracts.py",
    ]
    # imgpipe imports, from the installed files alone (not the layer on the path): it needs nothing else of it
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import sys; sys.path[:] = [p for p in sys.path if 'layers' not in p and not p.endswith('/cli')];"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()];"
        f"sys.path.insert(0, {str(site)!r}); import imgpipe.cli, image_pipeline;"
        "print(image_pipeline.__file__); print(sorted(m for m in sys.modules if m.startswith('image_pipeline')))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True)
    where, modules = done.stdout.splitlines()
    assert where.startswith(str(site)) and modules == "['image_pipeline', 'image_pipeline.contracts']"


def test_imgpipe_takes_nothing_but_the_contracts_from_the_layer():
    for path in (ROOT / "cli" / "imgpipe").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("image_pipeline"):
                assert node.module == "image_pipeline" and [a.name for a in node.names] == ["contracts"], path


def test_every_error_code_the_api_raises_is_a_contract_with_its_status():
    raised: set[tuple[int, str]] = set()
    for path in [*LAYER.glob("*.py"), ROOT / "functions" / "api" / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "ApiError":
                status, code = node.args[:2]
                if isinstance(status, ast.Constant) and isinstance(code, ast.Constant):
                    raised.add((status.value, code.value))
    assert raised and all(contracts.ERROR_CODES.get(code) == status for status, code in raised), raised
    # and the sign-in refusals (auth.py: 401 with WWW-Authenticate)
    for code in ("UNAUTHORIZED", "INVALID_TOKEN", "TOKEN_EXPIRED"):
        assert contracts.ERROR_CODES[code] == 401 and f'"{code}"' in (LAYER / "auth.py").read_text()


def test_statuses_agree():
    assert set(contracts.OUTCOMES) < set(contracts.TERMINAL) < set(contracts.STATUSES)
    assert contracts.DELETED not in contracts.STATUSES
    assert set(contracts.RENDITION_FORMATS) == set(contracts.RENDITION_EXTENSIONS) == {"avif", "webp", "jpeg", "png"}
