"""DynamoDB values as plain Python: the resource API returns numbers as `Decimal`.

`from_wire` reads DynamoDB's wire format itself rather than with boto3's `TypeDeserializer`: the
query function reaches DynamoDB through botocore alone, and importing any part of boto3 would load
all of it (and s3transfer) into its cold start.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """Decimals to int (or float when fractional), recursively through maps and lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


def _python(wire: dict[str, Any]) -> Any:
    """One attribute value in wire format (`{"N": "42"}`) as boto3's `TypeDeserializer` reads it:
    numbers as `Decimal`, sets as sets; binaries as bytes (boto3 wraps them in its `Binary`).
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html"""
    [(kind, value)] = wire.items()
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _python(v) for k, v in value.items()}
    if kind == "L":
        return [_python(v) for v in value]
    if kind == "NS":
        return {Decimal(n) for n in value}
    if kind in ("SS", "BS"):
        return set(value)
    raise TypeError(f"{kind} is not a DynamoDB attribute type")


def from_wire(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """An item in DynamoDB's wire format (as a ConditionalCheckFailed error returns it with
    `ReturnValuesOnConditionCheckFailure=ALL_OLD`) as plain Python values."""
    return None if item is None else plain({k: _python(v) for k, v in item.items()})


def to_wire_key(key: dict[str, str]) -> dict[str, dict[str, str]]:
    """A key whose attributes are all strings (every key of ours) in wire format."""
    return {name: {"S": value} for name, value in key.items()}
