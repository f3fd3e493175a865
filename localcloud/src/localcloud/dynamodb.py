"""A DynamoDB provider with no Java: every operation is served by moto's DynamoDB backend.

Real DynamoDB applies each write atomically (a condition is checked and the write applied as one
step). Moto does not lock: two concurrent conditional UpdateItems on one item can both pass their
condition. LocalStack serves requests on many threads, so the write operations are serialised here.
Reads go straight to moto.
"""

import threading

from localstack.aws.api import RequestContext, handler
from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.moto import call_moto

_WRITES = threading.RLock()


def _serialised(context: RequestContext):
    with _WRITES:
        return call_moto(context)


class MotoDynamoDBProvider(DynamodbApi):
    """Unimplemented operations fall through to moto (MotoFallbackDispatcher); writes are serialised."""

    @handler("PutItem", expand=False)
    def put_item(self, context: RequestContext, request):
        return _serialised(context)

    @handler("UpdateItem", expand=False)
    def update_item(self, context: RequestContext, request):
        return _serialised(context)

    @handler("DeleteItem", expand=False)
    def delete_item(self, context: RequestContext, request):
        return _serialised(context)

    @handler("BatchWriteItem", expand=False)
    def batch_write_item(self, context: RequestContext, request):
        return _serialised(context)

    @handler("TransactWriteItems", expand=False)
    def transact_write_items(self, context: RequestContext, request):
        return _serialised(context)

    @handler("ExecuteStatement", expand=False)
    def execute_statement(self, context: RequestContext, request):
        return _serialised(context)
