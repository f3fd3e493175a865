"""GET /images (newest first, cursor pages) and DELETE /images/{id} (tombstone, every object gone, idempotent), and
how the workflow treats an image deleted while it runs; against moto."""

from __future__ import annotations

import json

import pytest
from image_pipeline import api, keys, records, workflow
from image_pipeline.auth import Caller
from image_pipeline.config import Settings
from image_pipeline.errors import ApiError, ImageNotOwnedError
from image_pipeline.quota import Limits, Quotas
from image_pipeline.records import DELETED, ImageRepository

from tests.unit.conftest import load_event, load_handler, signed_in

ALICE = Caller("alice")
ADMIN = Caller("root", admin=True)


@pytest.fixture
def quotas(aws_env):
    return Quotas(aws_env["usage"], Limits(100, 1000, 10**9))


@pytest.fixture
def world(aws_env):
    s3 = aws_env["s3"]
    settings = Settings.from_env()
    s3.put_bucket_versioning(Bucket=settings.original_bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3, settings, ImageRepository(aws_env["table"])


def test_images_are_listed_newest_first_in_pages_with_a_cursor(world):
    _, _, repo = world
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(7)]
    for image_id in ids:
        repo.create_pending(image_id, keys.upload_key(image_id), None, None, "alice", 10)
    seen, cursor = [], None
    while True:
        page = api.list_images(repo, ALICE, None, "3", cursor)
        assert len(page["images"]) <= 3
        seen += [image["imageId"] for image in page["images"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]  # created in order: newest first, each once

    repo.claim(ids[2], keys.upload_key(ids[2]), "e", "arn:x")
    only = api.list_images(repo, ALICE, "PROCESSING", None, None)
    assert [i["imageId"] for i in only["images"]] == [ids[2]] and only["cursor"] is None
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:run-1"
    repo.claim(ids[3], keys.upload_key(ids[3]), "e", arn)
    listed = api.list_images(repo, ALICE, "PROCESSING", None, None)["images"]
    assert [i["imageId"] for i in listed] == [ids[3], ids[2]]  # the last changed first
    assert listed[0]["execution"] == "run-1" and listed[0]["executions"] == ["run-1"]  # names: no account id


@pytest.mark.parametrize(
    ("status", "limit", "cursor", "code"),
    [
        ("DONE", None, None, "INVALID_STATUS"),
        ("DELETED", None, None, "INVALID_STATUS"),
        (None, "0", None, "INVALID_LIMIT"),
        (None, "101", None, "INVALID_LIMIT"),
        (None, "ten", None, "INVALID_LIMIT"),
        (None, None, "not a cursor", "INVALID_CURSOR"),
        (None, None, "eyJpbWFnZUlkIjogMX0", "INVALID_CURSOR"),  # {"imageId": 1}
    ],
)
def test_bad_listing_requests_are_400_with_a_code(world, status, limit, cursor, code):
    with pytest.raises(ApiError) as e:
        api.list_images(world[2], ALICE, status, limit, cursor)
    assert e.value.http_status == 400 and e.value.code == code


def test_a_cursor_of_one_listing_is_refused_by_another(world):
    _, _, repo = world
    for i in range(3):
        image_id = f"00000000-0000-4000-8000-{i:012d}"
        repo.create_pending(image_id, "k", None, None, "alice", 10)
        repo.claim(image_id, "k", "e", f"arn:{i}")
    cursor = api.list_images(repo, ALICE, "PROCESSING", "1", None)["cursor"]
    with pytest.raises(ApiError, match="cursor"):
        api.list_images(repo, ALICE, None, "1", cursor)
    with pytest.raises(ApiError, match="cursor"):
        api.list_images(repo, ALICE, "PENDING", "1", cursor)
    # nor is one owner's cursor any use to another owner, or to an admin's listing of everyone
    with pytest.raises(ApiError, match="cursor"):
        api.list_images(repo, Caller("bob"), "PROCESSING", "1", cursor)
    with pytest.raises(ApiError, match="cursor"):
        api.list_images(repo, ADMIN, "PROCESSING", "1", cursor, everyone="true")


def a_processed_image(s3, settings, repo) -> str:
    """An image with two versions of its original, renditions and a PROCESSED record."""
    image_id = keys.new_image_id()
    key = keys.upload_key(image_id)
    repo.create_pending(image_id, key, "a.jpg", "image/jpeg", "alice", 10)
    s3.put_object(Bucket=settings.original_bucket, Key=key, Body=b"first")
    s3.put_object(Bucket=settings.original_bucket, Key=key, Body=b"second")
    repo.claim(image_id, key, "e", "arn:run")
    for name in (keys.rendition_key(image_id, "v1", 400, "avif"), keys.rendition_key(image_id, "v1", None, "png")):
        s3.put_object(Bucket=settings.processed_bucket, Key=name, Body=b"r")
    repo.mark_processed(image_id, "arn:run", {"processed": {"key": keys.rendition_key(image_id, "v1", None, "png")}})
    return image_id


def objects_of(s3, settings, image_id) -> list[str]:
    found = []
    versions = s3.list_object_versions(Bucket=settings.original_bucket, Prefix=keys.upload_key(image_id))
    found += [v["Key"] for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])]
    for prefix in (f"renditions/{image_id}",):
        found += [
            o["Key"] for o in s3.list_objects_v2(Bucket=settings.processed_bucket, Prefix=prefix).get("Contents", [])
        ]
    return found


