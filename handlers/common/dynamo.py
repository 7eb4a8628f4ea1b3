"""DynamoDB values as plain Python: the resource API returns numbers as `Decimal`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

_DESERIALIZER = TypeDeserializer()


def plain(value: Any) -> Any:
    """Decimals to int (or float when fractional), recursively through maps and lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


def from_wire(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """An item in DynamoDB's wire format (as a ConditionalCheckFailed error returns it with
    `ReturnValuesOnConditionCheckFailure=ALL_OLD`) as plain Python values."""
    return None if item is None else plain({k: _DESERIALIZER.deserialize(v) for k, v in item.items()})
