"""Lambda admission for a small machine: invocations queue for one of a few run slots in arrival order.

LocalStack admits every invocation up to ``LAMBDA_LIMITS_CONCURRENT_EXECUTIONS`` at once and throws
``TooManyRequestsException`` beyond it. On AWS that cap is a quota over a fleet; on a 2-core machine, 64 concurrent
invocations mean ~120 execution environments started in a burst (~0.5-1 s of imports each), 64 image renders sharing
two cores (each 30x slower, so Step Functions task timeouts fire and the retries redo the work), and throttled tasks
sleeping up to 20 s: measured, a 300-upload burst ran at 0.5 images/s and 78 images ended FAILED.

Here an invocation first takes one of ``LOCALCLOUD_LAMBDA_SLOTS`` slots (default: 2 per core, at least 4), waiting
for it in arrival order (FIFO: the oldest waiting invocation gets the next free slot), then goes through LocalStack's
own lease (reserved and provisioned concurrency keep their AWS semantics). Only an invocation that waited
``LOCALCLOUD_LAMBDA_ADMISSION_WAIT_S`` (default 20 s: it leaves at least 5 s of every task timeout of the pipeline,
25 s, and of API Gateway's 29 s) is refused with the real ``TooManyRequestsException``, so a caller's throttling retry
path still runs under an overload; tests that need throttles on demand inject them (``localcloud.faults``). (It was
10 s: 50 uploads under 30% injected faults, whose functions sleep in their SDK retries while they hold a slot, queued
up to 45 invocations for ~11 s, and the queue throttled ~20% of them on top of the injected 30%; a Validate task
ran out of its 11 attempts in one of four runs of the suite.) The slot is held while an
environment starts: a start is CPU work too, and counting it keeps the number of environments sized to the machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque

from localstack.http import Request, Response, route

from localcloud.patching import hook, patch

LOG = logging.getLogger(__name__)


class Admission:
    """A counting semaphore whose waiters are served first come, first served, with a bounded wait."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.free = slots
        self.lock = threading.Lock()
        self.waiters: deque[list] = deque()  # [event, granted]
        self.admitted = 0
        self.refused = 0
        self.waited_s = 0.0
        self.max_waiting = 0

    def acquire(self, timeout: float) -> bool:
        started = time.monotonic()
        with self.lock:
            if self.free > 0 and not self.waiters:
                self.free -= 1
                self.admitted += 1
                return True
            waiter = [threading.Event(), False]
            self.waiters.append(waiter)
            self.max_waiting = max(self.max_waiting, len(self.waiters))
        waiter[0].wait(timeout)
        with self.lock:
            self.waited_s += time.monotonic() - started
            if waiter[1]:  # granted, maybe just as the wait timed out: the slot is ours
                self.admitted += 1
                return True
            self.waiters.remove(waiter)
            self.refused += 1
            return False

    def release(self) -> None:
        with self.lock:
            if self.waiters:
                waiter = self.waiters.popleft()
                waiter[1] = True  # hand the slot over directly: no newcomer can overtake the oldest waiter
                waiter[0].set()
            else:
                self.free += 1

    def stats(self) -> dict:
        with self.lock:
            return {
                "slots": self.slots,
                "running": self.slots - self.free,
                "waiting": len(self.waiters),
                "admitted": self.admitted,
                "refused": self.refused,
                "max_waiting": self.max_waiting,
                "waited_s": round(self.waited_s, 3),
            }


def default_slots() -> int:
    return max(4, 2 * (os.cpu_count() or 1))


ADMISSION = Admission(int(os.environ.get("LOCALCLOUD_LAMBDA_SLOTS") or default_slots()))
WAIT_S = float(os.environ.get("LOCALCLOUD_LAMBDA_ADMISSION_WAIT_S") or 20)


class AdmissionRoutes:
    @route("/_localcloud/admission", methods=["GET"])
    def admission_stats(self, request: Request) -> Response:
        body = {**ADMISSION.stats(), "wait_limit_s": WAIT_S}
        return Response(json.dumps(body), status=200, mimetype="application/json")


@hook("Lambda admission queue")
def queue_lambda_invocations() -> str | None:
    from localstack.aws.api.lambda_ import TooManyRequestsException
    from localstack.services.edge import ROUTER
    from localstack.services.lambda_.invocation.counting_service import CountingService

    if ADMISSION.slots <= 0:
        return None

    def queueing(original):
        @contextlib.contextmanager
        def get_invocation_lease(self, function, function_version, provisioned_state=None):
            if not ADMISSION.acquire(WAIT_S):
                LOG.info(
                    "localcloud: %s throttled after waiting %.0f s for a run slot (%s)",
                    function_version.id.function_name,
                    WAIT_S,
                    ADMISSION.stats(),
                )
                raise TooManyRequestsException(
                    "Rate Exceeded.", Reason="ReservedFunctionConcurrentInvocationLimitExceeded", Type="User"
                )
            try:
                with original(self, function, function_version, provisioned_state) as lease:
                    yield lease
            finally:
                ADMISSION.release()

        return get_invocation_lease

    if not patch(CountingService, "get_invocation_lease", queueing, wraps=True):
        return None
    ROUTER.add(AdmissionRoutes())
    return f"Lambda invocations queue for {ADMISSION.slots} run slots (bounded wait {WAIT_S:.0f} s)"
