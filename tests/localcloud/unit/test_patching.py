"""How localcloud's hooks change upstream code (localcloud/patching.py): every target is looked up and checked before
any changes, so a hook installs whole or not at all; a replacement is made once, marked, and wraps the original; a
copy of upstream code is checked against the source it copied; a hook that fails is recorded and logged by name."""

from __future__ import annotations

import ast
import logging
import re
import tomllib
from pathlib import Path

import pytest
from localcloud.patching import Patch, Unexpected, guarded, ours, patch_all, report, source_hash

from localcloud import patching

ROOT = Path(__file__).resolve().parents[3]


def make_owner():
    class Owner:
        def method(self, x):
            return x + 1

        def other(self, x):
            return x - 1

        @staticmethod
        def static(x):
            return x * 2

        @classmethod
        def factory(cls, x):
            return (cls.__name__, x)

    return Owner


def plus_ten(original):
    return lambda self, x: original(self, x) + 10


@pytest.fixture(autouse=True)
def no_records(monkeypatch):
    monkeypatch.setattr(patching, "RECORDS", {})
    monkeypatch.delenv(patching.SKIP_VARIABLE, raising=False)
    monkeypatch.delenv(patching.BREAK_VARIABLE, raising=False)


def test_a_wrapper_is_installed_once_even_when_its_hook_runs_twice():
    owner = make_owner()

    assert patch_all(Patch(owner, "method", plus_ten, wraps=True))
    assert not patch_all(Patch(owner, "method", plus_ten, wraps=True))
    assert owner().method(1) == 12  # wrapped once: 1 + 1 + 10
    assert ours(owner.method)


def test_static_and_class_methods_keep_their_kind():
    owner = make_owner()

    assert patch_all(
        Patch(owner, "static", lambda original: lambda x: original(x) + 1, wraps=True, kind=staticmethod),
        Patch(owner, "factory", lambda cls, x: (cls.__name__, -x), kind=classmethod),
    )
    assert owner.static(3) == 7 and owner().static(3) == 7
    assert owner.factory(5) == ("Owner", -5)
    assert not patch_all(  # the mark is seen through the descriptors
        Patch(owner, "static", lambda x: 0, kind=staticmethod),
        Patch(owner, "factory", lambda cls, x: 0, kind=classmethod),
    )
    assert owner.static(3) == 7 and owner.factory(5) == ("Owner", -5)


def test_a_missing_target_changes_none_of_the_others():
    owner = make_owner()

    with pytest.raises(Unexpected, match=r"Owner\.gone is not there") as raised:
        patch_all(
            Patch(owner, "method", plus_ten, wraps=True),
            Patch(owner, "gone", lambda: None),
            Patch(owner, "also_gone", lambda: None),
        )

    assert "Owner.also_gone is not there" in str(raised.value)  # every missing target is named at once
    assert owner().method(1) == 2 and not ours(owner.method)
    assert not hasattr(owner, "gone")


def test_a_replacement_that_cannot_be_made_changes_none_of_the_targets():
    owner = make_owner()

    def refusing(original):
        raise Unexpected("not the function this wrapper expects")

    with pytest.raises(Unexpected, match="not the function"):
        patch_all(Patch(owner, "method", plus_ten, wraps=True), Patch(owner, "other", refusing, wraps=True))

    assert owner().method(1) == 2 and owner().other(1) == 0
    assert not ours(owner.method) and not ours(owner.other)


def test_a_target_named_by_path_is_looked_up_there(monkeypatch):
    import json

    monkeypatch.setattr(json, "dumps", json.dumps)  # restored afterwards
    assert patch_all(Patch("json", "dumps", lambda original: lambda obj, **kw: "patched", wraps=True))
    assert json.dumps({}) == "patched"
    with pytest.raises(Unexpected, match=r"json:JSONDecoder\.gone is not there"):
        patch_all(Patch("json:JSONDecoder", "gone", None))
    with pytest.raises(Unexpected, match="No module named 'localcloud_no_such_module'"):
        patch_all(Patch("localcloud_no_such_module:Owner", "method", None))


