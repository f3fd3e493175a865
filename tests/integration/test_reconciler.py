"""The scheduled reconciler, deployed: an upload URL that expired unused ends EXPIRED, then disappears."""

from __future__ import annotations

import json

from tests.conftest import STATE_DIR

from .conftest import reconciler_paused


def test_expired_upload_is_reported_then_gone(client, aws, stack):
    # GIVEN an upload URL issued 30 minutes ago (we age the record) and never used
    image_id = client.request_upload(contentType="image/jpeg", size=1000).json()["imageId"]
    table = aws("dynamodb")
    old = "2000-01-01T00:00:00.000Z"
    reconciler = json.loads((STATE_DIR / "stack-image-pipeline.json").read_text())["ReconcilerFunctionName"]
    # its schedule (every fifth minute of the clock) paused, so that the run below is the one that finds the image
    with reconciler_paused(aws, stack):
        table.update_item(
            TableName=stack.table,
            Key={"imageId": {"S": image_id}},
            UpdateExpression="SET updatedAt = :t, uploadTimestamp = :t",
            ExpressionAttributeValues={":t": {"S": old}},
        )
        # WHEN the reconciler runs (we invoke it now)
        resp = aws("lambda").invoke(FunctionName=reconciler, Payload=b"{}")
    report = json.loads(resp["Payload"].read())

    # THEN the API reports EXPIRED, download says why, and after its TTL the record is gone for the app
    assert "FunctionError" not in resp, report
    assert image_id in report["expired"]
    body = client.image(image_id).json()
    assert body["status"] == "EXPIRED" and body["error"]["code"] == "UPLOAD_URL_EXPIRED"
    download = client.download(image_id)
    assert download.status_code == 422 and download.json()["status"] == "EXPIRED"
    table.update_item(
        TableName=stack.table,
        Key={"imageId": {"S": image_id}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    assert client.image(image_id).status_code == 404
