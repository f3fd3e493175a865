"""The shape of the local cloud's start-up hooks (localcloud/patching.py): a replacement is made once, marked, and wraps
the original; a hook whose internals are missing logs a warning and changes nothing."""

from __future__ import annotations

import logging

import pytest
from localcloud.patching import Unexpected, guarded, ours, patch


def make_owner():
    class Owner:
        def method(self, x):
            return x + 1

        @staticmethod
        def static(x):
            return x * 2

        @classmethod
        def factory(cls, x):
            return (cls.__name__, x)

    return Owner


def test_a_wrapper_is_installed_once_even_when_its_hook_runs_twice():
    owner = make_owner()

    def plus_ten(original):
        return lambda self, x: original(self, x) + 10

    assert patch(owner, "method", plus_ten, wraps=True)
    assert not patch(owner, "method", plus_ten, wraps=True)
    assert owner().method(1) == 12  # wrapped once: 1 + 1 + 10
    assert ours(owner.method)


def test_static_and_class_methods_keep_their_kind():
    owner = make_owner()

    assert patch(owner, "static", lambda original: lambda x: original(x) + 1, wraps=True, kind=staticmethod)
    assert patch(owner, "factory", lambda cls, x: (cls.__name__, -x), kind=classmethod)
    assert owner.static(3) == 7 and owner().static(3) == 7
    assert owner.factory(5) == ("Owner", -5)
    assert not patch(owner, "static", lambda x: 0, kind=staticmethod)  # the mark is seen through the descriptors
    assert not patch(owner, "factory", lambda cls, x: 0, kind=classmethod)
    assert owner.static(3) == 7 and owner.factory(5) == ("Owner", -5)


def test_a_missing_attribute_is_unexpected_and_changes_nothing():
    owner = make_owner()
    with pytest.raises(Unexpected, match=r"Owner\.gone is not there"):
        patch(owner, "gone", lambda: None)
    assert not hasattr(owner, "gone")


def test_a_hook_logs_what_it_did_or_why_it_did_nothing(caplog):
    owner = make_owner()
    caplog.set_level(logging.INFO, logger=__name__)

    @guarded("the doubling")
    def install():
        if not patch(owner, "method", lambda original: lambda self, x: 2 * original(self, x), wraps=True):
            return None
        return "methods double"

    @guarded("the missing thing")
    def missing():
        import localcloud_no_such_module  # noqa: F401

        raise AssertionError("not reached")

    @guarded("the other version")
    def other_version():
        patch(owner, "renamed_in_this_version", lambda: None)
        raise AssertionError("not reached")

    install()
    install()
    missing()
    other_version()
    assert owner().method(1) == 4
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (__name__, "INFO", "localcloud: methods double"),
        (
            __name__,
            "WARNING",
            "localcloud: the missing thing not installed: No module named 'localcloud_no_such_module'",
        ),
        (
            __name__,
            "WARNING",
            "localcloud: the other version not installed: Owner.renamed_in_this_version is not there",
        ),
    ]


def test_a_hook_named_in_localcloud_skip_hooks_changes_nothing(caplog, monkeypatch):
    owner = make_owner()
    caplog.set_level(logging.INFO, logger=__name__)
    monkeypatch.setenv("LOCALCLOUD_SKIP_HOOKS", " some_other_hook, add_ten ")

    @guarded("the adding")
    def add_ten():
        patch(owner, "method", lambda original: lambda self, x: original(self, x) + 10, wraps=True)
        return "methods add ten"

    add_ten()
    assert owner().method(1) == 2 and not ours(owner.method)
    assert [r.getMessage() for r in caplog.records] == [
        "localcloud: the adding not installed: LOCALCLOUD_SKIP_HOOKS names it"
    ]
    monkeypatch.setenv("LOCALCLOUD_SKIP_HOOKS", "some_other_hook")
    add_ten()
    assert owner().method(1) == 12
