"""Give an owner to the image records made before images had owners (the upgrade to sign-in).

Such records have no ``owner``: only an admin sees them (GET /images?all=true). This assigns every one of them (not
the tombstones of deleted images) to one owner, who then sees and deletes them as their own:

  python scripts/migrations/assign_owner.py --stack image-pipeline --user alice         # a user of the stack's pool
  python scripts/migrations/assign_owner.py --stack image-pipeline --owner SUB          # any issuer's subject id
  ... --dry-run                                                                         # count, change nothing

With the AWS credentials of an operator (the table and, for --user, cognito-idp:AdminGetUser). Each write is
conditional on the record still having no owner, so it is safe to run again, and while the API serves. The bytes of
these images are not counted against the owner's quota (their size was never recorded).
"""

from __future__ import annotations

import argparse
import sys

import boto3
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError


def owner_of_user(idp, pool: str, username: str) -> str:
    """The ``sub`` of a user of the pool: what the API records as the owner of what the user uploads."""
    attributes = idp.admin_get_user(UserPoolId=pool, Username=username)["UserAttributes"]
    return next(a["Value"] for a in attributes if a["Name"] == "sub")


def assign(table, owner: str, dry_run: bool = False) -> tuple[int, int]:
    """(records assigned, records found without an owner): every image record but tombstones, a page at a time."""
    assigned = found = 0
    kwargs: dict = {
        "FilterExpression": Attr("owner").not_exists() & Attr("status").ne("DELETED"),
        "ProjectionExpression": "imageId",
    }
    while True:
        page = table.scan(**kwargs)
        for item in page["Items"]:
            found += 1
            if dry_run:
                continue
            try:
                table.update_item(
                    Key={"imageId": item["imageId"]},
                    UpdateExpression="SET #o = :o, listedOwner = :o",
                    ConditionExpression=Attr("owner").not_exists() & Attr("status").ne("DELETED"),
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":o": owner},
                )
                assigned += 1
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConditionalCheckFailedException":  # deleted or owned meanwhile
                    raise
        if "LastEvaluatedKey" not in page:
            return assigned, found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="image-pipeline")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user of the stack's Cognito pool (its sub becomes the owner)")
    who.add_argument("--owner", help="the owner id itself: the sub claim of the user's tokens")
    parser.add_argument("--dry-run", action="store_true", help="count the records without an owner; change nothing")
    args = parser.parse_args()
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
    }
    owner = args.owner
    if args.user:
        if "UserPoolId" not in outputs:
            print("the stack has no pool of its own (AuthIssuer): give --owner SUB", file=sys.stderr)
            return 2
        owner = owner_of_user(boto3.client("cognito-idp"), outputs["UserPoolId"], args.user)
    table = boto3.resource("dynamodb").Table(outputs["ImageTableName"])
    assigned, found = assign(table, owner, args.dry_run)
    if args.dry_run:
        print(f"{found} image records have no owner")
    else:
        print(f"{assigned} of {found} image records without an owner now belong to {owner}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
