"""What the query API answers for a stored item: the schema's columns typed as JSON, then where the
row came from.

An item is read in DynamoDB's wire format and each column's value typed from it exactly:

| column type | stored as | answered as |
| --- | --- | --- |
| `integer` | N | a JSON number (`42`): whole, at most 38 digits, exact in JSON |
| `decimal` | N | a string: the exact decimal in its normal form (`"12.5"`) |
| `boolean` | BOOL | `true` or `false` |
| any other | S | the string as stored |
| absent (an empty optional cell) | — | `null` |

A decimal is a string because a JSON number is read as a binary float by most clients (JavaScript's
`JSON.parse`, Python's `json`), which cannot hold `0.1` or 38 digits: the string is exact, and
`Decimal("12.5")` or a BigDecimal reads it so.

A stored value of another type than its column's (written under an earlier schema) is answered by
its own type, a number always exactly (whole: a JSON number, else a string): never a 500, never
rounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any

from handlers.common.dynamo import from_wire
from handlers.common.schema import MAX_NUMBER_DIGITS, Column, Schema, Value

# What the answer shows of where each item came from, after its columns (handlers/worker/writes.py
# writes them): the default schema's answer is `email, name, phone` then these, as it always was.
SOURCE_FIELDS = ("updatedAt", "uploadedAt", "sourceKey", "jobId", "row")

# DynamoDB numbers hold at most 38 significant digits
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number):
# with that precision, `normalize` drops trailing zeros and never rounds a stored number.
_EXACT = Context(prec=MAX_NUMBER_DIGITS)


def exact_decimal(text: str) -> str:
    """A DynamoDB number's text as a decimal's normal form: no exponent, no leading or trailing
    zeros, no trailing point (`12.5`, `-0.75`, `100`, `0`)."""
    number = Decimal(text)
    return "0" if number.is_zero() else format(number.normalize(_EXACT), "f")


def column_value(column: Column, wire: Mapping[str, Any] | None) -> Value:
    """The stored attribute `wire` (None when absent) as the API answers `column`'s value."""
    if wire is None:
        return None
    if "N" in wire:
        text = exact_decimal(wire["N"])
        whole = column.type.json_type is int or column.type.attribute_type != "N"
        return int(text) if whole and "." not in text else text
    if "S" in wire:
        return wire["S"]
    if "BOOL" in wire:
        return bool(wire["BOOL"])
    return from_wire({"value": wire})["value"]  # type: ignore[index]  # no column is stored so


def view_fields(schema: Schema) -> tuple[str, ...]:
    """The answer's fields in order: the key's attribute, the other columns' as declared, then
    `SOURCE_FIELDS`."""
    return (*(schema.columns[i].attribute for i in schema.checked_order), *SOURCE_FIELDS)


class ItemView:
    """Makes the API's answer for one stored item of `schema`: every field of `view_fields`, null
    when absent, nothing else the item holds (its rowVersion, sourceBucket, sourceVersionId)."""

    def __init__(self, schema: Schema) -> None:
        self.columns = tuple(schema.columns[i] for i in schema.checked_order)
        self.fields = view_fields(schema)

    def __call__(self, item: Mapping[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = {c.attribute: column_value(c, item.get(c.attribute)) for c in self.columns}
        source = from_wire({name: item[name] for name in SOURCE_FIELDS if name in item}) or {}
        view.update((name, source.get(name)) for name in SOURCE_FIELDS)
        return view
