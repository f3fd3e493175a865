"""What `sam build` made (.aws-sam/build, the artifacts the stack was deployed from) is deployable to Lambda as the
template declares it: every compiled file is for the functions' architecture and Python, every wheel is for the
Lambda platform (manylinux, a glibc the runtime has), and each function with its layer stays under Lambda's 250 MB
unzipped limit. The layer's Makefile asks pip for that platform by name, so the build host does not matter (tested
by building with another Python); these checks would fail a build that let a wrong package through."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import ROOT

BUILD = ROOT / ".aws-sam" / "build"
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: function code and all its layers, unzipped
RUNTIME_GLIBC = (2, 34)  # Amazon Linux 2023, the python3.12/3.13 runtimes' OS
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # e_machine of the ELF header


def declared() -> tuple[str, str]:
    """(architecture, python version) of the template's functions, e.g. ("x86_64", "313")."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    function = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)["Globals"]["Function"]
    [architecture] = function["Architectures"]
    return architecture, function["Runtime"].removeprefix("python").replace(".", "")


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def test_each_function_and_its_layer_fit_lambdas_unzipped_limit(stack):
    functions = [d for d in BUILD.iterdir() if d.is_dir() and d.name.endswith("Function")]
    layer = size(BUILD / "SharedLayer")
    assert len(functions) == 8 and layer > 10_000_000  # the layer holds the image libraries
    for function in functions:
        assert size(function) + layer < LAMBDA_UNZIPPED_LIMIT, function.name


def test_every_wheel_and_compiled_file_is_for_the_lambda_platform(stack):
    architecture, python = declared()
    assert_for_lambda(BUILD / "SharedLayer" / "python", architecture, python)


def test_the_layers_own_package_ships_its_bytecode_for_the_runtime(stack):
    """Lambda cannot write /opt: bytecode the layer lacks is compiled again at every cold start."""
    _, python = declared()
    package = BUILD / "SharedLayer" / "python" / "image_pipeline"
    for source in package.glob("*.py"):
        compiled = package / "__pycache__" / f"{source.stem}.cpython-{python}.pyc"
        assert compiled.is_file(), compiled
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == 0b01, (compiled, flags)  # hash-based, unchecked: valid whatever mtime the zip keeps


def test_the_layer_is_built_for_lambda_whatever_python_runs_the_build(tmp_path):
    """layers/shared/Makefile (what sam build runs for the layer) asks pip for Lambda's platform and Python by name:
    run by another Python than the runtime's (3.11 or 3.12 where the host has one), it makes the same cp313
    manylinux layer, not one for the Python that ran it."""
    architecture, python = declared()
    other = next((p for p in (shutil.which("python3.11"), shutil.which("python3.12"), *PYENV_PYTHONS) if p), None)
    runner = other or sys.executable
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers" / "shared"), "build-SharedLayer"],
        env={**os.environ, "ARTIFACTS_DIR": str(tmp_path), "PYTHON": runner},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    version = subprocess.run([runner, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert other is None or "(3, 13)" not in version.stdout  # the build really ran on another Python
    assert_for_lambda(tmp_path / "python", architecture, python)
    assert (tmp_path / "python" / "image_pipeline" / "engine.py").is_file()


# other CPython versions pyenv may hold (the CI machine has 3.11 and 3.12)
PYENV_PYTHONS = sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.1[12].*/bin/python3"))


def assert_for_lambda(layer: Path, architecture: str, python: str) -> None:
    """Every wheel installed under ``layer`` is for CPython ``python`` (e.g. "313") on manylinux ``architecture``
    with a glibc the runtime has, and every compiled file is a Linux ELF for that machine and Python."""
    machine = "x86_64" if architecture == "x86_64" else "aarch64"
    tags = [
        line.split(":", 1)[1].strip()
        for wheel in layer.glob("*.dist-info/WHEEL")
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag:")
    ]
    assert tags
    for tag in tags:
        interpreter, abi, platform = tag.split("-")
        if platform == "any":
            continue
        assert interpreter == f"cp{python}" or (abi == "abi3" and int(interpreter[3:]) <= int(python[1:])), tag
        glibc = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{machine}", platform)
        legacy = {
            f"manylinux1_{machine}": (2, 5),
            f"manylinux2010_{machine}": (2, 12),
            f"manylinux2014_{machine}": (2, 17),
        }
        version = (int(glibc[1]), int(glibc[2])) if glibc else legacy.get(platform)
        assert version is not None and version <= RUNTIME_GLIBC, tag
    compiled = [f for f in layer.rglob("*") if f.is_file() and re.search(r"\.so(\.|$)", f.name)]
    assert len(compiled) > 10  # Pillow, libvips, libheif, …
    for library in compiled:
        header = library.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", library  # Linux, not a macOS or Windows build
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[architecture], library
        match = re.search(r"\.cpython-(\d+)-", library.name)
        assert match is None or match[1] == python, library  # built for the runtime's Python
