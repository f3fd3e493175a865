"""Patches of LocalStack's Lambda service (``localstack.services.lambda_``, localstack-core 2026.3.0).

- Each invocation's logs went out in their own PutLogEvents call (~3.5 ms through the internal client) from one thread
  per function version; under a burst the invocations' logs wait in that thread's queue, and we send what is waiting
  together, one call per log stream. Once a stream exists, a batch goes straight into the logs store (moto's backend,
  what LocalStack's PutLogEvents ends in), not through a botocore request, the gateway and moto's HTTP dispatch: that
  path was ~16% of LocalStack's CPU in a burst (py-spy, 2026-12-03). The first batch of a stream, and every batch
  while CloudWatch metric filters apply (LocalStack evaluates those in its provider), still go through the client.
- LocalStack made a new boto3 client for each Lambda code URL it signs (GetFunction), ~30-50 ms each; one client per
  endpoint signs them all.
- Lambda code given as an S3 object was read and uploaded again, in parts, into LocalStack's own bucket (the
  project's 44 MB layer at every stack deploy); it is copied within S3.
- Lambda admission for a small machine: invocations queue for one of a few run slots in arrival order.

Lambda admission. LocalStack admits every invocation up to ``LAMBDA_LIMITS_CONCURRENT_EXECUTIONS`` at once and throws
``TooManyRequestsException`` beyond it. On AWS that cap is a quota over a fleet; on a 2-core machine, 64 concurrent
invocations mean ~120 execution environments started in a burst (~0.5-1 s of imports each), 64 image renders sharing
two cores (each 30x slower, so Step Functions task timeouts fire and the retries redo the work), and throttled tasks
sleeping up to 20 s: measured, a 300-upload burst ran at 0.5 images/s and 78 images ended FAILED.

Here an invocation first takes one of ``LOCALCLOUD_LAMBDA_SLOTS`` slots (default: 2 per core, at least 4), waiting
for it in arrival order (FIFO: the oldest waiting invocation gets the next free slot), then goes through LocalStack's
own lease (reserved and provisioned concurrency keep their AWS semantics). Only an invocation that waited
``LOCALCLOUD_LAMBDA_ADMISSION_WAIT_S`` (default 20 s: it leaves at least 5 s of every task timeout of the pipeline,
25 s, and of API Gateway's 29 s) is refused with the real ``TooManyRequestsException``, so a caller's throttling retry
path still runs under an overload; tests that need throttles on demand inject them (``localcloud.plugins.fault_injection``).
(It was 10 s: 50 uploads under 30% injected faults, whose functions sleep in their SDK retries while they hold a
slot, queued up to 45 invocations for ~11 s, and the queue throttled ~20% of them on top of the injected 30%; a
Validate task ran out of its 11 attempts in one of four runs of the suite.) The slot is held while an environment
starts: a start is CPU work too, and counting it keeps the number of environments sized to the machine.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections import deque

from localstack.http import Request, Response, route

from localcloud.patching import Patch, hook, patch_all, rebind_imported

LOG = logging.getLogger(__name__)


LOG_BATCH_ITEMS = 50


class LogsStore:
    """The logs store of one account and region, written directly while nothing but storing is at stake."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def put(self, group: str, stream: str, events: list[dict]) -> bool:
        """True if ``events`` were stored in the existing ``stream``; False if the caller must use PutLogEvents."""
        try:
            from localstack.services.logs.models import get_moto_logs_backend
            from localstack.utils.bootstrap import is_api_enabled

            backend = get_moto_logs_backend(self.account, self.region)
            log_group = backend.groups.get(group)
            if log_group is None or stream not in log_group.streams:
                return False
            if is_api_enabled("cloudwatch") and backend.filters.metric_filters:
                return False
        except Exception as e:  # noqa: BLE001 - LocalStack's internals are not what we expect: use the API
            LOG.debug("localcloud: logs for %s/%s go through PutLogEvents: %s", group, stream, e)
            return False
        try:
            backend.put_log_events(group, stream, events)  # what the provider's call_moto ends in
        except Exception as e:  # noqa: BLE001 - as a failed PutLogEvents in LocalStack's own loop: logged, not retried
            LOG.warning("Error saving logs to group %s: %s", group, e)  # (a retry could store them twice)
        return True


class LazyClient:
    """A client made on its first use: every function version starts a log loop, and making its client (an assumed
    role and a botocore client, ~70 ms) was ~7% of LocalStack's CPU in a stack's first deploy (py-spy, 2026-12-03),
    though a version never invoked, or whose streams already exist, never calls it."""

    def __init__(self, make) -> None:
        self._make = make
        self._client = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)


