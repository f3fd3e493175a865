"""Values made once per key for any thread, and a bounded keep of the latest values: what several patches share.

Standard library only: no LocalStack imports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable


class MadeOnce:
    """Values made once per key (for ``ttl`` seconds, if given), for any thread. A miss makes the value while the others
    that miss wait for it: the first Tasks of a burst all miss at once, and each made its own session and clients
    (~50 ms each, and LocalStack keeps a request parser per client's service model for good): ~1 s of LocalStack's CPU
    at the start of a burst on a fresh local cloud (py-spy, 2026-12-03). With ``size``, at most that many are kept (the
    oldest goes). A ``make`` that raises keeps nothing."""

    def __init__(self, ttl: float | None = None, size: int | None = None) -> None:
        self.ttl = ttl
        self.size = size
        self._values: dict[Hashable, tuple[object, float]] = {}
        self._lock = threading.Lock()
        self._making = threading.Lock()  # one value made at a time

    def get(self, key: Hashable, make):
        value = self._kept(key)
        if value is not None:
            return value
        with self._making:
            value = self._kept(key)
            if value is None:
                value = make()
                expires = time.monotonic() + self.ttl if self.ttl is not None else float("inf")
                with self._lock:
                    if self.size is not None and len(self._values) >= self.size:
                        self._values.pop(next(iter(self._values)))
                    self._values[key] = (value, expires)
        return value

    def __len__(self) -> int:
        return len(self._values)

    def _kept(self, key: Hashable):
        with self._lock:
            kept = self._values.get(key)
        return kept[0] if kept is not None and kept[1] > time.monotonic() else None


class Kept:
    """The values of the keys put most recently (at most ``size``; the oldest put goes first), for any thread."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.values: dict = {}
        self.lock = threading.RLock()  # reentrant: ParseTrees holds it around a put

    def get(self, key):
        with self.lock:
            return self.values.get(key)

    def put(self, key, value) -> tuple[bool, object]:
        """Keep ``value`` unless ``key`` is kept already; (whether it was kept, the value it pushed out or None)."""
        with self.lock:
            if key in self.values:
                return False, None
            evicted = self.values.pop(next(iter(self.values))) if len(self.values) >= self.size else None
            self.values[key] = value
            return True, evicted
