"""AWS error classification: transient failures become TransientAWSError, which the workflow retries; the
codes the steps tell apart (missing object, failed condition) are named once here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from image_pipeline.errors import TransientAWSError

TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "TransactionConflictException",
    "LimitExceededException",
}

NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
PRECONDITION_FAILED_CODES = {"412", "PreconditionFailed"}


def error_code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def is_not_found(error: ClientError) -> bool:
    """S3's answer for a missing key (HeadObject says "404", GetObject/CopyObject "NoSuchKey")."""
    return error_code(error) in NOT_FOUND_CODES


def is_conditional_check_failed(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def is_transient(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in TRANSIENT_CODES or status >= 500


@contextmanager
def transient_errors() -> Iterator[None]:
    """Re-raise transient AWS failures (after boto3's own retries) as TransientAWSError."""
    try:
        yield
    except ClientError as e:
        if is_transient(e):
            raise TransientAWSError(f"{e.operation_name}: {error_code(e)}: {e}") from e
        raise
    # the connection failed or closed (ConnectionClosedError, ReadTimeoutError are HTTPClientErrors), or a response
    # body broke off while it was read: after the SDK's own retries, the state machine retries the step
    except (ConnectionError, HTTPClientError, ResponseStreamingError, IncompleteReadError) as e:
        raise TransientAWSError(f"{type(e).__name__}: {e}") from e
