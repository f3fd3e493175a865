"""The status model: every transition is a conditional write; duplicates change nothing."""

from __future__ import annotations

import pytest
from image_pipeline.api import to_api
from image_pipeline.auth import Caller
from image_pipeline.errors import ImageNotOwnedError
from image_pipeline.records import ImageRepository

ARN_A = "arn:aws:states:us-east-1:0:execution:sm:a"
ARN_B = "arn:aws:states:us-east-1:0:execution:sm:b"


@pytest.fixture
def repo(aws_env):
    return ImageRepository(aws_env["table"])


def test_create_pending_refuses_an_existing_id(repo):
    repo.create_pending("id-1", "uploads/id-1", "a.jpg", "image/jpeg", "alice", 10)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        repo.create_pending("id-1", "uploads/id-1", None, None, "alice", 10)
    assert repo.get("id-1")["status"] == "PENDING"


def test_claim_moves_pending_to_processing_once(repo):
    repo.create_pending("id-2", "uploads/id-2", None, None, "alice", 10)
    first = repo.claim("id-2", "uploads/id-2", "etag", ARN_A)
    second = repo.claim("id-2", "uploads/id-2", "etag", ARN_B)
    assert first.claimed and first.record["executionArn"] == ARN_A
    assert not second.claimed and second.status == "PROCESSING"
    assert repo.get("id-2")["executionArn"] == ARN_A


def test_claim_is_reentrant_for_the_same_execution(repo):
    repo.claim("id-3", "k", "e", ARN_A)
    assert repo.claim("id-3", "k", "e", ARN_A).claimed


def test_claim_creates_the_record_of_a_direct_put(repo):
    claim = repo.claim("id-4", "samples/x.jpg", "e", ARN_A)
    assert claim.claimed and repo.get("id-4")["uploadTimestamp"]


@pytest.mark.parametrize(
    ("claimant", "reprocess"),
    [(ARN_B, False), (ARN_A, False), (ARN_A, True)],
    ids=["duplicate delivery", "late first step of the same execution", "late step of a reprocess execution"],
)
def test_a_processed_image_is_not_claimed_again(repo, claimant, reprocess):
    # a late step: its task timed out and was retried, the execution finished, then the first run arrives
    repo.claim("id-5", "k", "e", ARN_A)
    repo.mark_processed("id-5", ARN_A, {"processed": {"key": "renditions/id-5.jpg"}})
    before = repo.get("id-5")
    claim = repo.claim("id-5", "k", "e", claimant, reprocess=reprocess)
    assert not claim.claimed and claim.status == "PROCESSED"
    assert repo.get("id-5") == before


def test_reprocess_may_claim_a_terminal_image(repo):
    repo.claim("id-6", "k", "e", ARN_A)
    repo.mark_failed("id-6", ARN_A, "FAILED", "TransientAWSError", "boom")
    claim = repo.claim("id-6", "k", "e", ARN_B, reprocess=True)
    assert claim.claimed and "error" not in claim.record


def test_only_the_owner_writes_the_outcome(repo):
    repo.claim("id-7", "k", "e", ARN_A)
    with pytest.raises(ImageNotOwnedError):
        repo.mark_processed("id-7", ARN_B, {"processed": {"key": "x"}})
    with pytest.raises(ImageNotOwnedError):
        repo.mark_failed("id-7", ARN_B, "FAILED", "X", "y")
    assert repo.get("id-7")["status"] == "PROCESSING"


def test_a_processed_image_never_regresses_to_failed(repo):
    repo.claim("id-8", "k", "e", ARN_A)
    repo.mark_processed("id-8", ARN_A, {"processed": {"key": "x"}})
    with pytest.raises(ImageNotOwnedError):
        repo.mark_failed("id-8", ARN_A, "FAILED", "X", "late failure")
    assert repo.get("id-8")["status"] == "PROCESSED"


def test_to_api_shape(repo):
    repo.create_pending("id-9", "uploads/id-9", None, None, "alice", 10)
    body = to_api(repo.get("id-9"), Caller("alice"))
    assert set(body) == {
        "imageId",
        "status",
        "uploadTimestamp",
        "updatedAt",
        "original",
        "processed",
        "renditions",
        "profiles",
        "placeholder",
        "focalPoint",
        "error",
        "reprocessError",
        "execution",
        "executions",
        "filename",
    }
    assert body["status"] == "PENDING" and body["original"] is None and body["error"] is None
    assert body["execution"] is None and body["executions"] == []
    assert body["renditions"] == [] and body["placeholder"] is None  # until PROCESSED


