"""The one shape of the local cloud's start-up hooks (speedups, fidelity, admission, faults, meter).

A hook imports the LocalStack internals it changes and changes them with ``patch``:
- if they are not there, or not what it expects (another LocalStack version), the hook logs a warning and the local
  cloud runs without that change;
- each replacement carries a mark, and ``patch`` leaves a marked attribute alone, so a hook that runs twice changes
  nothing the second time (its wrapper would otherwise wrap itself);
- the hook returns the line to log for what it changed, or None if it changed nothing.

No LocalStack imports at module level: the unit tests (tests/localcloud/unit/test_patching.py) run without LocalStack.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

MARK = "localcloud"
SKIP_VARIABLE = "LOCALCLOUD_SKIP_HOOKS"


def skipped() -> set[str]:
    """The hooks named in LOCALCLOUD_SKIP_HOOKS (comma-separated function names, e.g. ``batch_lambda_log_delivery``):
    LocalStack runs without what they change, to measure one side by side or to tell whether one is at fault."""
    return {name.strip() for name in os.environ.get(SKIP_VARIABLE, "").split(",") if name.strip()}


class Unexpected(Exception):
    """LocalStack's internals are not what a hook expects."""


def ours(thing: Any) -> bool:
    """Whether ``thing`` is a replacement a hook made."""
    return bool(getattr(thing, MARK, False))


def patch(owner: Any, name: str, new: Any, *, wraps: bool = False, kind: Callable[[Any], Any] | None = None) -> bool:
    """Set ``owner.name`` to ``new`` (``new(original)`` with ``wraps``), marked as ours, and wrapped in ``kind`` if given
    (``staticmethod``, ``classmethod``). False, and nothing changed, if the attribute is ours already."""
    original = getattr(owner, name, None)
    if original is None:
        raise Unexpected(f"{getattr(owner, '__name__', owner)!s}.{name} is not there")
    if ours(original):
        return False
    replacement = new(original) if wraps else new
    setattr(replacement, MARK, True)
    setattr(owner, name, kind(replacement) if kind is not None else replacement)
    return True


def rebind_imported(name: str, original: Any, replacement: Any) -> None:
    """Give ``replacement`` to every loaded module that imported ``original`` by ``name`` before a hook replaced it
    where it is defined (modules imported later get the replacement from there). Each module's ``__dict__`` is read,
    not its attributes: ``getattr`` would run the body of a package whose body is deferred (localcloud.lazy)."""
    import sys

    for module in list(sys.modules.values()):
        if getattr(module, "__dict__", {}).get(name) is original:
            setattr(module, name, replacement)


def guarded(what: str) -> Callable[[Callable[[], str | None]], Callable[[], None]]:
    """Run the decorated installer: on ImportError or Unexpected, log that ``what`` is not installed; else log the line
    it returns, if any (with the logger of the installer's module)."""

    def decorate(install: Callable[[], str | None]) -> Callable[[], None]:
        log = logging.getLogger(install.__module__)

        @functools.wraps(install)
        def run() -> None:
            if install.__name__ in skipped():
                log.info("localcloud: %s not installed: %s names it", what, SKIP_VARIABLE)
                return
            try:
                done = install()
            except (ImportError, Unexpected) as e:
                log.warning("localcloud: %s not installed: %s", what, e)
                return
            if done:
                log.info("localcloud: %s", done)

        return run

    return decorate


def hook(what: str, priority: int = 0) -> Callable[[Callable[[], str | None]], Any]:
    """An ``on_infra_start`` hook (LocalStack finds it by the entry point of its name) that installs ``what``; hooks of
    a higher ``priority`` run first."""
    from localstack.runtime import hooks

    def decorate(install: Callable[[], str | None]) -> Any:
        return hooks.on_infra_start(priority=priority)(guarded(what)(install))

    return decorate
