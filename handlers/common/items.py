"""DynamoDB items as plain Python values on a botocore client, as boto3's DynamoDB resource layer
makes them (`boto3.dynamodb.transform`, `boto3.dynamodb.types`), without importing boto3.

boto3 serializes every `AttributeValue` of a call's parameters from a Python value and deserializes
every one of its response, walking the operation's model to find them. This module does the same,
with the same type rules (numbers as `Decimal` in DynamoDB's context, floats refused, sets by their
elements' type), so that a handler's cold start loads neither boto3 nor s3transfer, which boto3
imports with itself. Two differences, neither reached by a handler: a binary comes back as `bytes`
(boto3 wraps it in its `Binary`, which compares equal), and a condition object from
`boto3.dynamodb.conditions` (a caller that has one has imported boto3) is built by boto3's own
builder, imported then.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, MutableSequence, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# DynamoDB's numbers: 38 digits of precision, exponents from -130 to 125
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html);
# boto3's context, which refuses a number it would have to round.
DYNAMODB_CONTEXT = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])
# The shapes of the operations' models that hold a condition expression.
_CONDITION_SHAPES = ("ConditionExpression", "KeyExpression")


def to_wire(value: Any) -> dict[str, Any]:
    """A Python value as an `AttributeValue`, by boto3's `TypeSerializer`'s rules, in its order."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if _is_binary(value):
        return {"B": _binary(value)}
    if isinstance(value, Set):
        if all(_is_number(v) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if all(_is_binary(v) for v in value):
            return {"BS": [_binary(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {k: to_wire(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_wire(v) for v in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def from_wire(value: dict[str, Any]) -> Any:
    """An `AttributeValue` as a Python value, by boto3's `TypeDeserializer`'s rules (numbers as
    `Decimal`, sets as sets), binaries as `bytes`."""
    if not value:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    kind, inner = next(iter(value.items()))
    if kind == "S" or kind == "BOOL" or kind == "B":
        return inner
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(inner)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_wire(v) for k, v in inner.items()}
    if kind == "L":
        return [from_wire(v) for v in inner]
    if kind == "SS" or kind == "BS":
        return set(inner)
    if kind == "NS":
        return {DYNAMODB_CONTEXT.create_decimal(n) for n in inner}
    raise TypeError(f"Dynamodb type {kind} is not supported")


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, int | Decimal)


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_CONTEXT.create_decimal(value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _is_binary(value: Any) -> bool:
    # boto3's `Binary` wraps bytes and gives them back through `__bytes__`.
    return isinstance(value, bytes | bytearray) or (hasattr(value, "__bytes__") and not isinstance(value, str))


def _binary(value: Any) -> bytes | bytearray:
    return value if isinstance(value, bytes | bytearray) else bytes(value)


def transform(shape: Any, params: Any, target: str, change: Callable[[Any], Any]) -> None:
    """Replace, in place, every value of `params` whose shape in the model is named `target` by
    `change(value)`: boto3's `ParameterTransformer`, structures, maps and lists walked alike."""
    kind = shape.type_name
    if kind == "structure" and isinstance(params, Mapping):
        for name in params:
            member = shape.members.get(name)
            if member is None:
                continue
            if member.name == target:
                params[name] = change(params[name])
            else:
                transform(member, params[name], target, change)
    elif kind == "map" and isinstance(params, Mapping):
        for key in params:
            if shape.value.name == target:
                params[key] = change(params[key])
            else:
                transform(shape.value, params[key], target, change)
    elif kind == "list" and isinstance(params, MutableSequence):
        for index, item in enumerate(params):
            if shape.member.name == target:
                params[index] = change(item)
            else:
                transform(shape.member, item, target, change)


def register_items(events: Any) -> None:
    """Make a DynamoDB client whose `events` these are take and return plain Python values, with the
    four handlers boto3 registers (`boto3.dynamodb.transform.register_high_level_interface`)."""
    events.register("provide-client-params.dynamodb", _copied, unique_id="dynamodb-create-params-copy")
    events.register("before-parameter-build.dynamodb", _serialized, unique_id="dynamodb-attr-value-input")
    events.register("after-call.dynamodb", _deserialized, unique_id="dynamodb-attr-value-output")


class _Unremembered(dict[int, Any]):
    """A `deepcopy` memo that remembers nothing: an object the parameters hold twice is copied twice,
    so that serializing one copy in place leaves the other as the caller wrote it (boto3's
    `_ForgetfulDict`)."""

    def __setitem__(self, key: int, value: Any) -> None:
        pass


def _copied(params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The caller's parameters, copied before they are serialized in place."""
    return copy.deepcopy(params, memo=_Unremembered())


def _serialized(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
    found: list[Any] = []
    for shape in _CONDITION_SHAPES:
        transform(model.input_shape, params, shape, lambda v: found.append(v) or v)
    if any(not isinstance(value, str) for value in found):
        # A condition object: only boto3 builds them, and only a caller that imported boto3 has one.
        from boto3.dynamodb.transform import TransformationInjector

        TransformationInjector().inject_condition_expressions(params, model)
    transform(model.input_shape, params, "AttributeValue", to_wire)


def _deserialized(parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
    if model.output_shape is not None:
        transform(model.output_shape, parsed, "AttributeValue", from_wire)
