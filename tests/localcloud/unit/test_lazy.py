"""A package whose body is deferred (localcloud/lazy.py): its submodules import without it; it runs once, on first need."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path

import pytest
from localcloud.lazy import deferred_package, ran


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``heavy`` whose body counts its runs (in ``runs.txt``), sleeps, and imports its ``models``; its
    ``utils`` submodule needs nothing of it. Gone from sys.modules afterwards."""
    root = tmp_path / "heavy"
    root.mkdir()
    (root / "__init__.py").write_text(
        "import time\n"
        f"with open({str(tmp_path / 'runs.txt')!r}, 'a') as f:\n"
        "    f.write('ran\\n')\n"
        "time.sleep(0.2)\n"
        "from .models import backends\n"
        "STATUS = 'loaded'\n"
    )
    (root / "models.py").write_text("backends = {'us-east-1': 'backend'}\n")
    (root / "utils.py").write_text("import enum\nclass Status(enum.Enum):\n    DONE = 'done'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n == "heavy" or n.startswith("heavy.")]:
        del sys.modules[name]


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_submodule_imports_without_the_package_body(package):
    module = deferred_package("heavy")
    from heavy.utils import Status

    assert Status.DONE.value == "done"
    assert runs(package) == 0
    assert not ran(module)
    assert "heavy.models" not in sys.modules


def test_the_body_runs_once_on_the_first_attribute_it_lacks(package):
    asked: list[str] = []
    module = deferred_package("heavy", asked.append)
    from heavy import backends

    assert backends == {"us-east-1": "backend"}
    assert importlib.import_module("heavy").STATUS == "loaded"
    assert ran(module) and runs(package) == 1 and asked == ["backends"]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        module.missing  # noqa: B018
    assert runs(package) == 1


def test_threads_asking_at_once_wait_for_one_run(package):
    module = deferred_package("heavy")
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(module.backends)) for _ in range(8)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # the later ones ask while the first runs the body (it sleeps 0.2 s)
    for thread in threads:
        thread.join()
    assert seen == [{"us-east-1": "backend"}] * 8
    assert runs(package) == 1


def test_nothing_is_deferred_when_it_is_imported_already_or_not_a_package(package, monkeypatch):
    import heavy

    assert deferred_package("heavy") is None
    assert runs(package) == 1 and heavy.STATUS == "loaded"
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)  # a plain module, not imported (rich imports it)
    assert deferred_package("colorsys") is None
    with pytest.raises(ImportError):
        deferred_package("no_such_package_here")


def test_rebinding_a_name_in_the_modules_that_imported_it_leaves_a_deferred_body_unrun(package):
    """A hook that replaces a function gives the replacement to the modules that imported the original by name
    (localcloud.patching.rebind_imported); looking through every loaded module must not run a deferred body."""
    import types

    from localcloud.patching import rebind_imported

    heavy = deferred_package("heavy")
    assert heavy is not None

    def original():
        return "original"

    def replacement():
        return "replacement"

    def unrelated():
        return "unrelated"

    holder, other = types.ModuleType("localcloud_test_holder"), types.ModuleType("localcloud_test_other")
    holder.fn, other.fn = original, unrelated
    sys.modules[holder.__name__], sys.modules[other.__name__] = holder, other
    try:
        rebind_imported("fn", original, replacement)
        assert holder.fn is replacement and other.fn is unrelated
        assert runs(package) == 0 and not ran(heavy)
    finally:
        del sys.modules[holder.__name__], sys.modules[other.__name__]
