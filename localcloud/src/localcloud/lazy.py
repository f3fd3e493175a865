"""A package registered in ``sys.modules`` without running its ``__init__``: its submodules import as usual (its
``__path__`` is there), and its body runs on the first attribute it does not have (PEP 562 ``__getattr__``), once,
on whichever thread asks first. What a hook uses for a package whose ``__init__`` is costly and mostly not needed.

Standard library only, no LocalStack imports: the unit tests (tests/localcloud/unit/test_lazy.py) run without LocalStack.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType


def deferred_package(name: str, on_run: Callable[[str], None] | None = None) -> ModuleType | None:
    """Register package ``name`` with its body deferred; the module, or None if it is imported already (nothing to
    defer) or is not a package. Raises ImportError if it cannot be found. ``on_run(attribute)`` is called when the
    body is about to run, with the attribute that made it run."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"{name} is not there")
    if spec.submodule_search_locations is None:
        return None
    module = importlib.util.module_from_spec(spec)
    lock = threading.RLock()
    ran = False

    def __getattr__(attribute: str):  # noqa: N807 - PEP 562's name
        nonlocal ran
        with lock:  # another thread asking while the body runs waits for it
            if not ran:
                ran = True  # before the body runs: what it asks of itself is looked up, not loaded again
                if on_run is not None:
                    on_run(attribute)
                try:
                    spec.loader.exec_module(module)
                finally:
                    if module.__dict__.get("__getattr__") is __getattr__:  # unless the body has its own
                        del module.__dict__["__getattr__"]
        try:
            return module.__dict__[attribute]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    __getattr__.deferred = True  # type: ignore[attr-defined]
    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def ran(module: ModuleType) -> bool:
    """Whether a deferred package's body has run (or it was never deferred)."""
    return not getattr(module.__dict__.get("__getattr__"), "deferred", False)