def test_mark_processed_is_idempotent_for_its_execution_only(repo):
    repo.claim("id-9", "k", "e", ARN_A)
    repo.mark_processed("id-9", ARN_A, {"processed": {"key": "renditions/id-9.jpg"}})
    assert repo.mark_processed("id-9", ARN_A, {"processed": {"key": "renditions/id-9.jpg"}})["status"] == "PROCESSED"
    with pytest.raises(ImageNotOwnedError):
        repo.mark_processed("id-9", ARN_B, {"processed": {"key": "renditions/id-9.jpg"}})


def test_a_late_upload_claims_its_expired_record_and_clears_the_ttl(repo):
    # GIVEN an upload URL the reconciler declared EXPIRED (with a TTL), whose slow PUT then lands
    repo.create_pending("id-10", "uploads/id-10", None, None, "alice", 10)
    repo.table.update_item(
        Key={"imageId": "id-10"},
        UpdateExpression="SET #s = :e, expiresAt = :ttl",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": "EXPIRED", ":ttl": 2_000_000_000},
    )
    # WHEN its S3 event's execution claims it THEN it is processed like any upload, and no longer expires
    claim = repo.claim("id-10", "uploads/id-10", "e", ARN_A)
    assert claim.claimed and claim.record["status"] == "PROCESSING" and "expiresAt" not in claim.record
    assert repo.mark_processed("id-10", ARN_A, {"processed": {"key": "renditions/id-10.jpg"}})["status"] == "PROCESSED"


@pytest.mark.parametrize("status", ["PENDING", None], ids=["pending upload", "direct put, no record yet"])
def test_an_execution_that_never_claimed_the_image_writes_no_failure(repo, status):
    # e.g. a duplicate event's execution that was throttled out before its claim, while the image waits
    if status:
        repo.create_pending("id-11", "uploads/id-11", None, None, "alice", 10)
    with pytest.raises(ImageNotOwnedError):
        repo.mark_failed("id-11", ARN_B, "FAILED", "PROCESSING_FAILED", "gave up")
    assert (repo.get("id-11") or {}).get("status") == status
    assert repo.claim("id-11", "uploads/id-11", "e", ARN_A).claimed  # the image's own execution still can


def test_mark_failed_is_idempotent_for_its_execution(repo):
    repo.claim("id-12", "k", "e", ARN_A)
    repo.mark_failed("id-12", ARN_A, "REJECTED", "CORRUPT_IMAGE", "broken")
    assert repo.mark_failed("id-12", ARN_A, "REJECTED", "CORRUPT_IMAGE", "broken")["status"] == "REJECTED"


def in_flight(repo, status: str) -> list[str]:
    """The image ids the sparse inFlight index holds under ``status`` (what the reconciler reads)."""
    items = repo.table.query(
        IndexName="inFlight", KeyConditionExpression="inFlight = :s", ExpressionAttributeValues={":s": status}
    )["Items"]
    return sorted(i["imageId"] for i in items)


def test_only_images_in_flight_are_in_the_in_flight_index(repo):
    for image_id in ("f-done", "f-failed", "f-expired", "f-deleted", "f-busy", "f-new"):
        repo.create_pending(image_id, f"uploads/{image_id}", None, None, "alice", 10)
    assert len(in_flight(repo, "PENDING")) == 6
    for image_id in ("f-done", "f-failed", "f-busy", "f-deleted"):
        repo.claim(image_id, f"uploads/{image_id}", "e", ARN_A)
    original = {"key": "uploads/f-done", "bytes": 10, "format": "JPEG", "width": 4, "height": 3}
    done = repo.mark_processed("f-done", ARN_A, {"processed": {"key": "renditions/f-done.jpg"}}, original)
    failed = repo.mark_failed("f-failed", ARN_A, "FAILED", "PROCESSING_FAILED", "gave up", {**original, "key": "k"})
    repo.transition_if_unchanged(repo.get("f-expired"), "EXPIRED", "UPLOAD_URL_EXPIRED", "expired")
    repo.delete("f-deleted", None)

    assert in_flight(repo, "PENDING") == ["f-new"] and in_flight(repo, "PROCESSING") == ["f-busy"]
    assert done["original"] == original and failed["original"]["key"] == "k"  # recorded with the outcome
    assert "inFlight" not in done and repo.get("f-expired")["status"] == "EXPIRED"
    repo.claim("f-done", "uploads/f-done", "e", ARN_B, reprocess=True)  # in flight again while reprocessed
    assert in_flight(repo, "PROCESSING") == ["f-busy", "f-done"]


