"""The local cloud's garbage collection policy (localcloud/gcpolicy.py), on a real collector: what a full collection
keeps is frozen, later full collections skip it, and cyclic garbage among frozen objects is reclaimed once the frozen
objects have grown past the bound.

Each test runs in a new interpreter (multiprocessing's spawn): the policy freezes that process's heap, and a pytest
worker's heap (moto, Pillow, botocore's models) would make every whole-heap collection take seconds."""

from __future__ import annotations

import gc
import multiprocessing
import sys
import time
import weakref

from localcloud.gcpolicy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def isolated(test):
    """Run the test in a new interpreter with a policy of its own; its assertion, if any, fails this test."""

    def run() -> None:
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            pool.apply(_run_with_policy, (test.__name__,))

    run.__name__, run.__doc__, run.test = test.__name__, test.__doc__, test  # type: ignore[attr-defined]
    return run


def _run_with_policy(name: str) -> None:
    made: list[GcPolicy] = []

    def policy_of(**kwargs) -> GcPolicy:
        policy = GcPolicy(**{"poll_s": 3600, **kwargs}).install()
        made.append(policy)
        return policy

    try:
        globals()[name].test(policy_of)
    finally:
        for policy in made:
            policy.uninstall()


@isolated
def test_collections_are_counted(policy_of):
    policy = policy_of()
    before = policy.stats()
    gc.collect(0)
    gc.collect(2)
    policy.after_full_collection()
    after = policy.stats()
    assert after["collections"][0] > before["collections"][0] and after["collections"][2] > before["collections"][2]
    assert after["whole_heap_collections"] == 1  # nothing was frozen when it ran


@isolated
def test_what_a_full_collection_keeps_is_frozen_and_later_ones_skip_it(policy_of):
    policy = policy_of()
    kept = [Node() for _ in range(100)]
    gc.collect()
    policy.after_full_collection()
    assert policy.whole == gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects(generation=2))  # frozen: no collection visits it
    young = [Node()]
    gc.collect()
    policy.after_full_collection()
    assert policy.stats()["whole_heap_collections"] == 1  # the second one visited only what came after the freeze
    assert gc.get_freeze_count() > policy.whole  # and its survivors joined the frozen ones
    del kept, young


@isolated
def test_cyclic_garbage_among_frozen_objects_is_reclaimed_once_they_have_grown_past_the_bound(policy_of):
    policy = policy_of(grow=1.5, floor=0)
    gc.collect()
    policy.after_full_collection()
    whole = policy.whole

    node = Node()
    gone = weakref.ref(node)
    gc.collect()
    policy.after_full_collection()  # the node survived a full collection: frozen
    del node
    gc.collect()
    assert gone() is not None, "a frozen cycle is not collected"
    assert policy.unfreezes == 0

    grown = [[] for _ in range(int(whole * 0.6))]  # tracked objects: the frozen ones will pass 1.5x whole
    gc.collect()
    policy.after_full_collection()
    assert policy.unfreezes == 1 and gc.get_freeze_count() == 0
    gc.collect()  # a whole-heap collection again
    policy.after_full_collection()
    assert gone() is None
    assert policy.stats()["whole_heap_collections"] == 2
    del grown


@isolated
def test_python_policy_counts_but_never_freezes(policy_of):
    policy = policy_of(freeze=False)
    gc.collect()
    policy.after_full_collection()
    gc.collect()
    policy.after_full_collection()
    assert gc.get_freeze_count() == 0
    assert policy.stats()["whole_heap_collections"] == 2


@isolated
def test_the_policy_thread_freezes_after_a_full_collection(policy_of):
    policy = policy_of(poll_s=0.01)
    gc.collect()
    deadline = time.monotonic() + 10
    while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gc.get_freeze_count() > 0 and policy.whole > 0 and policy.whole_heap_collections >= 1


@isolated
def test_the_frozen_objects_are_counted_only_when_the_allocated_blocks_could_be_past_the_bound(policy_of):
    """gc.get_freeze_count() walks every frozen object (~170 ms per call in LocalStack during a burst). Each object of
    512 bytes or less is one of the allocator's blocks, so while those are under the bound, so are the frozen objects,
    and the count is skipped; once they could be past it, the frozen objects are counted (and unfrozen if past)."""
    counted = []
    real_count = gc.get_freeze_count

    def counting() -> int:
        counted.append(1)
        return real_count()

    gc.get_freeze_count = counting
    try:
        policy = policy_of(grow=4.0, floor=10_000_000)  # far above this interpreter's blocks
        gc.collect()
        policy.after_full_collection()  # the first whole-heap collection is always counted
        assert len(counted) == 1 and policy.whole > 0
        kept = [Node() for _ in range(1000)]
        for _ in range(3):
            gc.collect()
            policy.after_full_collection()
        assert len(counted) == 1 and policy.counts_skipped == 3 and policy.unfreezes == 0
        assert real_count() > policy.whole  # still frozen, uncounted

        frozen, blocks = real_count(), sys.getallocatedblocks()
        assert blocks > frozen > policy.whole
        policy.grow, policy.floor = 1.0, (frozen + blocks) // 2  # the blocks past the bound, the frozen objects not
        gc.collect()
        policy.after_full_collection()
        assert len(counted) == 2 and policy.counts_skipped == 3 and policy.unfreezes == 0
        policy.floor = policy.whole  # now the frozen objects are past it too
        gc.collect()
        policy.after_full_collection()
        assert len(counted) == 3 and policy.unfreezes == 1 and real_count() == 0
        del kept
    finally:
        gc.get_freeze_count = real_count
