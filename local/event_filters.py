"""An event source mapping's `FilterCriteria`, as Lambda applies it to SQS messages.

Lambda's rules (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html,
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html):
- `FilterCriteria.Filters` holds up to five patterns; a record is sent to the function when it
  matches any of them, and every key of a pattern must match (and);
- a pattern names keys of the record Lambda builds (`body`, `attributes`, `messageAttributes`, …);
  a `body` pattern that is an object matches the body parsed as JSON (a body that is not JSON
  object then matches nothing), a list of values matches the body as plain text;
- a leaf is a list of rules, any of which may match (or): a value (string, number, `null`), or
  `{"exists": bool}`, `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`,
  `{"anything-but": value or [values]}`, `{"numeric": [op, n, (op, n)]}`; a rule against an array
  in the record matches when it matches one of its elements;
- "For Amazon SQS, if a message does not match your filter criteria, Lambda automatically removes
  the message from the queue" (with-sqs-filtering.html): the function never sees it.

A pattern using any other form (wildcards, `cidr`, `$or`, an `anything-but` of prefixes, …) is
refused at start-up (`UnsupportedPattern`), never applied half.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_ABSENT = object()

_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_OPERATORS = ("exists", "prefix", "suffix", "equals-ignore-case", "anything-but", "numeric")


class UnsupportedPattern(ValueError):
    """A filter pattern local mode does not apply; `str()` says which part."""


def parse_patterns(filters: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """`FilterCriteria.Filters` (`[{"pattern": "<json>"}]`, as the provider receives it) → the
    patterns, each checked to use only the forms `matches` applies."""
    patterns = []
    for entry in filters:
        text = entry.get("pattern") or entry.get("Pattern") or ""
        try:
            pattern = json.loads(text)
        except json.JSONDecodeError as error:
            raise UnsupportedPattern(f"filter pattern is not JSON ({error.msg})") from error
        _check_object(pattern, "")
        patterns.append(pattern)
    return tuple(patterns)


def _check_object(pattern: Any, where: str) -> None:
    if not isinstance(pattern, Mapping) or not pattern:
        raise UnsupportedPattern(f"filter pattern{where or ''}: expected a non-empty object")
    for key, rule in pattern.items():
        path = f"{where}.{key}"
        if key.startswith("$"):
            raise UnsupportedPattern(f"filter pattern {path}: {key} is not applied locally")
        if isinstance(rule, Mapping):
            _check_object(rule, path)
        elif isinstance(rule, list):
            for each in rule:
                _check_rule(each, path)
        else:
            raise UnsupportedPattern(f"filter pattern {path}: expected an object or a list of rules")


def _check_rule(rule: Any, path: str) -> None:
    if rule is None or isinstance(rule, (str, int, float)):
        return
    if not isinstance(rule, Mapping) or len(rule) != 1:
        raise UnsupportedPattern(f"filter pattern {path}: a rule is a value or a one-key object")
    ((name, value),) = rule.items()
    if name not in _OPERATORS:
        raise UnsupportedPattern(f"filter pattern {path}: {name!r} is not applied locally")
    valid = {
        "exists": isinstance(value, bool),
        "prefix": isinstance(value, str),
        "suffix": isinstance(value, str),
        "equals-ignore-case": isinstance(value, str),
        "anything-but": value is None
        or isinstance(value, (str, int, float))
        or (isinstance(value, list) and all(v is None or isinstance(v, (str, int, float)) for v in value)),
        "numeric": isinstance(value, list) and _numeric_valid(value),
    }[name]
    if not valid:
        raise UnsupportedPattern(f"filter pattern {path}: {name} with {type(value).__name__} is not applied locally")


def _numeric_valid(terms: list[Any]) -> bool:
    pairs = list(zip(terms[::2], terms[1::2], strict=False))
    return (
        len(terms) in (2, 4)
        and all(op in _NUMERIC for op, _ in pairs)
        and all(isinstance(n, (int, float)) and not isinstance(n, bool) for _, n in pairs)
    )


def matches_any(patterns: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Whether Lambda sends the record to the function: no pattern, or one that matches."""
    return not patterns or any(_matches_record(pattern, record) for pattern in patterns)


def _matches_record(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    for key, rule in pattern.items():
        value = record.get(key, _ABSENT)
        if key == "body" and isinstance(rule, Mapping):
            value = _json_object(value)
        if not _matches_field(rule, value):
            return False
    return True


def _json_object(body: Any) -> Any:
    try:
        parsed = json.loads(body) if isinstance(body, str) else _ABSENT
    except json.JSONDecodeError:
        return _ABSENT
    return parsed if isinstance(parsed, Mapping) else _ABSENT


def _matches_field(rule: Any, value: Any) -> bool:
    if isinstance(rule, Mapping):
        if not isinstance(value, Mapping):
            return False
        return all(_matches_field(inner, value.get(key, _ABSENT)) for key, inner in rule.items())
    return any(_matches_rule(each, value) for each in rule)


def _matches_rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, Mapping) and "exists" in rule:
        return (value is not _ABSENT) == rule["exists"]
    if value is _ABSENT:
        return False
    if isinstance(value, list):
        return any(_matches_leaf(rule, element) for element in value)
    return _matches_leaf(rule, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equals(wanted: Any, value: Any) -> bool:
    if wanted is None or value is None:
        return wanted is None and value is None
    if _is_number(wanted):
        return _is_number(value) and float(value) == float(wanted)
    return isinstance(value, str) and value == wanted


def _matches_leaf(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return _equals(rule, value)
    ((name, wanted),) = rule.items()
    if name == "prefix":
        return isinstance(value, str) and value.startswith(wanted)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(wanted)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == wanted.casefold()
    if name == "anything-but":
        excluded = wanted if isinstance(wanted, list) else [wanted]
        return not any(_equals(each, value) for each in excluded)
    if name == "numeric":
        if not _is_number(value):
            return False
        return all(_NUMERIC[op](float(value), float(n)) for op, n in zip(wanted[::2], wanted[1::2], strict=False))
    return False
