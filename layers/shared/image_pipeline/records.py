"""The image record in DynamoDB and its status model. Every transition is a conditional write.

PENDING (upload URL issued) -> PROCESSING (claimed by one execution) -> PROCESSED | REJECTED | FAILED;
PENDING -> EXPIRED when the upload URL expired unused (the reconciler); EXPIRED -> PROCESSING when the upload
arrives after all (S3 checks a presigned URL's expiry when the request starts, so a slow PUT can land later).
An execution writes an image's status only while it owns it (``executionArn``); a duplicate event
of an image that is being or has been processed claims nothing and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from image_pipeline.aws import is_conditional_check_failed, transient_errors
from image_pipeline.contracts import (  # noqa: F401  (the statuses, which the other modules take from here too)
    DELETED,
    EXPIRED,
    FAILED,
    OUTCOMES,
    PENDING,
    PROCESSED,
    PROCESSING,
    REJECTED,
    STATUSES,
)
from image_pipeline.errors import ImageNotOwnedError

# Every image record carries GALLERY_KEY = GALLERY: the partition of the byUploadTime index (newest first: an admin's
# GET /images?all=true, and the backfill). A tombstone does not, so deleted images leave the listing.
GALLERY_KEY, GALLERY = "gallery", "images"
# OWNER is the ``sub`` of the caller who asked for the upload URL; it never changes, and a tombstone keeps it (so a
# retried DELETE by the owner answers the same). LISTED_OWNER, the same value, is the partition of the byOwner index
# (an owner's GET /images, newest first); a tombstone drops it.
OWNER, LISTED_OWNER = "owner", "listedOwner"
BY_OWNER_INDEX, BY_UPLOAD_TIME_INDEX = "byOwner", "byUploadTime"
# An image in flight (PENDING, PROCESSING) also carries IN_FLIGHT = its status: the key of the sparse inFlight index,
# where the reconciler finds stale ones. Every write that ends the flight removes it.
IN_FLIGHT = "inFlight"
IN_FLIGHT_INDEX = "inFlight"
# The listing filtered by status reads at most this many index entries per request (a page may then hold fewer
# images than asked, with a cursor to go on).
FILTERED_READ_BUDGET = 1000


def _ending_flight(
    expression: str, values: dict[str, Any], names: dict[str, str], original: dict[str, Any] | None
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A SET ``expression`` (with its values and names) made into the write of an image's outcome: it records what
    Validate found of the ``original`` (when it got that far) and takes the image out of the in-flight index."""
    names = {**names, "#f": IN_FLIGHT}
    if original:
        expression += ", #o = :o"
        values = {**values, ":o": original}
        names["#o"] = "original"
    return expression + " REMOVE #f", values, names


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints (or floats, a focal point's) for JSON, through dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    return value


def _stored_point(focal: Sequence[float]) -> dict[str, Decimal]:
    """A focal point as DynamoDB stores it (Decimals, no float)."""
    return {"x": Decimal(str(focal[0])), "y": Decimal(str(focal[1]))}


def focal_point(value: Any) -> list[float] | None:
    """A recorded focal point ({"x", "y"}, DynamoDB numbers) as [x, y] floats; None when there is none."""
    if not isinstance(value, Mapping) or "x" not in value or "y" not in value:
        return None
    return [float(value["x"]), float(value["y"])]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Claim:
    """Outcome of trying to own an image for processing."""

    claimed: bool
    status: str
    record: dict[str, Any]


class ImageRepository:
    def __init__(self, table) -> None:
        self.table = table

    def get(self, image_id: str) -> dict[str, Any] | None:
        """The record, or None; a record past its TTL (``expiresAt``) is gone even if DynamoDB has not deleted it yet."""
        with transient_errors():
            item = self.table.get_item(Key={"imageId": image_id}, ConsistentRead=True).get("Item")
        if item is not None and "expiresAt" in item and int(item["expiresAt"]) <= time.time():
            return None
        return item

    def create_pending(
        self, image_id: str, key: str, filename: str | None, content_type: str | None, owner: str, size: int
    ) -> dict:
        """A PENDING record of ``owner``'s upload of ``size`` bytes (what the URL is signed for)."""
        stamp = now()
        item = {
            "imageId": image_id,
            "status": PENDING,
            "uploadTimestamp": stamp,
            "updatedAt": stamp,
            "originalKey": key,
            OWNER: owner,
            LISTED_OWNER: owner,
            "declaredSize": size,
            GALLERY_KEY: GALLERY,
            IN_FLIGHT: PENDING,
        }
        if filename:
            item["filename"] = filename
        if content_type:
            item["declaredContentType"] = content_type
        with transient_errors():
            self.table.put_item(Item=item, ConditionExpression=Attr("imageId").not_exists())
        return item

    def claim(self, image_id: str, key: str, etag: str, execution_arn: str, reprocess: bool = False) -> Claim:
        """PENDING/EXPIRED/absent -> PROCESSING for this execution (EXPIRED: a late upload, its TTL is cleared);
        also re-entry by the same execution (a retried step).

        With ``reprocess`` a terminal image may be processed again. Anything else is a duplicate: nothing is written.
        """
        stamp = now()
        # Re-entry only while this execution is still processing: a late invocation of this execution's first
        # step (its task timed out and was retried) must not pull a finished image back to PROCESSING.
        mine = Attr("executionArn").eq(execution_arn)
        allowed = (
            Attr("imageId").not_exists()
            | Attr("status").is_in([PENDING, EXPIRED])
            | (Attr("status").eq(PROCESSING) & mine)
        )
        if reprocess:
            # never an execution that owned the image before (a late or repeated first step of one that ended):
            # it would switch the record back to its version, which a later execution may have retired
            never_mine = ~Attr("executions").contains(execution_arn) & (
                Attr("executionArn").not_exists() | Attr("executionArn").ne(execution_arn)
            )
            allowed = allowed | (Attr("status").is_in(list(OUTCOMES)) & never_mine)
        try:
            with transient_errors():
                record = self.table.update_item(
                    Key={"imageId": image_id},
                    UpdateExpression="SET #s = :processing, #f = :processing, updatedAt = :now, executionArn = :arn,"
                    " originalKey = :key, etag = :etag, uploadTimestamp = if_not_exists(uploadTimestamp, :now),"
                    " #g = :gallery REMOVE #e, expiresAt, reprocessError ADD executions :arns",
                    ConditionExpression=allowed,
                    ExpressionAttributeNames={"#s": "status", "#e": "error", "#g": GALLERY_KEY, "#f": IN_FLIGHT},
                    ExpressionAttributeValues={
                        ":gallery": GALLERY,
                        ":arns": {execution_arn},  # every execution that owned the image (imgpipe trace)
                        ":processing": PROCESSING,
                        ":now": stamp,
                        ":arn": execution_arn,
                        ":key": key,
                        ":etag": etag,
                    },
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            return Claim(True, PROCESSING, record)
        except ClientError as e:
            if not is_conditional_check_failed(e):
                raise
        current = self.get(image_id) or {}
        return Claim(False, current.get("status", "UNKNOWN"), current)

    def mark_processed(
        self,
        image_id: str,
        execution_arn: str,
        stored: Mapping[str, Any],
        original: dict[str, Any] | None = None,
        crops: Mapping[str, Any] | None = None,
        crops_only: bool = False,
    ) -> dict:
        """PROCESSING (owned) -> PROCESSED with ``stored``: the default rendition (``processed``), the responsive
        set (``renditions``), the crops (``profiles``), the ``placeholder`` and the ``renditionSet`` configuration
        they were made with; and what Validate found of the ``original`` (in the same write: one write per step, not
        two); again for the same execution (a retried step whose first run landed).

        ``crops`` (payloads.CropPlan) records the crops' configuration (``profileSet``) and the focal point they were
        made with (``focalRendered``). A ``crops_only`` run leaves the set, the default and the placeholder as they
        are: it writes the profiles it rendered, removes those the plan prunes, and keeps the rest."""
        mine = Attr("executionArn").eq(execution_arn)
        # PROCESSED only as this step's own retry, its switch landed: the record names this execution's version (a
        # record the reconciler gave back to its earlier renditions names the execution, not its version)
        owned = (Attr("status").eq(PROCESSING) & mine) | (
            Attr("status").eq(PROCESSED) & mine & Attr("version").eq(stored.get("version", ""))
        )
        values: dict[str, Any] = {":to": PROCESSED, ":v": stored.get("version", "")}
        names = {"#s": "status", "#v": "version"}
        sets = ["#s = :to", "#v = :v", "updatedAt = :now"]
        removals = ["reprocessError"]
        profiles = dict(stored.get("profiles", {}))
        if crops_only and crops is not None and crops.get("keep"):  # the kept profiles stay: each one written apart
            for i, name in enumerate(profiles):
                sets.append(f"#pf.#p{i} = :p{i}")
                names[f"#p{i}"], values[f":p{i}"] = name, profiles[name]
            for i, name in enumerate(crops.get("prune", [])):
                removals.append(f"#pf.#x{i}")
                names[f"#x{i}"] = name
            if profiles or crops.get("prune"):  # else the crops are all current: nothing of them changes
                names["#pf"] = "profiles"
        else:
            sets.append("profiles = :pf")
            values[":pf"] = profiles
        if not crops_only:
            sets += ["#p = :p", "renditions = :r", "placeholder = :ph", "renditionSet = :set"]
            names["#p"] = "processed"
            values.update(
                {
                    ":p": stored["processed"],
                    ":r": stored.get("renditions", []),
                    ":ph": stored.get("placeholder"),
                    ":set": stored.get("renditionSet", ""),
                }
            )
        if crops is not None:
            sets.append("profileSet = :ps")
            values[":ps"] = crops.get("profileSet", "")
            focal = crops.get("focal")
            if focal is not None:
                sets.append("focalRendered = :fr")
                values[":fr"] = _stored_point(focal)
            else:
                removals.append("focalRendered")
        expression, values, names = _ending_flight("SET " + ", ".join(sets), values, names, original)
        return self._owned_update(
            image_id, execution_arn, expression + ", " + ", ".join(removals), values, names, owned
        )

    def set_focal_point(self, image_id: str, owner: str | None, focal: tuple[float, float] | None) -> dict | None:
        """Record the owner's focal point of a PROCESSED image (None: clear it), conditional on the image being
        PROCESSED and ``owner``'s (None: an admin, any owner's). Returns the record as written, or None when the
        image is not PROCESSED (or not the owner's) at the time of the write."""
        condition: Any = Attr("status").eq(PROCESSED)
        if owner is not None:
            condition = condition & Attr(OWNER).eq(owner)
        values: dict[str, Any]
        if focal is None:
            expression, values = "SET updatedAt = :now REMOVE focalPoint", {":now": now()}
        else:
            expression, values = "SET focalPoint = :f, updatedAt = :now", {":f": _stored_point(focal), ":now": now()}
        return self._conditional_update(image_id, expression, condition, values)

    def mark_failed(
        self,
        image_id: str,
        execution_arn: str,
        status: str,
        code: str,
        message: str,
        original: dict[str, Any] | None = None,
    ) -> dict:
        """PROCESSING (owned by this execution) -> REJECTED/FAILED with the error (and the ``original`` as Validate
        found it, when it got that far); again for the same execution (a retried step). An execution that never
        claimed the image (a duplicate event's, one that gave up before its claim) writes nothing:
        ImageNotOwnedError. The image's own execution, or the reconciler, decides."""
        mine = Attr("executionArn").eq(execution_arn)
        owned = (Attr("status").eq(PROCESSING) & mine) | (Attr("status").eq(status) & mine)
        expression = "SET #s = :to, #e = :err, updatedAt = :now"
        values: dict[str, Any] = {":to": status, ":err": {"code": code, "message": message[:1000]}}
        names = {"#s": "status", "#e": "error"}
        return self._owned_update(image_id, execution_arn, *_ending_flight(expression, values, names, original), owned)

    def mark_reprocess_failed(
        self,
        image_id: str,
        execution_arn: str,
        code: str,
        message: str,
        rendition_set: str,
        original: dict[str, Any] | None = None,
    ) -> dict | None:
        """PROCESSING (a reprocess owned by this execution) -> PROCESSED again, still naming the renditions it
        served before, with the reprocess's error as ``reprocessError`` (and the configuration it tried: the
        backfill does not list the image again for that one); again for the same execution. None when the record
        names no renditions (mark_failed then); ImageNotOwnedError when another execution owns it."""
        mine = Attr("executionArn").eq(execution_arn)
        # PROCESSED only as this step's own retry: an execution that switched the record to its version and then
        # failed (retiring the previous one) leaves it PROCESSED on that version, and owns it no more
        owned = (Attr("status").eq(PROCESSING) & mine & Attr("processed").exists()) | (
            Attr("status").eq(PROCESSED) & mine & Attr("reprocessError").exists()
        )
        expression = "SET #s = :to, reprocessError = :err, updatedAt = :now"
        error = {"code": code, "message": message[:1000], "renditionSet": rendition_set}
        values: dict[str, Any] = {":to": PROCESSED, ":err": error}
        try:
            return self._owned_update(
                image_id, execution_arn, *_ending_flight(expression, values, {"#s": "status"}, original), owned
            )
        except ImageNotOwnedError:
            current = self.get(image_id)
            if current is not None and current.get("executionArn") == execution_arn and "processed" not in current:
                return None
            raise

    def _owned_update(
        self,
        image_id: str,
        execution_arn: str,
        expression: str,
        values: dict[str, Any],
        names: dict[str, str],
        condition=None,
    ) -> dict:
        """A conditional update while this execution owns the image (or ``condition``); else ImageNotOwnedError."""
        if condition is None:
            condition = Attr("status").eq(PROCESSING) & Attr("executionArn").eq(execution_arn)
        written = self._conditional_update(image_id, expression, condition, {**values, ":now": now()}, names)
        if written is None:
            raise ImageNotOwnedError(f"image {image_id} is not owned by {execution_arn}")
        return written

    def _conditional_update(
        self,
        image_id: str,
        expression: str,
        condition: Any,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        returns: str = "ALL_NEW",
    ) -> dict | None:
        """One conditional UpdateItem of the image: the item as ``returns`` says, or None when the condition failed."""
        try:
            with transient_errors():
                return self.table.update_item(
                    Key={"imageId": image_id},
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValues=returns,
                    **({"ExpressionAttributeNames": names} if names else {}),
                )["Attributes"]
        except ClientError as e:
            if is_conditional_check_failed(e):
                return None
            raise

    # ---- the listing and deletion of images (GET /images, DELETE /images/{id})

    def newest(
        self, owner: str | None, status: str | None, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of ``owner``'s images (the byOwner index; everyone's if None: the byUploadTime index), newest
        first by upload time, of one ``status`` if given; and the index key to continue from (None after the last).

        byOwner holds keys only (an image's writes then touch it twice in its life, not at every status change): the
        page's records are read from the table (one BatchGetItem, strongly consistent). A status filters what was
        read, on until the page is full or FILTERED_READ_BUDGET entries were read; a page of a rare status may then
        hold fewer images than ``limit``, even none, with a key to go on from."""
        partition, value, index = (
            (GALLERY_KEY, GALLERY, BY_UPLOAD_TIME_INDEX) if owner is None else (LISTED_OWNER, owner, BY_OWNER_INDEX)
        )
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": Key(partition).eq(value),
            "ScanIndexForward": False,
        }
        found: list[dict[str, Any]] = []
        read, position = 0, start_key
        while True:
            if position:
                kwargs["ExclusiveStartKey"] = position
            with transient_errors():
                want = limit - len(found) if status is None else FILTERED_READ_BUDGET - read
                page = self.table.query(Limit=min(want, 100), **kwargs)
            read += page["Count"]
            records = page["Items"] if owner is None else self._records_of(page["Items"])
            for entry, item in zip(page["Items"], records, strict=True):
                if item is None or (status is not None and item.get("status") != status):
                    continue  # deleted since the index was read, or of another status
                found.append(item)
                if len(found) == limit:  # full: go on after this one next time
                    return found, {k: entry[k] for k in ("imageId", partition, "uploadTimestamp")}
            position = page.get("LastEvaluatedKey")
            if position is None or (status is not None and read >= FILTERED_READ_BUDGET):
                return found, position

    def _records_of(self, entries: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """The table's records of index ``entries`` (at most 100), in their order; None for one gone meanwhile."""
        if not entries:
            return []
        wanted = [{"imageId": e["imageId"]} for e in entries]
        got: dict[str, dict[str, Any]] = {}
        client = self.table.meta.client  # a resource's client: plain Python values, as the table's
        while wanted:
            with transient_errors():
                answer = client.batch_get_item(RequestItems={self.table.name: {"Keys": wanted, "ConsistentRead": True}})
            got.update((item["imageId"], item) for item in answer["Responses"].get(self.table.name, []))
            wanted = answer.get("UnprocessedKeys", {}).get(self.table.name, {}).get("Keys", [])
        return [got.get(e["imageId"]) for e in entries]

    def delete(self, image_id: str, owner: str | None) -> dict[str, Any] | None:
        """Replace the record by a tombstone (status DELETED, the original's key and the owner kept for a retried
        delete) and return what was there; None if the image never existed, or ``owner`` (None: anyone's, an admin)
        does not own it. From here on no execution owns the image: each of its conditional writes fails, and a claim
        of it is refused (an upload arriving later is a duplicate)."""
        stamp = now()
        exists = Attr("imageId").exists()
        try:
            with transient_errors():
                old = self.table.update_item(
                    Key={"imageId": image_id},
                    UpdateExpression="SET #s = :deleted, updatedAt = :now, deletedAt = if_not_exists(deletedAt, :now)"
                    " REMOVE #g, #o, #p, renditions, placeholder, renditionSet, #e, expiresAt, executionArn, etag,"
                    " filename, declaredContentType, #f, #l, profiles, profileSet, focalPoint, focalRendered",
                    ConditionExpression=exists if owner is None else exists & Attr(OWNER).eq(owner),
                    ExpressionAttributeNames={
                        "#s": "status",
                        "#g": GALLERY_KEY,
                        "#o": "original",
                        "#p": "processed",
                        "#e": "error",
                        "#f": IN_FLIGHT,
                        "#l": LISTED_OWNER,
                    },
                    ExpressionAttributeValues={":deleted": DELETED, ":now": stamp},
                    ReturnValues="ALL_OLD",
                )["Attributes"]
        except ClientError as e:
            if is_conditional_check_failed(e):
                return None
            raise
        return old

    def mark_announced(self, image_id: str) -> None:
        """The tombstone's Image Deleted event was published (a retried delete does not publish it again)."""
        with transient_errors():
            self.table.update_item(
                Key={"imageId": image_id},
                UpdateExpression="SET deletionAnnounced = :yes",
                ConditionExpression=Attr("status").eq(DELETED),
                ExpressionAttributeValues={":yes": True},
            )

    # ---- what the backfill needs: the images made with another rendition configuration

    def to_re_render(
        self,
        before: str,
        rendition_set: str,
        start_key: dict[str, Any] | None = None,
        limit: int | None = None,
        profile_set: str = "",
        configuration: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the byUploadTime index, oldest first: the PROCESSED images uploaded before ``before`` (ISO time)
        whose renditions were made with another set than ``rendition_set`` (or before sets were recorded), or whose
        crops were made with another ``profile_set`` (crops missing, or to prune) or at another focal point than the
        owner's; their ``imageId``,
        ``originalKey``, ``etag`` and ``renditionSet``; and the index key to go on from (None after the last page).
        An image whose last reprocess failed for this ``configuration`` (the set and the crops) is left out. A
        re-render does not change an image's upload time, so a walk from the oldest meets each image once. A page
        reads up to 1 MB of the index (DynamoDB's page; ``limit`` entries if given) whatever the filter keeps."""
        configuration = rendition_set if configuration is None else configuration
        other_set = Attr("renditionSet").not_exists() | Attr("renditionSet").ne(rendition_set)
        other_crops: Any
        if profile_set:
            point, rendered = Attr("focalPoint"), Attr("focalRendered")
            other_crops = (
                Attr("profileSet").not_exists()
                | Attr("profileSet").ne(profile_set)
                # a focal point whose crops were never made (its PATCH's run could not start, or hit the quota); on
                # DynamoDB "a <> b" is true when either is missing, both too: compared only when both exist
                | (point.exists() & rendered.not_exists())
                | (point.not_exists() & rendered.exists())
                | (point.exists() & rendered.exists() & point.ne(rendered))
            )
        else:  # no crops configured: the images that still have some
            other_crops = Attr("profileSet").exists() & Attr("profileSet").ne("")
        kwargs: dict[str, Any] = {
            "IndexName": BY_UPLOAD_TIME_INDEX,
            "KeyConditionExpression": Key(GALLERY_KEY).eq(GALLERY) & Key("uploadTimestamp").lt(before),
            "FilterExpression": Attr("status").eq(PROCESSED)
            & (other_set | other_crops)
            # a reprocess to this configuration failed (it keeps its renditions): imgpipe reprocess, not every run
            & (Attr("reprocessError").not_exists() | Attr("reprocessError.renditionSet").ne(configuration)),
            "ProjectionExpression": "imageId, originalKey, etag, renditionSet",
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        if limit:
            kwargs["Limit"] = limit
        with transient_errors():
            page = self.table.query(**kwargs)
        return page["Items"], page.get("LastEvaluatedKey")

    # ---- what the reconciler needs: find stale images, repair one only if nobody touched it meanwhile

    def older_than(self, status: str, cutoff: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """The images in flight in ``status`` (PENDING, PROCESSING) last updated before ``cutoff`` (ISO time), oldest
        first, read from the inFlight index one page at a time as the caller goes: their keys, ``status``,
        ``updatedAt``, ``executionArn`` and ``originalKey``."""
        kwargs: dict[str, Any] = {}
        while True:
            with transient_errors():
                page = self.table.query(
                    IndexName=IN_FLIGHT_INDEX,
                    KeyConditionExpression=Key(IN_FLIGHT).eq(status) & Key("updatedAt").lt(cutoff),
                    Limit=page_size,
                    **kwargs,
                )
            for item in page["Items"]:
                yield {**item, "status": item[IN_FLIGHT]}
            if "LastEvaluatedKey" not in page:
                return
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def keep_serving_if_unchanged(
        self, item: dict[str, Any], code: str, message: str, configuration: str
    ) -> dict | None:
        """``item`` (PROCESSING, as read) back to PROCESSED with the error as ``reprocessError``, only if its status and
        updatedAt are still what was read and it has renditions to serve (a reprocess, a crops-only run, whose
        execution ended without a word); the record as written, or None (then transition_if_unchanged decides)."""
        return self._conditional_update(
            item["imageId"],
            "SET #s = :to, reprocessError = :err, updatedAt = :now REMOVE #f",
            "#s = :from AND updatedAt = :seen AND attribute_exists(#p)",
            {
                ":to": PROCESSED,
                ":err": {"code": code, "message": message, "renditionSet": configuration},
                ":now": now(),
                ":seen": item["updatedAt"],
                ":from": item["status"],
            },
            {"#s": "status", "#f": IN_FLIGHT, "#p": "processed"},
        )

    def transition_if_unchanged(
        self,
        item: dict[str, Any],
        to: str,
        code: str,
        message: str,
        expires_at: int | None = None,
        release_size: bool = False,
    ) -> dict[str, Any] | None:
        """``item`` (as read) -> ``to`` with the error, only if its status and updatedAt are still what was read: the
        record as it was before (its owner, its declaredSize); None if it moved on meanwhile. ``expires_at``: the
        record's TTL (epoch seconds). ``release_size``: the record gives up its declaredSize in the same write, so
        the caller gives those bytes back to the owner's quota once, and a later DELETE finds none to give back."""
        update = "SET #s = :to, #e = :err, updatedAt = :now"
        values: dict[str, Any] = {
            ":to": to,
            ":err": {"code": code, "message": message},
            ":now": now(),
            ":seen": item["updatedAt"],
            ":from": item["status"],
        }
        if expires_at is not None:
            update += ", expiresAt = :ttl"
            values[":ttl"] = expires_at
        return self._conditional_update(
            item["imageId"],
            # ``to`` (EXPIRED, FAILED) is not in flight
            update + " REMOVE #f" + (", declaredSize" if release_size else ""),
            "#s = :from AND updatedAt = :seen",
            values,
            {"#s": "status", "#e": "error", "#f": IN_FLIGHT},
            returns="ALL_OLD",
        )