def _put_batch(logs_client, items, store: LogsStore | None = None) -> None:
    """One PutLogEvents per log stream for the items taken from the queue together (in their order)."""
    streams: dict[tuple[str, str], list[dict]] = {}
    now = int(time.time() * 1000)
    for item in items:
        events = streams.setdefault((item.log_group, item.log_stream), [])
        events += [{"timestamp": now, "message": line + "\n"} for line in item.logs.split("\n") if line]
    for (group, stream), events in streams.items():
        if not events or (store is not None and store.put(group, stream, events)):
            continue
        try:
            try:
                logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except logs_client.exceptions.ResourceNotFoundException:
                try:
                    logs_client.create_log_group(logGroupName=group)
                except logs_client.exceptions.ResourceAlreadyExistsException:
                    pass
                logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
                logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as e:  # noqa: BLE001 - as LocalStack's own loop: a lost batch is logged, never fatal
            LOG.warning("Error saving logs to group %s: %s", group, e)


@hook("Lambda log batching")
def batch_lambda_log_delivery() -> str | None:
    from localstack.aws.connect import connect_to
    from localstack.services.lambda_.invocation.logs import QUEUE_SHUTDOWN, LogHandler
    from localstack.utils.aws.client_types import ServicePrincipal

    def run_log_loop(self, *args, **kwargs) -> None:  # a copy of LocalStack's, sending what waits together
        logs_client = LazyClient(
            lambda: (
                connect_to.with_assumed_role(
                    region_name=self.region, role_arn=self.role_arn, service_principal=ServicePrincipal.lambda_
                ).logs
            )
        )
        store = LogsStore(self.role_arn.split(":")[4], self.region)  # the function's account: its role's
        while not self._shutdown_event.is_set():
            items = [self.log_queue.get()]
            while len(items) < LOG_BATCH_ITEMS and not self.log_queue.empty():
                items.append(self.log_queue.get_nowait())
            stop = QUEUE_SHUTDOWN in items
            _put_batch(logs_client, [i for i in items if i is not QUEUE_SHUTDOWN], store)
            if stop:
                return

    copied = {"localstack.services.lambda_.invocation.logs:LogHandler.run_log_loop": "905b3d11ee97465b"}
    if not patch_all(Patch(LogHandler, "run_log_loop", run_log_loop, copies=copied)):
        return None
    return "Lambda logs waiting together go in one PutLogEvents per stream"


@hook("Lambda code URL client cache")
def cache_lambda_code_url_clients() -> str | None:
    import boto3
    from localstack import config
    from localstack.constants import AWS_REGION_US_EAST_1, INTERNAL_AWS_SECRET_ACCESS_KEY
    from localstack.services.lambda_.invocation.lambda_models import S3Code

    # LocalStack's generate_presigned_url makes a new boto3 client for every URL it signs (~30-50 ms of CPU);
    # CloudFormation calls GetFunction while it waits for each function it creates, and so do clients: 2-4% of
    # LocalStack's CPU in `make test` (py-spy, 2026-12-03). A client signs with the time of the call, so one kept per
    # endpoint signs the same URLs.
    @functools.cache
    def client(endpoint_url: str):
        return boto3.client(  # what LocalStack's generate_presigned_url makes each time
            "s3",
            region_name=AWS_REGION_US_EAST_1,
            aws_access_key_id=config.INTERNAL_RESOURCE_ACCOUNT,
            aws_secret_access_key=INTERNAL_AWS_SECRET_ACCESS_KEY,
            endpoint_url=endpoint_url,
        )

    def generate_presigned_url(self, endpoint_url: str) -> str:  # a copy of LocalStack's, with a kept client
        params = {"Bucket": self.s3_bucket, "Key": self.s3_key}
        if self.s3_object_version:
            params["VersionId"] = self.s3_object_version
        return client(endpoint_url).generate_presigned_url("get_object", Params=params)

    copied = {"localstack.services.lambda_.invocation.lambda_models:S3Code.generate_presigned_url": "19b3ea43953ef83a"}
    if not patch_all(Patch(S3Code, "generate_presigned_url", generate_presigned_url, copies=copied)):
        return None
    return "Lambda code URLs are signed by one client per endpoint"


