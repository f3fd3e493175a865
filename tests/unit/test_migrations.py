"""scripts/migrations/: the upgrades to owners and to the in-flight index, against moto."""

from __future__ import annotations

import importlib.util

from image_pipeline import api, keys
from image_pipeline.auth import Caller
from image_pipeline.records import ImageRepository

from tests.unit.conftest import ROOT
from tests.unit.test_records import in_flight


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "migrations" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_records_made_before_owners_are_assigned_once_and_then_listed_as_the_owners(aws_env):
    # GIVEN two records of before (no owner: uploaded straight to the bucket), one deleted since, and one of bob's
    migration, table = load("assign_owner"), aws_env["table"]
    repo = ImageRepository(table)
    old = [keys.new_image_id() for _ in range(3)]
    for image_id in old:
        repo.claim(image_id, keys.upload_key(image_id), "e", f"arn:{image_id}")
    repo.delete(old[2], None)
    bobs = keys.new_image_id()
    repo.create_pending(bobs, keys.upload_key(bobs), None, None, "bob", 10)
    assert api.list_images(repo, Caller("alice"), None, None, None)["images"] == []

    # WHEN the migration runs (a dry run first: nothing changes)
    assert migration.assign(table, "alice", dry_run=True) == (0, 2)
    assert migration.assign(table, "alice") == (2, 2)

    # THEN alice lists and owns the two, bob keeps his, the tombstone stays ownerless; a second run finds nothing
    listed = {i["imageId"] for i in api.list_images(repo, Caller("alice"), None, None, None)["images"]}
    assert listed == set(old[:2])
    assert repo.get(bobs)["owner"] == "bob" and "owner" not in repo.get(old[2])
    assert migration.assign(table, "alice") == (0, 0)


def test_a_user_of_the_pool_is_named_by_the_sub_of_their_tokens(aws_env):
    import boto3

    idp = boto3.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    created = idp.admin_create_user(UserPoolId=pool, Username="alice", MessageAction="SUPPRESS")["User"]
    sub = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
    assert load("assign_owner").owner_of_user(idp, pool, "alice") == sub


def test_an_upgraded_stacks_in_flight_images_are_put_under_the_index_once(aws_env):
    repo, mark_in_flight = ImageRepository(aws_env["table"]), load("mark_in_flight")

    for image_id, status in (("old-p", "PENDING"), ("old-r", "PROCESSING"), ("old-d", "PROCESSED")):
        repo.table.put_item(Item={"imageId": image_id, "status": status, "updatedAt": "2026-12-01T00:00:00.000Z"})
    repo.create_pending("new-p", "uploads/new-p", None, None, "alice", 10)  # written by the new code: marked already

    assert mark_in_flight.mark(repo.table) == 2
    assert in_flight(repo, "PENDING") == ["new-p", "old-p"] and in_flight(repo, "PROCESSING") == ["old-r"]
    assert mark_in_flight.mark(repo.table) == 0  # again: nothing left
