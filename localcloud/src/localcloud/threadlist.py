"""LocalStack's list of the threads it started (``localstack.utils.threads.TMP_THREADS``), bounded.

LocalStack appends a thread object to that list for every Step Functions execution and its states (the execution,
the program, each Task's timeout watch) and for every Lambda invocation (a ``FuncThread`` that records its CloudWatch
metrics): ~10 per image of this project's workflow, ~2 KB each, and never takes one out, so the list grows with every
image processed (~200 MB after 10,000). At shutdown LocalStack stops, kills or shuts down each listed thread that can
be: a plain ``threading.Thread`` can be none of these, and stopping a ``FuncThread`` that has ended and has no
``on_stop`` callback does nothing. ``ThreadList`` drops such threads once they have ended, and nothing else.

No LocalStack imports: the unit tests (tests/localcloud/unit/test_threadlist.py) run without LocalStack.
"""

from __future__ import annotations

import threading
from typing import Any

MIN_PRUNE = 64  # a prune looks at the list once it holds this many threads, or twice what the last one kept


def ended(thread: Any, kinds: tuple[type, ...]) -> bool:
    """A thread of exactly one of ``kinds``, with no ``on_stop`` callback, that was started (it has an ident: LocalStack
    appends some before it starts them) and has ended."""
    return (
        type(thread) in kinds
        and getattr(thread, "on_stop", None) is None
        and thread.ident is not None
        and not thread.is_alive()
    )


class ThreadList:
    """Prunes ``threads`` (a list others append to) of the ended threads of ``kinds``, once it has grown enough since the
    last prune: O(1) per append on average, and the list holds at most ~2x the threads that may still matter."""

    def __init__(self, threads: list[Any], kinds: tuple[type, ...] = (threading.Thread,), minimum: int = MIN_PRUNE):
        self.threads = threads
        self.kinds = kinds
        self.minimum = minimum
        self.next_prune = minimum
        self.pruned = 0  # dropped so far
        self._lock = threading.Lock()  # one prune at a time (appends by others need none: see prune)

    def maybe_prune(self) -> int:
        """Prune if the list has grown to the next bound; returns how many threads were dropped."""
        if len(self.threads) < self.next_prune:
            return 0
        return self.prune()

    def prune(self) -> int:
        """Drop the ended threads of ``kinds``; returns how many. Only the items there when it starts are looked at and
        replaced (one slice assignment, atomic under the GIL): a thread appended meanwhile stays, after them."""
        with self._lock:
            seen = self.threads[:]
            kept = [t for t in seen if not ended(t, self.kinds)]
            self.threads[: len(seen)] = kept
            self.next_prune = max(self.minimum, 2 * len(self.threads))
            dropped = len(seen) - len(kept)
            self.pruned += dropped
            return dropped
