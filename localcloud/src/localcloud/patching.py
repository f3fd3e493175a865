"""The one shape of localcloud's start-up hooks, and the one way a patch changes upstream code.

A hook is a function LocalStack runs at start-up (an ``on_infra_start`` entry point in localcloud/pyproject.toml),
decorated with ``hook``. It returns the line to log for what it changed, or None if it changed nothing. A hook of
``localcloud.patches`` changes LocalStack's or moto's own code with one ``patch_all`` of ``Patch`` targets:

- every target is looked up, and checked, before any is changed: a hook is installed whole or not at all;
- a target's package must be the version localcloud targets (``UPSTREAM``: the pins of constraints/localstack.txt);
- a replacement that copies upstream code names what it copies (``copies``: where, and the hash of its source in the
  pinned version, ``python -m localcloud.patching hash MODULE:QUALNAME``), so a copy of code that changed fails;
- each replacement carries a mark, and a marked target is left alone, so a hook that runs twice changes nothing the
  second time (its wrapper would otherwise wrap itself).

A hook that raises (a missing target, another version, anything else) changes nothing and is recorded as failed,
with its error, and logged at ERROR; LocalStack starts without it, and scripts/up.sh, which reads the records at
``GET /_localcloud/hooks`` (localcloud.plugins.hook_report), stops that local cloud and fails naming the hook.
``LOCALCLOUD_SKIP_HOOKS`` names hooks left out on purpose; ``LOCALCLOUD_BREAK_TARGET=hook:attribute`` (for tests)
makes a target look missing.

No LocalStack imports: the unit tests (tests/localcloud/unit/test_patching.py) run without LocalStack.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import logging
import os
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MARK = "localcloud"
SKIP_VARIABLE = "LOCALCLOUD_SKIP_HOOKS"
BREAK_VARIABLE = "LOCALCLOUD_BREAK_TARGET"
# The upstream versions every patch targets (requirements/ and constraints/localstack.txt pin them; a unit test ties
# the two), and the distribution of each top-level package a patch changes. botocore, which LocalStack's environment
# does not pin, has no version here: what a patch copies from it is checked by its source alone.
UPSTREAM = {
    "localstack-core": "2026.3.0",
    "moto-ext": "5.1.25",
    "antlr4-python3-runtime": "4.13.2",
    "jsonpath-ng": "1.7.0",
}
DISTRIBUTIONS = {
    "localstack": "localstack-core",
    "moto": "moto-ext",
    "antlr4": "antlr4-python3-runtime",
    "jsonpath_ng": "jsonpath-ng",
}


def skipped() -> set[str]:
    """The hooks named in LOCALCLOUD_SKIP_HOOKS (comma-separated function names, e.g. ``batch_lambda_log_delivery``):
    LocalStack runs without what they change, to measure one side by side or to tell whether one is at fault."""
    return {name.strip() for name in os.environ.get(SKIP_VARIABLE, "").split(",") if name.strip()}


def broken() -> set[tuple[str, str]]:
    """(hook, attribute) pairs named in LOCALCLOUD_BREAK_TARGET (``hook:attribute``, comma-separated): targets that
    look missing, so a test can see a hook fail as it would on another LocalStack version."""
    pairs = (item.strip().partition(":") for item in os.environ.get(BREAK_VARIABLE, "").split(","))
    return {(hook_name, attribute) for hook_name, _, attribute in pairs if hook_name and attribute}


class Unexpected(Exception):
    """LocalStack's or moto's internals are not what a hook expects."""


def ours(thing: Any) -> bool:
    """Whether ``thing`` is a replacement a hook made."""
    return bool(getattr(thing, MARK, False))


@functools.cache
def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def upstream_of(module_name: str) -> str | None:
    """The distribution that provides ``module_name``, if it is one localcloud patches."""
    return DISTRIBUTIONS.get(module_name.partition(".")[0])


def check_version(module_name: str, what: str) -> str:
    """``" (distribution version)"`` of the package ``what`` is in, or ``""`` if localcloud pins none; raises
    Unexpected if the installed version is not the one targeted."""
    distribution = upstream_of(module_name)
    if distribution is None:
        return ""
    targeted, installed = UPSTREAM[distribution], installed_version(distribution)
    if installed != targeted:
        raise Unexpected(f"{what}: {distribution} is {installed}, localcloud targets {targeted}")
    return f" ({distribution} {targeted})"


def resolve(path: str) -> Any:
    """The object at ``module:qualname`` (``module`` alone: the module); Unexpected if it is not there."""
    module_name, _, qualname = path.partition(":")
    try:
        thing: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise Unexpected(f"{path}: {e}") from e
    for part in qualname.split(".") if qualname else ():
        thing = getattr(thing, part, None)
        if thing is None:
            raise Unexpected(f"{path} is not there")
    return thing


def source_hash(thing: Any) -> str:
    """The first 16 hex digits of the SHA-256 of a function's source (decorators followed to the function itself)."""
    return hashlib.sha256(inspect.getsource(inspect.unwrap(thing)).encode()).hexdigest()[:16]


