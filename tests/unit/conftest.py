"""Unit tests: the layer's code and the handlers, against moto (no network, no local cloud)."""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[2]

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TABLE_NAME": "images-test",
    "ORIGINAL_BUCKET": "original-test",
    "PROCESSED_BUCKET": "processed-test",
    "WORK_BUCKET": "work-test",
    "MAX_DIMENSION": "800",
    "MAX_UPLOAD_BYTES": "1000000",
    "MAX_PIXELS": "50000000",
    "URL_EXPIRY_SECONDS": "300",
    "USAGE_TABLE": "usage-test",
    "POWERTOOLS_SERVICE_NAME": "image-pipeline-test",
    "POWERTOOLS_METRICS_NAMESPACE": "Test",
}


@functools.cache
def _template() -> dict:
    """template.yaml, read once (~0.2 s to parse), its tags (!Ref, !If, ...) as None."""
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def template_table() -> dict:
    """The image table's keys and indexes as template.yaml declares them (the tests' table cannot drift from it)."""
    table = copy.deepcopy(_template()["Resources"]["ImageTable"]["Properties"])
    # what a new stack gets: the entries under a condition (!If, loaded as None) are for upgrades (KeepStatusIndex)
    for listed in ("AttributeDefinitions", "GlobalSecondaryIndexes"):
        table[listed] = [entry for entry in table[listed] if entry is not None]
    return table


# moto gives each test a new default boto3 session (it patches boto3.DEFAULT_SESSION), and each new session's loader
# read botocore's service models from disk again: ~40% of the moto fixtures' time. One loader serves them all, as it
# serves every client of one session; the models it hands out are read-only to botocore.
_loaders: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string not in _loaders:
        _loaders[search_path_string] = botocore.loaders.create_loader(search_path_string)
    return _loaders[search_path_string]


botocore.session.create_loader = _shared_loader  # type: ignore[assignment]


@pytest.fixture(scope="session")
def issuer():
    """The tests' token issuer, its keys served on 127.0.0.1 (tests/tokens.py)."""
    with Issuer() as started:
        yield started


@pytest.fixture
def aws_env(monkeypatch, issuer):
    """moto-backed AWS with the stack's tables and buckets; the API trusts ``issuer``."""
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AUTH_ISSUER", issuer.issuer)
    monkeypatch.setenv("AUTH_AUDIENCE", issuer.audience)
    monkeypatch.setenv("AUTH_JWKS_URL", issuer.jwks_url)
    with mock_aws():
        ddb = boto3.resource("dynamodb")
        table = template_table()
        ddb.create_table(
            TableName=ENV["TABLE_NAME"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
        )
        usage = _template()["Resources"]["UsageTable"]["Properties"]
        ddb.create_table(
            TableName=ENV["USAGE_TABLE"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=usage["AttributeDefinitions"],
            KeySchema=usage["KeySchema"],
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=ENV["ORIGINAL_BUCKET"])
        s3.create_bucket(Bucket=ENV["PROCESSED_BUCKET"])
        s3.create_bucket(Bucket=ENV["WORK_BUCKET"])
        yield {"table": ddb.Table(ENV["TABLE_NAME"]), "usage": ddb.Table(ENV["USAGE_TABLE"]), "s3": s3}


def claimed(aws_env, image_id: str, owner: str = "alice", execution_arn: str = "arn:run"):
    """An image of ``owner``'s, claimed by ``execution_arn`` (PROCESSING): its repository."""
    from image_pipeline import keys
    from image_pipeline.records import ImageRepository

    repo = ImageRepository(aws_env["table"])
    repo.create_pending(image_id, keys.upload_key(image_id), None, None, owner, 10)
    repo.claim(image_id, keys.upload_key(image_id), "e", execution_arn)
    return repo


def signed_in(event: dict, token: str | None) -> dict:
    """``event`` (an API Gateway event) with ``Authorization: Bearer token`` (none if ``token`` is None)."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "authorization"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return {**event, "headers": headers}


@pytest.fixture
def lambda_context():
    class Context:
        function_name = "test"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:test"
        aws_request_id = "00000000-0000-0000-0000-000000000000"

        def get_remaining_time_in_millis(self) -> int:
            return 30_000

    return Context()


def load_handler(function: str):
    """Import functions/<function>/app.py under a unique module name (every handler is app.py)."""
    spec = importlib.util.spec_from_file_location(f"handler_{function}", ROOT / "functions" / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


from tests.conftest import load_event  # noqa: E402,F401  (re-exported for the unit tests)
from tests.tokens import Issuer  # noqa: E402

os.environ.setdefault("POWERTOOLS_DEV", "false")
# Powertools' logger, metrics and tracer live in image_pipeline.observability and read their settings when it is
# first imported (as at a Lambda cold start), which may be at collection time: give them the functions' settings now.
for _name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
    os.environ.setdefault(_name, ENV[_name])
