"""Deleting an image's objects: every version of its original and every rendition."""

from __future__ import annotations

from image_pipeline import keys
from image_pipeline.aws import transient_errors


def delete_original(s3, bucket: str, key: str) -> int:
    """Delete every version (and delete marker) of ``key`` in the versioned originals bucket; returns how many."""
    versions: list[dict[str, str]] = []
    with transient_errors():
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if v["Key"] == key:  # the prefix also matches longer keys
                    versions.append({"Key": key, "VersionId": v["VersionId"]})
    _delete(s3, bucket, versions)
    return len(versions)


def delete_renditions(s3, bucket: str, image_id: str) -> list[str]:
    """Delete the image's renditions (``renditions/{id}.*``, ``renditions/{id}/…``); returns the deleted keys. Ids
    are fixed-length UUIDs: the prefix holds this image only."""
    found = rendition_keys(s3, bucket, image_id)
    delete_keys(s3, bucket, found)
    return found


def rendition_keys(s3, bucket: str, image_id: str) -> list[str]:
    """Every rendition of the image, of every version."""
    return listed(s3, bucket, keys.rendition_prefix(image_id))


def listed(s3, bucket: str, prefix: str) -> list[str]:
    with transient_errors():
        return [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        ]


def delete_keys(s3, bucket: str, object_keys: list[str]) -> list[str]:
    """Delete the keys; returns those S3 did not delete (DeleteObjects answers per key)."""
    return _delete(s3, bucket, [{"Key": k} for k in object_keys])


def _delete(s3, bucket: str, objects: list[dict[str, str]]) -> list[str]:
    failed: list[str] = []
    for start in range(0, len(objects), 1000):
        with transient_errors():
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True})
        failed += [e["Key"] for e in answer.get("Errors", [])]
    return failed
