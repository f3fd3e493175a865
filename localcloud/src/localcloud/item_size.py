"""The size of a DynamoDB item as DynamoDB counts it for capacity units (no LocalStack imports: bench/cost.py uses it
too)."""

from __future__ import annotations


def value_size(value: dict) -> int:
    """DynamoDB's size of one typed attribute value (its documented rules: strings and binaries by length, numbers
    by significant digits, 3 bytes per list or map plus 1 per element, names of map keys)."""
    ((kind, v),) = value.items()
    if kind in ("S", "B"):
        return len(v.encode() if isinstance(v, str) else v)
    if kind == "N":
        return len(str(v).lstrip("-").replace(".", "")) // 2 + 2
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(x) for k, x in v.items())
    return 0


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())
