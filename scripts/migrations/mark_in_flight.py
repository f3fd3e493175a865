"""Once, when upgrading a stack deployed before the inFlight index (2026-12-03): put the images that were in flight
(PENDING, PROCESSING) under that index, so the reconciler sees them too.

    python scripts/migrations/mark_in_flight.py --table image-metadata [--region eu-west-1]

Run it after the first deploy of the upgrade (KeepStatusIndex=true, which adds the index). Records written by the
new code carry ``inFlight`` already; this sets it on the older ones whose status is still what was read (a
conditional write: an image that moved on meanwhile is left alone). Safe to run again. Prints how many it marked.
"""

from __future__ import annotations

import argparse

import boto3
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

IN_FLIGHT_STATUSES = ("PENDING", "PROCESSING")


def mark(table) -> int:
    marked = 0
    kwargs = {
        "FilterExpression": Attr("status").is_in(list(IN_FLIGHT_STATUSES)) & Attr("inFlight").not_exists(),
        "ProjectionExpression": "imageId, #s",
        "ExpressionAttributeNames": {"#s": "status"},
    }
    while True:
        page = table.scan(**kwargs)
        for item in page["Items"]:
            try:
                table.update_item(
                    Key={"imageId": item["imageId"]},
                    UpdateExpression="SET inFlight = :s",
                    ConditionExpression=Attr("status").eq(item["status"]) & Attr("inFlight").not_exists(),
                    ExpressionAttributeValues={":s": item["status"]},
                )
                marked += 1
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        if "LastEvaluatedKey" not in page:
            return marked
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="the stack's ImageTableName")
    parser.add_argument("--region")
    args = parser.parse_args()
    table = boto3.resource("dynamodb", region_name=args.region).Table(args.table)
    print(f"marked {mark(table)} in-flight image(s)")


if __name__ == "__main__":
    main()