def test_a_failed_reprocess_keeps_the_image_processed_on_what_it_served(repo):
    repo.claim("id-r", "k", "e", ARN_A)
    repo.mark_processed("id-r", ARN_A, {"processed": {"key": "v1"}, "version": "v1"})
    repo.claim("id-r", "k", "e", ARN_B, reprocess=True)
    kept = repo.mark_reprocess_failed("id-r", ARN_B, "TIMEOUT", "processing took too long", "800/jpeg/800")
    assert kept["status"] == "PROCESSED" and kept["processed"] == {"key": "v1"} and kept["version"] == "v1"
    assert kept["reprocessError"] == {
        "code": "TIMEOUT",
        "message": "processing took too long",
        "renditionSet": "800/jpeg/800",
    }
    assert "inFlight" not in kept
    assert repo.mark_reprocess_failed("id-r", ARN_B, "TIMEOUT", "again", "s")["status"] == "PROCESSED"  # a retry
    # the next reprocess that succeeds clears it
    repo.claim("id-r", "k", "e", "arn:c", reprocess=True)
    assert "reprocessError" not in repo.get("id-r")
    assert "reprocessError" not in repo.mark_processed("id-r", "arn:c", {"processed": {"key": "v3"}, "version": "v3"})


def test_a_failed_reprocess_of_an_image_that_never_had_renditions_is_a_failure(repo):
    repo.claim("id-n", "k", "e", ARN_A)
    repo.mark_failed("id-n", ARN_A, "FAILED", "X", "y")
    repo.claim("id-n", "k", "e", ARN_B, reprocess=True)
    assert repo.mark_reprocess_failed("id-n", ARN_B, "X", "y", "s") is None  # then mark_failed
    with pytest.raises(ImageNotOwnedError):
        repo.mark_reprocess_failed("id-n", "arn:other", "X", "y", "s")


def test_a_reprocess_that_failed_after_its_switch_is_not_recorded_as_failed(repo):
    repo.claim("id-s", "k", "e", ARN_A)
    repo.mark_processed("id-s", ARN_A, {"processed": {"key": "v1"}, "version": "v1"})
    repo.claim("id-s", "k", "e", ARN_B, reprocess=True)
    repo.mark_processed("id-s", ARN_B, {"processed": {"key": "v2"}, "version": "v2"})  # switched, then failed
    with pytest.raises(ImageNotOwnedError):
        repo.mark_reprocess_failed("id-s", ARN_B, "SERVICE_UNAVAILABLE", "retiring failed", "s")
    assert "reprocessError" not in repo.get("id-s") and repo.get("id-s")["version"] == "v2"


def test_a_late_switch_of_an_execution_the_reconciler_gave_up_on_is_refused(repo):
    # GIVEN a reprocess (ARN_B) of a PROCESSED image that ended without a word: the reconciler put the image back
    # on its earlier renditions (PROCESSED, still naming ARN_B as its last execution)
    repo.claim("id-late", "k", "e", ARN_A)
    repo.mark_processed("id-late", ARN_A, {"processed": {"key": "v1"}, "version": "v1"})
    repo.claim("id-late", "k", "e", ARN_B, reprocess=True)
    item = repo.get("id-late")
    assert repo.keep_serving_if_unchanged(item, "EXECUTION_ENDED_WITHOUT_STATUS", "m", "set") is not None
    # WHEN ARN_B's Mark processed arrives late, THEN it may not switch the record to a version since discarded
    with pytest.raises(ImageNotOwnedError):
        repo.mark_processed("id-late", ARN_B, {"processed": {"key": "v2"}, "version": "v2"})
    assert repo.get("id-late")["processed"] == {"key": "v1"}
    # while a retry of a switch that landed still answers as before
    repo.claim("id-late", "k", "e", "arn:c", reprocess=True)
    repo.mark_processed("id-late", "arn:c", {"processed": {"key": "v3"}, "version": "v3"})
    assert (
        repo.mark_processed("id-late", "arn:c", {"processed": {"key": "v3"}, "version": "v3"})["status"] == "PROCESSED"
    )