@hook("Lambda code from S3 copied within S3")
def copy_lambda_code_within_s3() -> str | None:
    import base64
    import hashlib
    import io
    import uuid

    from botocore.exceptions import ClientError
    from localstack import config
    from localstack.aws.api.lambda_ import InvalidParameterValueException
    from localstack.aws.connect import connect_to
    from localstack.constants import AWS_REGION_US_EAST_1
    from localstack.services.lambda_.invocation import lambda_service
    from localstack.services.lambda_.invocation.lambda_models import S3Code
    from localstack.utils.archives import get_unzipped_size, is_zip_file

    # A function's or layer's code given as an S3 object (what CloudFormation and `sam package` give) is read from its
    # bucket, checked, and uploaded again into LocalStack's own bucket: for this project's 44 MB layer, once per stack
    # deploy, in 8 MB parts through s3transfer's threads, the gateway and S3's handler, with SigV4 payload hashes, CRC32
    # and MD5 on the way (~7% of LocalStack's CPU in `make test`, py-spy 2026-12-04). It is read and checked as before,
    # then copied within S3, on condition that it is still the object that was read (its ETag); if the copy fails,
    # the bytes that were read are stored as LocalStack stores them. The stored object, its key, hash and size are
    # what LocalStack's path gives.
    def copying_within_s3(original):
        # a copy of LocalStack's store_s3_bucket_archive and of store_lambda_archive's checks and key layout
        def store_s3_bucket_archive(
            archive_bucket, archive_key, archive_version, function_name, region_name, account_id
        ):
            if archive_bucket == config.BUCKET_MARKER_LOCAL:  # hot reloading: no archive
                return original(archive_bucket, archive_key, archive_version, function_name, region_name, account_id)
            s3_client = connect_to().s3
            version = {"VersionId": archive_version} if archive_version else {}
            try:
                got = s3_client.get_object(Bucket=archive_bucket, Key=archive_key, **version)
                archive_file = got["Body"].read()
            except s3_client.exceptions.ClientError as e:  # LocalStack's message
                raise InvalidParameterValueException(
                    f"Error occurred while GetObject. S3 Error Code: {e.response['Error']['Code']}. "
                    f"S3 Error Message: {e.response['Error']['Message']}",
                    Type="User",
                ) from e
            store = lambda_service.store_lambda_archive
            if not is_zip_file(archive_file):
                return store(archive_file, function_name, region_name, account_id)  # refused there, with its error
            if get_unzipped_size(io.BytesIO(archive_file)) >= config.LAMBDA_LIMITS_CODE_SIZE_UNZIPPED:
                return store(archive_file, function_name, region_name, account_id)
            internal = connect_to(
                region_name=AWS_REGION_US_EAST_1, aws_access_key_id=config.INTERNAL_RESOURCE_ACCOUNT
            ).s3
            bucket_name = f"awslambda-{region_name}-tasks"
            internal.create_bucket(Bucket=bucket_name)
            code_id = f"{function_name}-{uuid.uuid4()}"
            key = f"snapshots/{account_id}/{code_id}"
            source = {"Bucket": archive_bucket, "Key": archive_key, **version}
            try:
                internal.copy_object(CopySource=source, CopySourceIfMatch=got["ETag"], Bucket=bucket_name, Key=key)
            except ClientError:  # replaced since it was read, say: the bytes that were checked
                return store(archive_file, function_name, region_name, account_id)
            return S3Code(
                id=code_id,
                account_id=account_id,
                s3_bucket=bucket_name,
                s3_key=key,
                s3_object_version=None,
                code_sha256=base64.b64encode(hashlib.sha256(archive_file).digest()).decode(),
                code_size=len(archive_file),
            )

        return store_s3_bucket_archive

    original = getattr(lambda_service, "store_s3_bucket_archive", None)
    copied = {
        "localstack.services.lambda_.invocation.lambda_service:store_s3_bucket_archive": "037114af36f74b74",
        "localstack.services.lambda_.invocation.lambda_service:store_lambda_archive": "d4af5f2d0293038f",
    }
    if not patch_all(Patch(lambda_service, "store_s3_bucket_archive", copying_within_s3, wraps=True, copies=copied)):
        return None
    rebind_imported("store_s3_bucket_archive", original, lambda_service.store_s3_bucket_archive)  # Lambda's provider
    return "Lambda code given as an S3 object is copied within S3 instead of uploaded again"


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

    if not patch_all(Patch(CountingService, "get_invocation_lease", queueing, wraps=True)):
        return None
    ROUTER.add(AdmissionRoutes())
    return f"Lambda invocations queue for {ADMISSION.slots} run slots (bounded wait {WAIT_S:.0f} s)"