def test_the_installed_version_must_be_the_one_targeted(monkeypatch):
    owner = make_owner()
    monkeypatch.setitem(patching.DISTRIBUTIONS, __name__.partition(".")[0], "pytest")  # this module's package
    monkeypatch.setitem(patching.UPSTREAM, "pytest", "0.0.1")

    with pytest.raises(Unexpected, match=r"Owner\.method: pytest is [0-9.]+, localcloud targets 0\.0\.1"):
        patch_all(Patch(owner, "method", plus_ten, wraps=True))
    assert not ours(owner.method)

    monkeypatch.setitem(patching.UPSTREAM, "pytest", pytest.__version__)
    assert patch_all(Patch(owner, "method", plus_ten, wraps=True))


def upstream_function(x):
    return x + 1


def test_a_copy_is_checked_against_the_source_it_copied():
    copied = f"{__name__}:upstream_function"
    owner = make_owner()

    with pytest.raises(Unexpected, match=rf"copies {copied}, whose source is not the one copied"):
        patch_all(Patch(owner, "method", lambda self, x: x + 1, copies={copied: "0" * 16}))
    assert not ours(owner.method)

    assert patch_all(Patch(owner, "method", lambda self, x: x + 1, copies={copied: source_hash(upstream_function)}))
    assert ours(owner.method)
    with pytest.raises(Unexpected, match="gone is not there"):
        patch_all(Patch(make_owner(), "method", None, copies={f"{__name__}:gone": "0" * 16}))


def test_a_hook_logs_and_records_what_it_did_or_why_it_did_nothing(caplog):
    owner = make_owner()
    caplog.set_level(logging.INFO, logger=__name__)

    @guarded("the doubling")
    def double():
        if not patch_all(Patch(owner, "method", lambda original: lambda self, x: 2 * original(self, x), wraps=True)):
            return None
        return "methods double"

    @guarded("the missing thing")
    def missing():
        import localcloud_no_such_module  # noqa: F401

        raise AssertionError("not reached")

    @guarded("the other version")
    def other_version():
        patch_all(Patch(owner, "other", plus_ten, wraps=True), Patch(owner, "renamed_in_this_version", None))
        raise AssertionError("not reached")

    @guarded("the surprise")
    def surprise():
        raise KeyError("no such store")

    double()
    double()
    missing()
    other_version()
    surprise()

    assert owner().method(1) == 4 and owner().other(1) == 0
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "localcloud: methods double"),
        (
            "ERROR",
            "localcloud: the missing thing not installed (hook missing): No module named 'localcloud_no_such_module'",
        ),
        (
            "ERROR",
            "localcloud: the other version not installed (hook other_version): "
            + f"{__name__}:make_owner.<locals>.Owner.renamed_in_this_version is not there",
        ),
        ("ERROR", "localcloud: the surprise not installed (hook surprise): KeyError: 'no such store'"),
    ]
    assert caplog.records[-1].exc_info is not None  # an error nobody expected comes with its traceback
    statuses = {name: (r.status, r.detail) for name, r in patching.RECORDS.items()}
    assert statuses["double"] == ("unchanged", "nothing to change")  # its second run; the first installed it
    assert statuses["missing"][0] == statuses["other_version"][0] == statuses["surprise"][0] == "failed"
    assert patching.RECORDS["double"].targets == [f"{__name__}:make_owner.<locals>.Owner.method"]


def test_a_hook_named_in_localcloud_skip_hooks_changes_nothing(caplog, monkeypatch):
    owner = make_owner()
    caplog.set_level(logging.INFO, logger=__name__)
    monkeypatch.setenv("LOCALCLOUD_SKIP_HOOKS", " some_other_hook, add_ten ")

    @guarded("the adding")
    def add_ten():
        patch_all(Patch(owner, "method", plus_ten, wraps=True))
        return "methods add ten"

    add_ten()
    assert owner().method(1) == 2 and not ours(owner.method)
    assert [r.getMessage() for r in caplog.records] == [
        "localcloud: the adding not installed: LOCALCLOUD_SKIP_HOOKS names it"
    ]
    assert patching.RECORDS["add_ten"].status == "skipped"
    monkeypatch.setenv("LOCALCLOUD_SKIP_HOOKS", "some_other_hook")
    add_ten()
    assert owner().method(1) == 12 and patching.RECORDS["add_ten"].status == "installed"


