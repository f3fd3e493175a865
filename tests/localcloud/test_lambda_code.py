"""Lambda code and layers given as S3 objects (what CloudFormation and `sam package` give): stored as LocalStack stores
them, with Lambda's hash, size and errors; the local cloud copies the object within S3 instead of uploading it again
(localcloud/patches/lambda_.py, copy_lambda_code_within_s3)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from .conftest import FUNCTIONS, zip_dir


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_code_and_layer_from_s3_keep_their_hash_size_and_bytes_after_the_object_is_gone(aws, bucket, lambda_role):
    s3, lam = aws("s3"), aws("lambda")
    code = zip_dir({"behaviours.py": FUNCTIONS / "behaviours.py"})
    layer_zip = zip_dir({"python/textlib.py": FUNCTIONS / "layer" / "textlib.py"})
    s3.put_object(Bucket=bucket, Key="code.zip", Body=code)
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=layer_zip)

    layer_name = f"lc-code-layer-{uuid.uuid4().hex[:8]}"
    layer = lam.publish_layer_version(
        LayerName=layer_name, Content={"S3Bucket": bucket, "S3Key": "layer.zip"}, CompatibleRuntimes=["python3.11"]
    )
    assert layer["Content"]["CodeSha256"] == sha256_b64(layer_zip)
    assert layer["Content"]["CodeSize"] == len(layer_zip)
    name = f"lc-code-{uuid.uuid4().hex[:8]}"
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=lambda_role,
        Handler="behaviours.handler",
        Code={"S3Bucket": bucket, "S3Key": "code.zip"},
        Layers=[layer["LayerVersionArn"]],
    )
    try:
        assert created["CodeSha256"] == sha256_b64(code) and created["CodeSize"] == len(code)
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        # the stored copies are the function's and the layer's own: the objects they came from can go
        s3.delete_object(Bucket=bucket, Key="code.zip")
        s3.delete_object(Bucket=bucket, Key="layer.zip")
        with urllib.request.urlopen(lam.get_function(FunctionName=name)["Code"]["Location"], timeout=30) as resp:
            assert resp.read() == code
        location = lam.get_layer_version(LayerName=layer_name, VersionNumber=layer["Version"])["Content"]["Location"]
        with urllib.request.urlopen(location, timeout=30) as resp:
            assert resp.read() == layer_zip
        result = lam.invoke(FunctionName=name, Payload=b'{"action": "echo"}')
        assert "FunctionError" not in result, result["Payload"].read()
        assert json.loads(result["Payload"].read())["pid"] > 0
    finally:
        lam.delete_function(FunctionName=name)
        lam.delete_layer_version(LayerName=layer_name, VersionNumber=layer["Version"])


def test_an_s3_object_that_is_not_a_zip_or_not_there_is_refused_as_lambda_refuses_it(aws, bucket, lambda_role):
    s3, lam = aws("s3"), aws("lambda")
    s3.put_object(Bucket=bucket, Key="not-a-zip", Body=b"just text")
    with pytest.raises(ClientError) as not_zip:
        lam.publish_layer_version(LayerName="lc-not-a-zip", Content={"S3Bucket": bucket, "S3Key": "not-a-zip"})
    assert not_zip.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "Could not unzip" in not_zip.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        lam.create_function(
            FunctionName=f"lc-missing-{uuid.uuid4().hex[:8]}",
            Runtime="python3.11",
            Role=lambda_role,
            Handler="behaviours.handler",
            Code={"S3Bucket": bucket, "S3Key": "no-such-key.zip"},
        )
    assert missing.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "NoSuchKey" in missing.value.response["Error"]["Message"]