def test_delete_removes_every_version_every_rendition_and_the_record_once(world, quotas):
    s3, settings, repo = world
    image_id, other = a_processed_image(s3, settings, repo), a_processed_image(s3, settings, repo)
    published: list[tuple[str, dict]] = []
    publish = lambda status, detail: published.append((status, detail))  # noqa: E731

    api.delete_image(s3, repo, quotas, settings, ALICE, image_id, publish)
    assert objects_of(s3, settings, image_id) == []
    assert len(objects_of(s3, settings, other)) == 4  # the other image is untouched
    with pytest.raises(ApiError) as e:
        api.get_image(repo, ALICE, image_id)
    assert e.value.http_status == 404
    assert [i["imageId"] for i in api.list_images(repo, ALICE, None, None, None)["images"]] == [other]
    assert published == [
        (DELETED, {"imageId": image_id, "owner": "alice", "status": DELETED, "previousStatus": "PROCESSED"})
    ]

    api.delete_image(s3, repo, quotas, settings, ALICE, image_id, publish)  # again: the same answer, no second event
    assert len(published) == 1
    with pytest.raises(ApiError) as e:
        api.delete_image(s3, repo, quotas, settings, ALICE, keys.new_image_id(), publish)
    assert e.value.http_status == 404 and e.value.code == "NOT_FOUND"


def test_an_execution_of_a_deleted_image_writes_nothing_and_removes_what_it_stored(world, quotas):
    s3, settings, repo = world
    image_id = keys.new_image_id()
    key = keys.upload_key(image_id)
    repo.create_pending(image_id, key, None, None, "alice", 10)
    s3.put_object(Bucket=settings.original_bucket, Key=key, Body=b"x")
    repo.claim(image_id, key, "e", "arn:run")
    api.delete_image(s3, repo, quotas, settings, ALICE, image_id, None)
    # the execution goes on: it stores a rendition after the delete cleaned up, then cannot mark the image
    s3.put_object(Bucket=settings.processed_bucket, Key=keys.rendition_key(image_id, "v1", 200, "jpg"), Body=b"r")
    with pytest.raises(ImageNotOwnedError):
        workflow.mark_processed(
            s3, repo, settings, {"imageId": image_id}, {"processed": {"key": "k"}, "renditions": []}, "arn:run"
        )
    failed = {"image": {"imageId": image_id, "bucket": settings.original_bucket, "key": key}}
    failed["error"] = {"Error": "ImageNotOwnedError", "Cause": "{}"}
    with pytest.raises(ImageNotOwnedError):
        workflow.record_failure(s3, repo, settings, failed, "arn:run")
    assert objects_of(s3, settings, image_id) == []
    assert repo.get(image_id)["status"] == DELETED  # not resurrected


def test_an_upload_arriving_after_the_delete_is_refused_and_removed(world, quotas):
    s3, settings, repo = world
    image_id = keys.new_image_id()
    key = keys.upload_key(image_id)
    repo.create_pending(image_id, key, None, None, "alice", 10)
    api.delete_image(s3, repo, quotas, settings, ALICE, image_id, None)
    s3.put_object(Bucket=settings.original_bucket, Key=key, Body=b"late bytes")  # the URL was still valid
    event = {"detail": {"bucket": {"name": settings.original_bucket}, "object": {"key": key, "etag": "e"}}}
    result = workflow.validate(s3, repo, settings, event, "arn:late")
    assert result["duplicate"] and result["status"] == DELETED
    assert objects_of(s3, settings, image_id) == [] and repo.get(image_id)["status"] == DELETED


def test_the_handler_routes_list_and_delete(world, lambda_context, issuer):
    api_handler = load_handler("api")
    token = issuer.token("alice")

    class handler:  # noqa: N801 - the handler, signed in as alice
        @staticmethod
        def lambda_handler(event, context):
            return api_handler.lambda_handler(signed_in(event, token), context)

    created = json.loads(handler.lambda_handler(load_event("api_upload"), lambda_context)["body"])
    listing = load_event("api_get_image")
    listing.update(resource="/images", path="/images", pathParameters=None)
    listing["queryStringParameters"] = {"limit": "5"}
    listing["multiValueQueryStringParameters"] = {"limit": ["5"]}
    listing["requestContext"].update(resourcePath="/images", path="/prod/images")
    body = json.loads(handler.lambda_handler(listing, lambda_context)["body"])
    assert [i["imageId"] for i in body["images"]] == [created["imageId"]] and body["cursor"] is None

    delete = load_event("api_get_image")
    delete.update(httpMethod="DELETE", path=f"/images/{created['imageId']}")
    delete["pathParameters"] = {"imageId": created["imageId"]}
    delete["requestContext"]["httpMethod"] = "DELETE"
    assert handler.lambda_handler(delete, lambda_context)["statusCode"] == 204
    assert handler.lambda_handler(delete, lambda_context)["statusCode"] == 204
    again = json.loads(handler.lambda_handler(listing, lambda_context)["body"])
    assert again["images"] == []


def test_a_listing_by_status_reads_a_bounded_amount_and_pages_on_to_every_match(world, monkeypatch):
    _, _, repo = world
    monkeypatch.setattr(records, "FILTERED_READ_BUDGET", 4)  # a request reads at most 4 index entries
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(23)]
    for image_id in ids:
        repo.claim(image_id, keys.upload_key(image_id), "e", f"arn:{image_id}")  # uploaded in this order
    failed = ids[1::5]  # 1, 6, 11, 16, 21
    for image_id in failed:
        repo.mark_failed(image_id, f"arn:{image_id}", "FAILED", "PROCESSING_FAILED", "gave up")
    seen, cursor, pages = [], None, 0
    while True:
        page = api.list_images(repo, ADMIN, "FAILED", "2", cursor, everyone="true")  # no owner: uploaded directly
        pages += 1
        assert len(page["images"]) <= 2
        seen += [image["imageId"] for image in page["images"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == failed[::-1]  # newest upload first, each once, nothing else
    assert pages >= 23 / 4  # the budget held: no request read more than 4 of the 23 entries
