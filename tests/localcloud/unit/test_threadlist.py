"""LocalStack's list of started threads, bounded (localcloud/threadlist.py): finished plain threads go, nothing else."""

from __future__ import annotations

import threading

from localcloud.threadlist import ThreadList


class FuncThread(threading.Thread):  # stands for LocalStack's, whose stop() calls its on_stop callback
    def __init__(self, on_stop=None) -> None:
        super().__init__(target=lambda: None, daemon=True)
        self.on_stop = on_stop


class ShellCommandThread(FuncThread):  # a kind not named: its stop() kills a process at shutdown
    pass


def finished(thread: threading.Thread | None = None) -> threading.Thread:
    thread = thread or threading.Thread(target=lambda: None, daemon=True)
    thread.start()
    thread.join()
    return thread


def test_ended_threads_of_the_kinds_named_go_and_the_rest_stay_in_order():
    stop = threading.Event()
    running = threading.Thread(target=stop.wait, daemon=True)
    running.start()
    try:
        with_callback, other_kind = finished(FuncThread(on_stop=print)), finished(ShellCommandThread())
        not_started = threading.Thread(target=lambda: None)
        threads = [finished(), running, finished(FuncThread()), with_callback, other_kind, not_started, finished()]
        listed = ThreadList(threads, kinds=(threading.Thread, FuncThread), minimum=1)
        assert listed.prune() == 3
        assert threads == [running, with_callback, other_kind, not_started]  # the same list, pruned in place
        assert listed.pruned == 3
    finally:
        stop.set()


def test_it_prunes_only_once_the_list_has_grown_to_twice_what_the_last_prune_kept():
    stop = threading.Event()
    live = [threading.Thread(target=stop.wait, daemon=True) for _ in range(40)]
    for thread in live:
        thread.start()
    try:
        threads: list[threading.Thread] = list(live)
        listed = ThreadList(threads, minimum=8)
        sizes = []
        for _ in range(300):
            threads.append(finished())
            listed.maybe_prune()
            sizes.append(len(threads))
        assert max(sizes) <= 80  # 2 x the 40 that are still running
        assert listed.pruned >= 300 - 40 and threads[:40] == live
    finally:
        stop.set()


def test_a_thread_appended_while_it_prunes_is_kept():
    threads = [finished() for _ in range(5)]
    late = finished()

    class Appending(list):  # another thread's append lands between the prune's copy and its assignment
        def __getitem__(self, index):
            items = super().__getitem__(index)
            if isinstance(index, slice) and late not in self:
                self.append(late)
            return items

    listed = ThreadList(Appending(threads), minimum=1)
    assert listed.prune() == 5
    assert list(listed.threads) == [late]