def _module_name(owner: Any) -> str:
    return owner.__name__ if isinstance(owner, types.ModuleType) else owner.__module__


def _describe(owner: Any, name: str) -> str:
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}:{name}"
    return f"{owner.__module__}:{getattr(owner, '__qualname__', owner)}.{name}"


@dataclass(eq=False)
class Patch:
    """One attribute a hook replaces: ``owner.name`` becomes ``new`` (``new(original)`` with ``wraps``), wrapped in
    ``kind`` if given (``staticmethod``, ``classmethod``). ``owner`` is a module or class, or its path
    (``"package.module"``, ``"package.module:Class"``). ``copies`` names upstream code the replacement copies, each
    ``"module:qualname"`` with the ``source_hash`` of its source in the version targeted."""

    owner: Any
    name: str
    new: Any
    wraps: bool = False
    kind: Callable[[Any], Any] | None = None
    copies: Mapping[str, str] = field(default_factory=dict)

    def target(self) -> str:
        if isinstance(self.owner, str):
            return f"{self.owner}.{self.name}" if ":" in self.owner else f"{self.owner}:{self.name}"
        return _describe(self.owner, self.name)

    def look_up(self, hook_name: str | None) -> tuple[Any, Any, str]:
        """(owner, original, description): every check made, nothing changed. Raises Unexpected."""
        owner = resolve(self.owner) if isinstance(self.owner, str) else self.owner
        target = self.target()
        original = getattr(owner, self.name, None)
        if original is None or (hook_name, self.name) in broken():
            raise Unexpected(f"{target} is not there")
        description = target + check_version(_module_name(owner), target)
        if ours(original):
            return owner, original, description  # installed already: what it copied was checked then
        for path, expected in self.copies.items():
            check_version(path.partition(":")[0], path)
            found = source_hash(resolve(path))
            if found != expected:
                raise Unexpected(
                    f"{target} copies {path}, whose source is not the one copied (sha256 {found}, not {expected})"
                )
            description += ", a copy of it changed" if path == target else f", copies {path}"
        return owner, original, description


def patch_all(*patches: Patch) -> bool:
    """Look up and check every target, then replace them all: True if it changed them, False (nothing changed) if
    they are all ours already. Raises Unexpected, naming every target that is missing or not what it expects, and
    then nothing has changed."""
    hook_name = _running[-1] if _running else None
    found, problems = [], []
    for p in patches:
        try:
            found.append((p, *p.look_up(hook_name)))
        except Unexpected as e:
            problems.append(str(e))
    if problems:
        raise Unexpected("; ".join(problems))
    if hook_name in RECORDS:
        RECORDS[hook_name].targets = [description for _, _, _, description in found]
    todo = [(p, owner, original) for p, owner, original, _ in found if not ours(original)]
    if not todo:
        return False
    replacements = [(p, owner, p.new(original) if p.wraps else p.new) for p, owner, original in todo]  # may raise
    for p, owner, replacement in replacements:
        setattr(replacement, MARK, True)
        setattr(owner, p.name, p.kind(replacement) if p.kind is not None else replacement)
    return True


