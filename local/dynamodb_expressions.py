"""DynamoDB's refusal of expression attributes that no expression of the request uses.

DynamoDB answers a request whose `ExpressionAttributeValues` (or `ExpressionAttributeNames`) holds an
entry none of its expressions uses with `ValidationException`, "Value provided in
ExpressionAttributeValues unused in expressions: keys: {:x}". AWS's guide says only that values are
used by the request's key condition, condition, update and filter expressions
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ExpressionAttributeValues.html);
the refusal and its words are AWS's answers as users quote them (github.com/kestra-io/plugin-aws/issues/358,
github.com/AllocZero/EfficientDynamoDb/issues/170, several keys `{:a, :b}`: github.com/awspilot/dynamodb-oop/issues/29)
and as moto's own check of names, validated against AWS, words them (github.com/getmoto/moto/pull/9005).
moto checks names, and values in UpdateItem only: code that passes an
unused value to PutItem, DeleteItem, Query, Scan or a transaction passed locally and failed on AWS. The
check is made here, before moto runs the request, for every operation and every item of a transaction.
A placeholder is `:` or `#` followed by letters, digits and underscores; DynamoDB's expressions have no
string literals, so every such token of an expression is a use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

EXPRESSIONS = (
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "FilterExpression",
    "KeyConditionExpression",
)
_PLACEHOLDER = re.compile(r"[:#][A-Za-z0-9_]+")


def _parts(operation: str, body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Each part of a request that carries its own expressions and attribute maps."""
    if operation == "TransactWriteItems":
        for item in body.get("TransactItems") or []:
            yield from (part for part in item.values() if isinstance(part, Mapping))
    elif operation == "TransactGetItems":
        for item in body.get("TransactItems") or []:
            if isinstance(item.get("Get"), Mapping):
                yield item["Get"]
    elif operation == "BatchGetItem":
        yield from (keys for keys in (body.get("RequestItems") or {}).values() if isinstance(keys, Mapping))
    else:
        yield body


def unused(operation: str, body: Mapping[str, Any]) -> str | None:
    """DynamoDB's message for the first part of the request with an unused value or name, None if none."""
    for part in _parts(operation, body):
        used = {token for name in EXPRESSIONS for token in _PLACEHOLDER.findall(str(part.get(name) or ""))}
        for field in ("ExpressionAttributeValues", "ExpressionAttributeNames"):
            given = part.get(field)
            left = sorted(set(given) - used) if isinstance(given, Mapping) else []
            if left:
                return f"Value provided in {field} unused in expressions: keys: {{{', '.join(left)}}}"
    return None
