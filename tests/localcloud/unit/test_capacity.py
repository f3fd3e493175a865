"""The write capacity units the local cloud's meter counts for one DynamoDB write (localcloud/capacity.py): the
table's from the larger item image, and each global secondary index's from what the write changed in it."""

from __future__ import annotations

from localcloud.capacity import write_units

KEYS = ["imageId"]
IN_FLIGHT = {
    "name": "inFlight",
    "keys": ["inFlight", "updatedAt"],
    "projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["executionArn"]},
}
BY_UPLOAD = {"name": "byUploadTime", "keys": ["gallery", "uploadTimestamp"], "projection": {"ProjectionType": "ALL"}}


def s(value: str) -> dict:
    return {"S": value}


PENDING = {
    "imageId": s("i"),
    "status": s("PENDING"),
    "inFlight": s("PENDING"),
    "updatedAt": s("t1"),
    "gallery": s("images"),
    "uploadTimestamp": s("t1"),
}
PROCESSING = {**PENDING, "status": s("PROCESSING"), "inFlight": s("PROCESSING"), "updatedAt": s("t2")}


def test_a_new_item_is_one_put_in_each_index_it_has_the_keys_of():
    assert write_units(None, PENDING, KEYS, [IN_FLIGHT, BY_UPLOAD]) == {"table": 1, "inFlight": 1, "byUploadTime": 1}
    no_gallery = {k: v for k, v in PENDING.items() if k != "gallery"}
    assert write_units(None, no_gallery, KEYS, [BY_UPLOAD]) == {"table": 1, "byUploadTime": 0}  # sparse: not in it


def test_changing_an_index_key_is_a_delete_and_a_put():
    assert write_units(PENDING, PROCESSING, KEYS, [IN_FLIGHT, BY_UPLOAD]) == {
        "table": 1,
        "inFlight": 2,
        "byUploadTime": 1,  # same key; an attribute it projects (ALL) changed
    }


def test_an_attribute_the_index_does_not_project_writes_only_the_table_and_the_all_index():
    more = {**PROCESSING, "original": {"M": {"width": {"N": "4000"}}}}
    assert write_units(PROCESSING, more, KEYS, [IN_FLIGHT, BY_UPLOAD]) == {
        "table": 1,
        "inFlight": 0,
        "byUploadTime": 1,
    }
    arn = {**PROCESSING, "executionArn": s("arn")}  # projected by INCLUDE
    assert write_units(PROCESSING, arn, KEYS, [IN_FLIGHT])["inFlight"] == 1


def test_leaving_a_sparse_index_is_one_delete_and_a_refused_write_no_index_write():
    done = {k: v for k, v in PROCESSING.items() if k != "inFlight"} | {"status": s("PROCESSED")}
    assert write_units(PROCESSING, done, KEYS, [IN_FLIGHT]) == {"table": 1, "inFlight": 1}
    assert write_units(PROCESSING, PROCESSING, KEYS, [IN_FLIGHT, BY_UPLOAD]) == {
        "table": 1,
        "inFlight": 0,
        "byUploadTime": 0,
    }


def test_units_are_per_started_kilobyte_of_the_larger_image_and_of_the_projected_entry():
    big = {**PROCESSING, "renditions": s("x" * 1500)}  # ~1.6 KB
    assert write_units(big, PROCESSING, KEYS, [IN_FLIGHT, BY_UPLOAD]) == {
        "table": 2,  # the larger image, before
        "inFlight": 0,  # renditions is not projected, the key did not change
        "byUploadTime": 1,  # the entry written is the new, small one
    }
    assert write_units(PROCESSING, big, KEYS, [BY_UPLOAD]) == {"table": 2, "byUploadTime": 2}
