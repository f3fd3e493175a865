"""AWS error classification: transient failures become TransientAWSError, which the workflow retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

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


def is_transient(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error.response.get("Error", {}).get("Code") in TRANSIENT_CODES or status >= 500


@contextmanager
def transient_errors() -> Iterator[None]:
    """Re-raise transient AWS failures (after boto3's own retries) as TransientAWSError."""
    try:
        yield
    except ClientError as e:
        if is_transient(e):
            raise TransientAWSError(f"{e.operation_name}: {e.response.get('Error', {}).get('Code')}: {e}") from e
        raise
    except (ConnectionError, ReadTimeoutError) as e:
        raise TransientAWSError(str(e)) from e