def test_localcloud_break_target_makes_one_hooks_target_missing(monkeypatch):
    """What the lifecycle test starts a local cloud with, to see scripts/up.sh fail on a hook that did not install."""
    owner = make_owner()
    monkeypatch.setenv("LOCALCLOUD_BREAK_TARGET", "broken_hook:other")

    @guarded("the broken one")
    def broken_hook():
        patch_all(Patch(owner, "method", plus_ten, wraps=True), Patch(owner, "other", plus_ten, wraps=True))
        return "both changed"

    @guarded("another")
    def another_hook():
        patch_all(Patch(owner, "other", plus_ten, wraps=True))
        return "other changed"

    broken_hook()
    another_hook()  # the same attribute, in a hook the variable does not name

    assert owner().method(1) == 2 and owner().other(1) == 10  # nothing of the broken hook, all of the other
    assert patching.RECORDS["broken_hook"].status == "failed"
    assert patching.RECORDS["broken_hook"].detail.endswith("Owner.other is not there")


def test_the_report_names_each_hook_that_did_not_install(monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_SKIP_HOOKS", "left_out")

    @guarded("a change")
    def fine():
        return "changed"

    @guarded("nothing to change")
    def idle():
        return None

    @guarded("left out")
    def left_out():
        raise AssertionError("not run")

    @guarded("a change on another version")
    def bad():
        raise Unexpected("X.y is not there")

    for install in (fine, idle, left_out, bad):
        install()
    got = report(expected=["fine", "idle", "left_out", "bad", "never_loaded"])

    assert got["failed"] == {
        "bad": "X.y is not there",
        "never_loaded": "never ran: LocalStack did not load it (its module did not import; see the log)",
    }
    assert {name: h["status"] for name, h in got["hooks"].items()} == {
        "bad": "failed",
        "fine": "installed",
        "idle": "unchanged",
        "left_out": "skipped",
        "never_loaded": "failed",
    }


def test_the_targeted_versions_are_the_pinned_ones():
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (ROOT / "constraints" / "localstack.txt").read_text(), re.M)
    )
    pins |= dict(
        re.findall(r"^([a-z-]+)\[?[a-z,]*\]?==(\S+)", (ROOT / "requirements" / "localstack.txt").read_text(), re.M)
    )
    assert {name: pins.get(name) for name in patching.UPSTREAM} == patching.UPSTREAM


def entry_points() -> dict[str, str]:
    project = tomllib.loads((ROOT / "localcloud" / "pyproject.toml").read_text())["project"]
    return project["entry-points"]["localstack.hooks.on_infra_start"]


def test_every_hook_entry_point_names_a_hook_function_of_its_own():
    """Each start-up hook's entry point names a function decorated with ``hook`` in localcloud.plugins or
    localcloud.patches, and no two name the same (its record and LOCALCLOUD_SKIP_HOOKS go by the function's name)."""
    functions = [value.partition(":")[2] for value in entry_points().values()]
    assert len(set(functions)) == len(functions)
    for name, value in entry_points().items():
        module, _, function = value.partition(":")
        assert name.startswith("localcloud_")
        assert module.split(".")[1] in ("plugins", "patches"), value
        tree = ast.parse((ROOT / "localcloud" / "src" / Path(*module.split("."))).with_suffix(".py").read_text())
        found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
        assert found and any("hook" in ast.unparse(d) for d in found[0].decorator_list), value


def test_patch_modules_change_upstream_code_only_through_patch_all():
    """No module of localcloud.patches sets an attribute by hand (but one on an execution's own frame, data of a run):
    each change to upstream code goes through patch_all, which looks every target up first."""
    for path in (ROOT / "localcloud" / "src" / "localcloud" / "patches").glob("*.py"):
        source = path.read_text()
        assert source.count("setattr(") == source.count("setattr(env_frame, CHILD_INPUT"), path
