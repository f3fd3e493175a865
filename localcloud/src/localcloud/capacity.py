"""The write capacity units one DynamoDB write consumes, in the table and in each global secondary index, from the
item before and after the write (no LocalStack imports: unit-testable, and bench/cost.py shares item_size).

DynamoDB's documented rules: a write consumes 1 unit per KB (rounded up, at least 1) of the larger of the item's
before and after images. An index writes only when the write changes what the index holds of the item: an item
entering the index (it now has every key attribute of the index) is one put, leaving it one delete, changing its
index key a delete and a put; an item that stays under the same index key writes the index only if one of the
attributes the index projects changed. An index entry's size is that of its projected attributes (the table's and
the index's keys, plus ``NonKeyAttributes`` for INCLUDE, every attribute for ALL).
"""

from __future__ import annotations

from typing import Any

from localcloud.item_size import item_size

Item = dict[str, Any]  # attribute name -> typed value ({"S": "..."})


def units(size: int) -> int:
    return max(1, -(-size // 1024))


def projected(item: Item, table_keys: list[str], index: dict[str, Any]) -> Item:
    projection = index.get("projection") or {}
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return dict(item)
    wanted = set(table_keys) | set(index["keys"])
    if kind == "INCLUDE":
        wanted |= set(projection.get("NonKeyAttributes") or [])
    return {name: value for name, value in item.items() if name in wanted}


def index_write_units(before: Item | None, after: Item | None, table_keys: list[str], index: dict[str, Any]) -> int:
    def entry(item: Item | None) -> Item | None:
        if item is None or not all(k in item for k in index["keys"]):
            return None  # not in the index (a sparse index holds only items that have all its keys)
        return projected(item, table_keys, index)

    old, new = entry(before), entry(after)
    if old is None and new is None:
        return 0
    if old is None:
        return units(item_size(new))  # type: ignore[arg-type]
    if new is None:
        return units(item_size(old))
    if any(old[k] != new[k] for k in index["keys"]):
        return units(item_size(old)) + units(item_size(new))  # a delete and a put
    return units(item_size(new)) if old != new else 0


def write_units(
    before: Item | None, after: Item | None, table_keys: list[str], indexes: list[dict[str, Any]]
) -> dict[str, int]:
    """{"table": n, <index name>: n, ...} for one write (``before``/``after``: None where there was no item).
    A write that changed nothing (a failed condition) consumes the table's units and no index's."""
    sizes = [item_size(i) for i in (before, after) if i is not None]
    counted = {"table": units(max(sizes, default=0))}
    for index in indexes:
        counted[index["name"]] = index_write_units(before, after, table_keys, index)
    return counted
