"""A DynamoDB provider with no Java: every operation is served by moto's DynamoDB backend.

Real DynamoDB applies each write atomically (a condition is checked and the write applied as one
step), and a read sees a write whole or not at all. Moto does not lock: two concurrent conditional UpdateItems on one
item can both pass their condition, and an UpdateItem applies its actions one by one to the stored item, so a read on
another thread could see some of them (a record PROCESSED without the ``original`` the same write set). LocalStack
serves requests on many threads, so every data-plane operation, read or write, runs under one lock here.

While a single-item write (PutItem, UpdateItem, DeleteItem) holds the lock, its item is read from moto's backend
before and after it, and the write capacity units it consumed in the table and in each global secondary index
(localcloud.capacity) are left on the request context (``CAPACITY_ATTRIBUTE``) for the request meter.

A condition or filter expression that does not parse, or names an undefined placeholder, is refused as DynamoDB
refuses it: 400 ``ValidationException`` (``_call_moto``).
"""

import logging
import threading
import traceback
from typing import Any

from localstack.aws.api import CommonServiceException, RequestContext, handler
from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.moto import call_moto

from localcloud.capacity import write_units

LOG = logging.getLogger(__name__)

_ITEMS = threading.RLock()  # held by every read and write of items
CAPACITY_ATTRIBUTE = "localcloud_write_units"
_SINGLE_ITEM_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


def _serialised(context: RequestContext):
    with _ITEMS:
        if context.operation is None or context.operation.name not in _SINGLE_ITEM_WRITES:
            return _call_moto(context)
        found = _find_item(context)
        before = found[2]() if found else None
        try:
            return _call_moto(context)
        finally:  # a refused write (a failed condition) consumes capacity too
            if found:
                _leave_capacity(context, found, before)


def _call_moto(context: RequestContext):
    """moto, with DynamoDB's answer to a condition or filter expression that does not parse or names an undefined
    placeholder: a 400 ValidationException. moto's condition parser raises a bare ValueError or KeyError there, which
    LocalStack answered with a 500 InternalError that SDKs retry (boto3: up to 9 times) before failing anyway."""
    try:
        return call_moto(context)
    except (ValueError, KeyError) as e:
        frames = traceback.extract_tb(e.__traceback__)
        if not frames or not frames[-1].filename.endswith("moto/dynamodb/comparisons.py"):
            raise
        request: dict[str, Any] = context.service_request or {}
        parameter = next((p for p in ("ConditionExpression", "FilterExpression") if p in request), "expression")
        if isinstance(e, KeyError):
            placeholder = str(e.args[0]) if e.args else ""
            if placeholder.startswith("#"):
                detail = f"An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
            else:
                detail = (
                    f"An expression attribute value used in expression is not defined; attribute value: {placeholder}"
                )
        else:
            detail = f"Syntax error; {e}"
        raise CommonServiceException("ValidationException", f"Invalid {parameter}: {detail}") from e


def _find_item(context: RequestContext):
    """(moto's table, its key attribute names, a function reading the item's current image) for the write's item;
    None when the table or key cannot be resolved (moto then answers the request's error)."""
    try:
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType

        request: dict[str, Any] = context.service_request or {}
        table = dynamodb_backends[context.account_id][context.region].get_table(request["TableName"])
        key_attrs = [a for a in (table.hash_key_attr, table.range_key_attr) if a]
        source = request.get("Key") or request.get("Item") or {}
        key = [DynamoType(source[a]) for a in key_attrs]
    except Exception:  # noqa: BLE001 — no such table, a malformed key: not metered, moto answers the error
        return None

    def read() -> dict[str, Any] | None:
        item = table.get_item(key[0], key[1] if len(key) > 1 else None)
        return item.to_json()["Attributes"] if item is not None else None

    return table, key_attrs, read


def _leave_capacity(context: RequestContext, found, before: dict[str, Any] | None) -> None:
    table, key_attrs, read = found
    try:
        indexes = [
            {"name": ix.name, "keys": ix.schema_key_attrs, "projection": ix.projection} for ix in table.global_indexes
        ]
        setattr(context, CAPACITY_ATTRIBUTE, write_units(before, read(), key_attrs, indexes))
    except Exception:  # noqa: BLE001 — metering must never change what the request answers
        LOG.exception("localcloud: could not size a DynamoDB write")


class MotoDynamoDBProvider(DynamodbApi):
    """Unimplemented operations fall through to moto (MotoFallbackDispatcher); reads and writes of items are
    serialised."""

    @handler("GetItem", expand=False)
    def get_item(self, context: RequestContext, request):
        return _serialised(context)

    @handler("BatchGetItem", expand=False)
    def batch_get_item(self, context: RequestContext, request):
        return _serialised(context)

    @handler("Query", expand=False)
    def query(self, context: RequestContext, request):
        return _serialised(context)

    @handler("Scan", expand=False)
    def scan(self, context: RequestContext, request):
        return _serialised(context)

    @handler("TransactGetItems", expand=False)
    def transact_get_items(self, context: RequestContext, request):
        return _serialised(context)

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