def rebind_imported(name: str, original: Any, replacement: Any) -> None:
    """Give ``replacement`` to every loaded module that imported ``original`` by ``name`` before a hook replaced it
    where it is defined (modules imported later get the replacement from there). Each module's ``__dict__`` is read,
    not its attributes: ``getattr`` would run the body of a package whose body is deferred (localcloud.lazy)."""
    for module in list(sys.modules.values()):
        if getattr(module, "__dict__", {}).get(name) is original:
            setattr(module, name, replacement)


# ---------------------------------------------------------------- hooks and what became of them


@dataclass
class Record:
    """What became of one hook: ``installed``, ``unchanged`` (it ran and had nothing to change), ``skipped``
    (LOCALCLOUD_SKIP_HOOKS) or ``failed``; ``detail`` is the line it logged or its error."""

    name: str
    what: str
    status: str
    detail: str = ""
    targets: list[str] = field(default_factory=list)


RECORDS: dict[str, Record] = {}
_running: list[str] = []  # the hook running now (hooks run one at a time, on LocalStack's main thread)
OK = ("installed", "unchanged", "skipped")


def report(expected: Iterable[str]) -> dict[str, Any]:
    """Every hook's record, and ``failed``: {name: error} of each hook that failed or, though ``expected`` (the
    entry points LocalStack was given), never ran (its module did not import: LocalStack logged why)."""
    hooks = {name: asdict(record) for name, record in RECORDS.items()}
    for name in expected:
        if name not in hooks:
            detail = "never ran: LocalStack did not load it (its module did not import; see the log)"
            hooks[name] = asdict(Record(name, "", "failed", detail))
    failed = {name: h["detail"] for name, h in sorted(hooks.items()) if h["status"] not in OK}
    return {"hooks": dict(sorted(hooks.items())), "failed": failed}


def guarded(what: str) -> Callable[[Callable[[], str | None]], Callable[[], None]]:
    """Run the decorated installer as a hook named by its function and record what became of it: skipped if
    LOCALCLOUD_SKIP_HOOKS names it; failed, logged at ERROR, if it raises (LocalStack starts without it); else the
    line it returns, if any, is logged at INFO (with the logger of the installer's module)."""

    def decorate(install: Callable[[], str | None]) -> Callable[[], None]:
        log = logging.getLogger(install.__module__)
        name = install.__name__

        @functools.wraps(install)
        def run() -> None:
            if name in skipped():
                RECORDS[name] = Record(name, what, "skipped", f"{SKIP_VARIABLE} names it")
                log.info("localcloud: %s not installed: %s names it", what, SKIP_VARIABLE)
                return
            record = RECORDS[name] = Record(name, what, "running")
            _running.append(name)
            try:
                done = install()
            except Exception as e:  # noqa: BLE001 - recorded; scripts/up.sh fails on it
                expected = isinstance(e, (ImportError, Unexpected))
                record.status, record.detail = "failed", str(e) if expected else f"{type(e).__name__}: {e}"
                log.error(
                    "localcloud: %s not installed (hook %s): %s", what, name, record.detail, exc_info=not expected
                )
                return
            finally:
                _running.pop()
            record.status, record.detail = ("installed", done) if done else ("unchanged", "nothing to change")
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


if __name__ == "__main__":  # python -m localcloud.patching hash MODULE:QUALNAME...: what a Patch's copies records
    if sys.argv[1:2] != ["hash"] or len(sys.argv) < 3:
        sys.exit("usage: python -m localcloud.patching hash MODULE:QUALNAME...")
    for path in sys.argv[2:]:
        print(f'"{path}": "{source_hash(resolve(path))}",')
