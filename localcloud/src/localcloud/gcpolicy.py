"""Python's cycle collector for a long-running local cloud: survivors of a full collection are frozen.

LocalStack's one process keeps what a cloud keeps: every execution and its history, every log event, every object's
metadata, next to ~600,000 objects of its own (modules, botocore service models) once a stack is deployed. Python's
collector (thresholds 2000/10/10) runs a full collection whenever a quarter more objects have survived into the
oldest generation since the last one, and a full collection visits every tracked object: in a 300-upload burst
(py-spy, 2026-12-03) the heap grew from 580,000 to 970,000 objects and the full collections took 0.3-1.4 s of CPU
each, holding the GIL (one stack in the profile held it for 2.2 s); the collector took 5-7 s of the burst's ~60 s
of LocalStack CPU, more for every image the local cloud had already processed.

With this policy each full collection's survivors are frozen (``gc.freeze``): later collections of the oldest
generation visit only what survived since, so the collector's work follows what the process allocates, not what it
holds. Objects that become cyclic garbage after they were frozen are not collected while frozen, so when the frozen
objects are four times what the last collection of the whole heap kept (at least four million: a first whole-heap
collection comes early, at ~170,000 objects, and the next one, at four times that, would fall in the middle of the
first burst), they are unfrozen and the next full collection visits everything again: the collector's work stays
linear in what is allocated, and the memory held by such garbage is bounded. (The frozen objects are counted only
while the allocator's blocks, one per object of 512 bytes or less, could put them past that bound: counting walks
them all.) A thread that wakes once a
second sees a new full collection in ``gc.get_stats()`` and does the freezing: no callback runs inside the collector
(one in Python cost ~2% of an UpdateItem's samples, as the youngest generation is collected every 2,000 allocations).

No LocalStack imports: unit-tested (tests/localcloud/unit/test_gcpolicy.py); ``localcloud.plugins.gc_policy`` installs it.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any


class GcPolicy:
    def __init__(self, freeze: bool = True, grow: float = 4.0, floor: int = 1_000_000, poll_s: float = 1.0) -> None:
        self.freeze = freeze
        self.grow = grow
        self.floor = floor
        self.poll_s = poll_s
        self.whole_heap_collections = 0  # full collections that visited every tracked object (nothing frozen)
        self.unfreezes = 0
        self.whole = 0  # objects kept by the last whole-heap collection (frozen after it)
        self.frozen_any = False  # whether this policy has frozen objects since it last unfroze them
        self.counts_skipped = 0  # full collections after which the frozen objects were not counted (not near the bound)
        self._full_collections = self.full_collections()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the freezing, outside the collector

    @staticmethod
    def full_collections() -> int:
        return gc.get_stats()[2]["collections"]

    def after_full_collection(self) -> None:
        """Freeze what survived the last full collection, or unfreeze everything once the frozen objects are ``grow``
        times what the last whole-heap collection kept, or ``floor`` if that was more (the next full collection then
        visits the whole heap)."""
        whole_heap = not self.frozen_any  # nothing was frozen when it ran (only this policy freezes)
        self.whole_heap_collections += whole_heap
        if not self.freeze:
            return
        gc.freeze()
        self.frozen_any = True
        bound = self.grow * max(self.whole, self.floor)
        if not whole_heap and sys.getallocatedblocks() <= bound:
            # Not past the bound, without counting: every object of 512 bytes or less is one of the blocks Python's
            # allocator has handed out, which it sums per arena (~0.2 ms); only the few larger objects (classes,
            # long tuples) are not, so the unfreeze can come that many objects late. gc.get_freeze_count() walks
            # every frozen object: ~8 ms per million in a quiet process, ~170 ms per call in LocalStack during a
            # burst (py-spy, 2026-12-04: 13 samples for 3 calls).
            self.counts_skipped += 1
            return
        # gc.get_freeze_count() cannot be replaced by gc.get_objects() of the younger lists: on this thread, that
        # hands out references to tuples other threads are still building, and their resize then fails ("bad
        # argument to internal function": a deploy failed so, 2026-12-04).
        frozen = gc.get_freeze_count()
        if whole_heap:
            self.whole = frozen
        elif frozen > self.grow * max(self.whole, self.floor):
            gc.unfreeze()
            self.frozen_any = False
            self.unfreezes += 1

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            full = self.full_collections()
            if full != self._full_collections:
                self._full_collections = full
                self.after_full_collection()

    def install(self) -> GcPolicy:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="localcloud-gc-policy", daemon=True)
            self._thread.start()
        return self

    def uninstall(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        gc.unfreeze()
        self.frozen_any = False

    def stats(self) -> dict[str, Any]:
        return {
            "freeze": self.freeze,
            "threshold": list(gc.get_threshold()),
            "collections": [generation["collections"] for generation in gc.get_stats()],
            "whole_heap_collections": self.whole_heap_collections,
            "unfreezes": self.unfreezes,
            "frozen": gc.get_freeze_count(),
            "counts_skipped": self.counts_skipped,
            "allocated_blocks": sys.getallocatedblocks(),
        }
