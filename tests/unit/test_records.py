"""The status model: every transition is a conditional write; duplicates change nothing."""

from __future__ import annotations

import pytest
from image_pipeline.errors import ImageNotOwnedError
from image_pipeline.records import ImageRepository, to_api

ARN_A = "arn:aws:states:us-east-1:0:execution:sm:a"
ARN_B = "arn:aws:states:us-east-1:0:execution:sm:b"


@pytest.fixture
def repo(aws_env):
    return ImageRepository(aws_env["table"])


def test_create_pending_refuses_an_existing_id(repo):
    repo.create_pending("id-1", "uploads/id-1", "a.jpg", "image/jpeg")
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        repo.create_pending("id-1", "uploads/id-1", None, None)
    assert repo.get("id-1")["status"] == "PENDING"


def test_claim_moves_pending_to_processing_once(repo):
    repo.create_pending("id-2", "uploads/id-2", None, None)
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
    repo.mark_processed("id-5", ARN_A, {"key": "renditions/id-5.jpg"})
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
        repo.mark_processed("id-7", ARN_B, {"key": "x"})
    with pytest.raises(ImageNotOwnedError):
        repo.mark_failed("id-7", ARN_B, "FAILED", "X", "y")
    assert repo.get("id-7")["status"] == "PROCESSING"


def test_a_processed_image_never_regresses_to_failed(repo):
    repo.claim("id-8", "k", "e", ARN_A)
    repo.mark_processed("id-8", ARN_A, {"key": "x"})
    with pytest.raises(ImageNotOwnedError):
        repo.mark_failed("id-8", ARN_A, "FAILED", "X", "late failure")
    assert repo.get("id-8")["status"] == "PROCESSED"


def test_to_api_shape(repo):
    repo.create_pending("id-9", "uploads/id-9", None, None)
    body = to_api(repo.get("id-9"))
    assert set(body) == {"imageId", "status", "uploadTimestamp", "updatedAt", "original", "processed", "error"}
    assert body["status"] == "PENDING" and body["original"] is None and body["error"] is None


def test_mark_processed_is_idempotent_for_its_execution_only(repo):
    repo.claim("id-9", "k", "e", ARN_A)
    repo.mark_processed("id-9", ARN_A, {"key": "renditions/id-9.jpg"})
    assert repo.mark_processed("id-9", ARN_A, {"key": "renditions/id-9.jpg"})["status"] == "PROCESSED"
    with pytest.raises(ImageNotOwnedError):
        repo.mark_processed("id-9", ARN_B, {"key": "renditions/id-9.jpg"})
