"""Which AWS failures the state machine retries: transient_errors turns them into TransientAWSError."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from image_pipeline.aws import transient_errors
from image_pipeline.errors import TransientAWSError


@pytest.mark.parametrize(
    "error",
    [
        ConnectionClosedError(endpoint_url="http://s3"),  # the server closed the connection (LocalStack under load)
        EndpointConnectionError(endpoint_url="http://s3"),
        ReadTimeoutError(endpoint_url="http://s3"),
        ResponseStreamingError(error="Connection broken: IncompleteRead"),  # a GetObject body broke off
        ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"),
        ClientError({"Error": {"Code": "Whatever"}, "ResponseMetadata": {"HTTPStatusCode": 502}}, "PutObject"),
    ],
)
def test_connection_and_server_failures_are_retried(error):
    with pytest.raises(TransientAWSError), transient_errors():
        raise error


def test_a_client_error_is_not():
    error = ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")
    with pytest.raises(ClientError), transient_errors():
        raise error
