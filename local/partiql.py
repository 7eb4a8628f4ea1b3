"""PartiQL for DynamoDB, run as AWS runs it, for the statement forms local mode implements.

moto 5.2.5 crashes on `?` parameters, ignores an `UPDATE`'s condition and lets an `INSERT` overwrite
(`../shared/reference/MOTO-NOTES.md`), so a conditional batched write path cannot be checked on it.
`install()` replaces moto's `BatchExecuteStatement` and `ExecuteStatement` with this module, for local
mode's emulator (`local.moto_patches.install` calls it) and for a plain `moto.mock_aws()` alike.

Implemented, with parameters only (a `?` for every value):

    INSERT INTO "table" VALUE {'a': ?, 'b': ?, …}
    UPDATE "table" (SET "a" = ? | REMOVE "a") … WHERE <condition>

where the condition holds the key equality (`"key" = ?`, AND-ed at the top) and any comparisons
(`=`, `<>`, `<`, `<=`, `>`, `>=`) of top-level attributes with parameters, joined by AND, OR, NOT and
parentheses. Anything else (SELECT, DELETE, a literal value, a function, a nested path, RETURNING,
ExecuteTransaction) is refused whole, with a ValidationException that names what local mode does not
implement: it never falls through to moto's lenient code.

What AWS documents, and this module does:
- `BatchExecuteStatement`: at most 25 statements, all reads or all writes; every statement independent
  and atomic; `Responses[i]` answers `Statements[i]`; a failed statement reports its own `Error`
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.multiplestatements.batching.html,
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchExecuteStatement.html).
- `INSERT` of a key that exists fails, `DuplicateItem`
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.insert.html).
- `UPDATE`: the condition "must resolve to a single primary key value"; if it "does not evaluate to
  true for any item in the DynamoDB table, ConditionalCheckFailedException is returned"
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.update.html), so an
  absent item fails too, and never creates one.
- A failed condition returns the stored item in `Error.Item` when the statement asks for
  `ReturnValuesOnConditionCheckFailure = ALL_OLD`
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html).
- Comparisons follow DynamoDB's condition semantics: strings compare by their UTF-8 bytes, numbers by
  value, binary by bytes; `<`, `<=`, `>`, `>=` apply to S, N and B only and are false across types; a
  comparison with an attribute the item does not have is false
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html).

Two rules AWS's pages do not spell out, chosen as AWS's other batch APIs behave: two statements on one
item in a batch are refused with BatchWriteItem's `Provided list of item keys contains duplicates`, and
`AccessDenied` is a statement's own error (it is one of `BatchStatementError`'s codes), so one denied
statement does not stop the others.

The emulator's front says, per request, which statements its caller may run and which an injected
fault hits (`set_guard`); without a guard (a plain `mock_aws`) every statement runs.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.multiplestatements.batching.html:
# "BatchExecuteStatement and BatchWriteItem can perform no more than 25 statements per batch."
BATCH_LIMIT = 25
IMPLEMENTED = (
    'INSERT INTO "t" VALUE {\'a\': ?, …} and UPDATE "t" SET "a" = ? | REMOVE "a" … WHERE '
    '"key" = ? [AND comparisons of top-level attributes with ?, OR, NOT, parentheses]; parameters only'
)
CONDITION_FAILED = "The conditional request failed"
DUPLICATE_ITEM = "Duplicate primary key exists in table"
DUPLICATE_KEYS = "Provided list of item keys contains duplicates"
MIXED = "Read and write requests together in the same batch is not supported."
RESOURCE_NOT_FOUND = "Requested resource not found"
PARAMETER_COUNT = "Number of parameters in request and statement don't match."
NOT_A_NUMBER = "A value provided cannot be converted into a number"
KEY_EQUALITY = "Where clause does not contain a mandatory equality on all key attributes"
_READ_VERBS = {"SELECT", "EXISTS"}
_WRITE_VERBS = {"INSERT", "UPDATE", "DELETE"}
ACTIONS = {"SELECT": "PartiQLSelect", "EXISTS": "PartiQLSelect", "INSERT": "PartiQLInsert"} | {
    "UPDATE": "PartiQLUpdate",
    "DELETE": "PartiQLDelete",
}
"""The IAM action each statement verb needs, on its table
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-iam.html)."""
_ORDERED_TYPES = {"S", "N", "B"}


# ---------------------------------------------------------------------------------------------
# Errors


class NotImplementedStatement(Exception):
    """A statement form local mode does not run: the whole request is refused (ValidationException)."""

    def __init__(self, what: str) -> None:
        super().__init__(not_implemented(what))


def not_implemented(what: str) -> str:
    """The refusal of a form local mode does not run, naming it and what local mode runs."""
    return f"local mode does not implement {what} (PartiQL in local mode: {IMPLEMENTED})"


@dataclass(frozen=True)
class StatementError(Exception):
    """One statement's own failure: a `BatchStatementError`, or ExecuteStatement's exception."""

    code: str
    """One of BatchStatementError's codes (`ConditionalCheckFailed`, `DuplicateItem`, `ValidationError`, …)."""
    message: str
    item: Mapping[str, Any] | None = None
    """The stored item, wire format, for `ConditionalCheckFailed` with ALL_OLD."""


# ---------------------------------------------------------------------------------------------
# Parsing


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>"(?:[^"]|"")*")
      | (?P<string>'(?:[^']|'')*')
      | (?P<param>\?)
      | (?P<op><=|>=|<>|!=|[=<>{}(),:.\[\]*+\-/|])
      | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    """`ident` (a quoted name), `string`, `param`, `op`, `number`, `word`, `end`."""
    text: str


def _tokens(statement: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while True:
        while position < len(statement) and statement[position].isspace():
            position += 1
        if position == len(statement):
            return [*found, _Token("end", "")]
        match = _TOKEN.match(statement, position)
        if match is None or match.end() == position:
            raise NotImplementedStatement(f"the character at offset {position} of a statement")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "ident":
            text = text[1:-1].replace('""', '"')
        elif kind == "string":
            text = text[1:-1].replace("''", "'")
        elif kind == "word":
            text = text.upper() if text.upper() in _KEYWORDS else text
        found.append(_Token(kind, text))
        position = match.end()


_KEYWORDS = {
    "INSERT",
    "INTO",
    "VALUE",
    "VALUES",
    "UPDATE",
    "SET",
    "REMOVE",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "SELECT",
    "EXISTS",
    "DELETE",
    "FROM",
    "RETURNING",
    "IN",
    "BETWEEN",
    "IS",
    "MISSING",
    "NULL",
    "TRUE",
    "FALSE",
}


@dataclass(frozen=True)
class Compare:
    name: str
    operator: str
    parameter: int
    """The index of its `?` among the statement's parameters."""


@dataclass(frozen=True)
class Junction:
    operator: str
    """`AND` | `OR`."""
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Negation:
    operand: Condition


Condition = Compare | Junction | Negation


@dataclass(frozen=True)
class Insert:
    table: str
    names: tuple[str, ...]
    """The item's attribute names; the i-th takes parameter i."""

    @property
    def parameters(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Update:
    table: str
    actions: tuple[tuple[str, int | None], ...]
    """`(name, parameter index)` for SET, `(name, None)` for REMOVE, in statement order."""
    condition: Condition
    parameters: int


Statement = Insert | Update


class _Parser:
    def __init__(self, statement: str) -> None:
        self.tokens = _tokens(statement)
        self.at = 0
        self.parameters = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += min(1, len(self.tokens) - 1 - self.at)
        return token

    def accept(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            self.take()
            return True
        return False

    def expect(self, kind: str, text: str, where: str) -> None:
        if not self.accept(kind, text):
            raise NotImplementedStatement(f"{_describe(self.peek())} where {text!r} belongs, in {where}")

    def keyword(self, word: str) -> bool:
        return self.accept("word", word)

    def name(self, where: str) -> str:
        """A top-level attribute or table name, quoted or bare."""
        token = self.peek()
        if _is_name(token):
            self.take()
            if self.peek().kind == "op" and self.peek().text in (".", "["):
                raise NotImplementedStatement(f"a nested document path in {where}")
            if self.peek().kind == "op" and self.peek().text == "(":
                raise NotImplementedStatement(f"a function in {where}")
            return token.text
        raise NotImplementedStatement(f"{_describe(token)} where a name belongs, in {where}")

    def parameter(self, where: str) -> int:
        token = self.peek()
        if token.kind != "param":
            raise NotImplementedStatement(f"{_describe(token)} in {where} (local mode takes a ? parameter only)")
        self.take()
        self.parameters += 1
        return self.parameters - 1

    def end(self, where: str) -> None:
        token = self.peek()
        if token.kind == "word" and token.text == "RETURNING":
            raise NotImplementedStatement("RETURNING")
        if token.kind != "end":
            raise NotImplementedStatement(f"{_describe(token)} after {where}")

    # INSERT INTO "t" VALUE {'a': ?, …}
    def insert(self) -> Insert:
        self.expect("word", "INTO", "INSERT")
        table = self.name("INSERT INTO")
        if not self.keyword("VALUE"):
            raise NotImplementedStatement(f"{_describe(self.peek())} in INSERT (local mode takes VALUE {{…}})")
        self.expect("op", "{", "INSERT's VALUE")
        names: list[str] = []
        while True:
            token = self.take()
            if token.kind != "string":
                raise NotImplementedStatement(f"{_describe(token)} as an attribute name in INSERT's VALUE")
            names.append(token.text)
            self.expect("op", ":", "INSERT's VALUE")
            self.parameter("INSERT's VALUE")
            if self.accept("op", "}"):
                break
            self.expect("op", ",", "INSERT's VALUE")
        self.end("INSERT's VALUE")
        return Insert(table, tuple(names))

    # UPDATE "t" (SET "a" = ? | REMOVE "a")… WHERE condition
    def update(self) -> Update:
        table = self.name("UPDATE")
        actions: list[tuple[str, int | None]] = []
        while True:
            if self.keyword("SET"):
                name = self.name("SET")
                self.expect("op", "=", "SET")
                actions.append((name, self.parameter("SET")))
                if self.accept("op", ","):
                    raise NotImplementedStatement("a comma-separated SET list (local mode takes SET … SET …)")
            elif self.keyword("REMOVE"):
                actions.append((self.name("REMOVE"), None))
            else:
                break
        if not actions:
            raise NotImplementedStatement(f"{_describe(self.peek())} where SET or REMOVE belongs, in UPDATE")
        if not self.keyword("WHERE"):
            raise NotImplementedStatement(f"{_describe(self.peek())} where WHERE belongs, in UPDATE")
        condition = self.disjunction()
        self.end("UPDATE's WHERE")
        return Update(table, tuple(actions), condition, self.parameters)

    def disjunction(self) -> Condition:
        left = self.conjunction()
        while self.keyword("OR"):
            left = Junction("OR", left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.keyword("AND"):
            left = Junction("AND", left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.keyword("NOT"):
            return Negation(self.negation())
        if self.accept("op", "("):
            inner = self.disjunction()
            self.expect("op", ")", "WHERE")
            return inner
        name = self.name("WHERE")
        token = self.take()
        if token.kind == "word" and token.text in ("IN", "BETWEEN", "IS"):
            raise NotImplementedStatement(f"{token.text} in WHERE")
        if token.kind != "op" or token.text not in ("=", "<>", "!=", "<", "<=", ">", ">="):
            raise NotImplementedStatement(f"{_describe(token)} where a comparison belongs, in WHERE")
        operator = "<>" if token.text == "!=" else token.text
        return Compare(name, operator, self.parameter("WHERE"))


def _is_name(token: _Token) -> bool:
    return token.kind == "ident" or (token.kind == "word" and token.text not in _KEYWORDS)


def _describe(token: _Token) -> str:
    """A token named without its content when it may carry a value (a literal is never echoed)."""
    if token.kind == "string" or token.kind == "number":
        return "a literal value"
    if token.kind == "end":
        return "the end of the statement"
    if token.kind == "word" and token.text in _KEYWORDS:
        return token.text
    if token.kind == "op":
        return repr(token.text)
    if token.kind == "param":
        return "a ? parameter"
    return "a name"


def verb(statement: str) -> str:
    """The statement's first word, upper-cased (`INSERT`, `SELECT`, …); `""` when it has none."""
    match = re.match(r"\s*([A-Za-z]+)", statement)
    return match.group(1).upper() if match else ""


@functools.lru_cache(maxsize=256)
def parse(statement: str) -> Statement:
    """The statement, or NotImplementedStatement naming what local mode does not run in it.

    Cached: a batch sends one text many times with different parameters."""
    first = verb(statement)
    if first not in ("INSERT", "UPDATE"):
        raise NotImplementedStatement(f"{first or 'this'} statements")
    parser = _Parser(statement)
    parser.take()
    return parser.insert() if first == "INSERT" else parser.update()


@functools.lru_cache(maxsize=256)
def target(statement: str) -> tuple[str, str, str | None] | None:
    """`(IAM action, table name, index name or None)` the statement needs, or None when they cannot
    be read from it.

    Read from the text alone, before the statement is run, as IAM decides before DynamoDB runs it:
    `INSERT INTO t`, `UPDATE t`, `DELETE FROM t`, `SELECT … FROM t`, `EXISTS(SELECT … FROM t …)`.
    Cached, as `parse` is: the emulator asks for every statement of every batch, and the worker
    sends four texts a table."""
    first = verb(statement)
    if first not in ACTIONS:
        return None
    try:
        tokens = _tokens(statement)
    except NotImplementedStatement:
        return None
    after = {"INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM", "SELECT": "FROM", "EXISTS": "FROM"}[first]
    for index, token in enumerate(tokens[:-1]):
        if token.kind == "word" and token.text == after:
            name = tokens[index + 1]
            if not _is_name(name):
                return None
            index_name = None
            if tokens[index + 2].text == "." and tokens[index + 2].kind == "op" and _is_name(tokens[index + 3]):
                index_name = tokens[index + 3].text
            return f"dynamodb:{ACTIONS[first]}", name.text, index_name
    return None


# ---------------------------------------------------------------------------------------------
# Values and comparisons


def _number(text: str) -> Decimal:
    return Decimal(text)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)


def _type_and_value(attribute: Mapping[str, Any]) -> tuple[str, Any]:
    ((kind, value),) = attribute.items()
    return kind, value


def _equal(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    (left_type, left_value), (right_type, right_value) = _type_and_value(left), _type_and_value(right)
    if left_type != right_type:
        return False
    if left_type == "N":
        return _number(left_value) == _number(right_value)
    if left_type == "B":
        return _bytes(left_value) == _bytes(right_value)
    if left_type == "NS":
        return {_number(v) for v in left_value} == {_number(v) for v in right_value}
    if left_type == "BS":
        return {_bytes(v) for v in left_value} == {_bytes(v) for v in right_value}
    if left_type == "SS":
        return set(left_value) == set(right_value)
    return bool(left_value == right_value)


def _ordered(left: Mapping[str, Any], right: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """Both values in a form Python orders as DynamoDB does, or None when they cannot be ordered."""
    (left_type, left_value), (right_type, right_value) = _type_and_value(left), _type_and_value(right)
    if left_type != right_type or left_type not in _ORDERED_TYPES:
        return None
    if left_type == "N":
        return _number(left_value), _number(right_value)
    if left_type == "S":  # DynamoDB orders strings by their UTF-8 bytes, not by code point or locale
        return left_value.encode(), right_value.encode()
    return _bytes(left_value), _bytes(right_value)


def _compare(operator: str, stored: Mapping[str, Any] | None, given: Mapping[str, Any]) -> bool:
    if stored is None:
        return False
    if operator == "=":
        return _equal(stored, given)
    if operator == "<>":
        return not _equal(stored, given)
    pair = _ordered(stored, given)
    if pair is None:
        return False
    left, right = pair
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]


def holds(condition: Condition, item: Mapping[str, Any], parameters: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the condition is true of the stored item (wire format)."""
    if isinstance(condition, Compare):
        return _compare(condition.operator, item.get(condition.name), parameters[condition.parameter])
    if isinstance(condition, Negation):
        return not holds(condition.operand, item, parameters)
    if condition.operator == "AND":
        return holds(condition.left, item, parameters) and holds(condition.right, item, parameters)
    return holds(condition.left, item, parameters) or holds(condition.right, item, parameters)


def _conjuncts(condition: Condition) -> Iterator[Condition]:
    if isinstance(condition, Junction) and condition.operator == "AND":
        yield from _conjuncts(condition.left)
        yield from _conjuncts(condition.right)
    else:
        yield condition


# ---------------------------------------------------------------------------------------------
# Execution against moto's table model


@dataclass(frozen=True)
class Guard:
    """What the emulator's front decided for the statements of the request moto is handling."""

    denied: Callable[[int], str | None]
    """Statement index → AWS's denial message when its caller may not run it, None when it may."""
    fault: Callable[[str], str | None]
    """Table name → the error code an injected statement fault answers this statement with, or None."""


class _Context(threading.local):
    guard: Guard | None = None


_context = _Context()
# moto is not atomic: the emulator runs every request under its own lock, and this one makes each
# statement atomic in a plain mock_aws too (threads of one test calling boto3 at once).
_lock = threading.RLock()


def set_guard(guard: Guard | None) -> None:
    """Name what this thread's next moto call may run (the emulator's front sets it around the call)."""
    _context.guard = guard


@dataclass(frozen=True)
class _Bound:
    """A parsed statement with its parameters, its table and the item key it targets."""

    statement: Statement
    parameters: Sequence[Mapping[str, Any]]
    table: Any
    """moto's Table."""
    key: dict[str, Mapping[str, Any]]


def _well_formed(attribute: Mapping[str, Any]) -> bool:
    """Whether a parameter's numbers are numbers (the comparisons and the key read them)."""
    if not (type(attribute) is dict or isinstance(attribute, Mapping)) or len(attribute) != 1:
        return False
    kind, value = _type_and_value(attribute)
    if kind != "N" and kind != "NS":  # no number to read (most of a batch's parameters)
        return True
    try:
        return all(_number(number).is_finite() for number in ([value] if kind == "N" else value))
    except (ArithmeticError, TypeError, ValueError):
        return False


def _key_type(attribute: Mapping[str, Any]) -> str:
    return _type_and_value(attribute)[0]


def _bind(backend: Any, statement: Statement, parameters: Sequence[Mapping[str, Any]]) -> _Bound:
    """The statement's table and key, checked as AWS checks them, or its StatementError."""
    if len(parameters) != statement.parameters:
        raise StatementError("ValidationError", PARAMETER_COUNT)
    if not all(_well_formed(parameter) for parameter in parameters):
        raise StatementError("ValidationError", NOT_A_NUMBER)
    table = backend.tables.get(statement.table)
    if table is None:
        raise StatementError("ResourceNotFound", RESOURCE_NOT_FOUND)
    key_names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
    types = {table.hash_key_attr: table.hash_key_type, table.range_key_attr: table.range_key_type}
    if isinstance(statement, Insert):
        if len(set(statement.names)) != len(statement.names):
            raise StatementError("ValidationError", "Duplicate attribute names in the INSERT's VALUE")
        values = dict(zip(statement.names, parameters, strict=True))
        missing = [name for name in key_names if name not in values]
        if missing:
            raise StatementError(
                "ValidationError",
                f"One or more parameter values were invalid: Missing the key {missing[0]} in the item",
            )
        key = {name: values[name] for name in key_names}
    else:
        equalities = {
            c.name: parameters[c.parameter]
            for c in _conjuncts(statement.condition)
            if isinstance(c, Compare) and c.operator == "=" and c.name in key_names
        }
        if any(name not in equalities for name in key_names):
            raise StatementError("ValidationError", KEY_EQUALITY)
        key = {name: equalities[name] for name in key_names}
        names = [name for name, _ in statement.actions]
        if any(name in key_names for name in names):
            part = next(name for name in names if name in key_names)
            raise StatementError(
                "ValidationError", f"Cannot update attribute {part}. This attribute is part of the key"
            )
        if len(set(names)) != len(names):
            raise StatementError(
                "ValidationError",
                "Two document paths overlap with each other; must remove or rewrite one of these paths",
            )
    for name, value in key.items():
        if _key_type(value) != types[name]:
            raise StatementError(
                "ValidationError",
                f"One or more parameter values were invalid: Type mismatch for key {name} expected: "
                f"{types[name]} actual: {_key_type(value)}",
            )
        if _type_and_value(value)[1] in ("", b""):
            raise StatementError(
                "ValidationError",
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                f"contain an empty string value. Key: {name}",
            )
    return _Bound(statement, parameters, table, key)


def _item_key(bound: _Bound) -> tuple[str, str]:
    """The bound statement's item, comparable across statements (table name, canonical key)."""
    parts = []
    for name in sorted(bound.key):
        kind, value = _type_and_value(bound.key[name])
        parts.append(f"{name}:{kind}:{_number(value) if kind == 'N' else value}")
    return bound.table.name, "\x00".join(parts)


def _stored(bound: _Bound) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = bound.table
    hash_key = DynamoType(bound.key[table.hash_key_attr])
    range_key = DynamoType(bound.key[table.range_key_attr]) if table.range_key_attr else None
    return table.get_item(hash_key, range_key)


def _run(bound: _Bound, return_old: bool) -> None:
    """Run one bound statement atomically, or raise its StatementError."""
    from moto.dynamodb.exceptions import DynamodbException

    statement, parameters = bound.statement, bound.parameters
    with _lock:
        current = _stored(bound)
        if isinstance(statement, Insert):
            if current is not None:
                raise StatementError("DuplicateItem", DUPLICATE_ITEM)
            item = dict(zip(statement.names, parameters, strict=True))
        else:
            if current is None:
                raise StatementError("ConditionalCheckFailed", CONDITION_FAILED)
            stored = current.to_json()["Attributes"]
            if not holds(statement.condition, stored, parameters):
                raise StatementError("ConditionalCheckFailed", CONDITION_FAILED, stored if return_old else None)
            item = dict(stored)
            for name, parameter in statement.actions:
                if parameter is None:
                    item.pop(name, None)
                else:
                    item[name] = parameters[parameter]
        try:
            bound.table.put_item(item, overwrite=True)
        except DynamodbException as refused:  # moto's own item checks (types, sizes of keys)
            raise StatementError("ValidationError", str(getattr(refused, "message", refused))) from None


def _return_old(request: Mapping[str, Any]) -> bool:
    return request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"


def batch_execute(backend: Any, statements: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`BatchExecuteStatement`: one response per statement, or a whole-request ValidationException."""
    from moto.dynamodb.exceptions import MockValidationException

    if not 1 <= len(statements) <= BATCH_LIMIT:
        raise MockValidationException(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have "
            f"length less than or equal to {BATCH_LIMIT}, Member must have length greater than or equal to 1"
        )
    verbs = {verb(request.get("Statement", "")) for request in statements}
    if verbs & _READ_VERBS and verbs & _WRITE_VERBS:
        raise MockValidationException(MIXED)
    try:
        parsed = [parse(request.get("Statement", "")) for request in statements]
    except NotImplementedStatement as refused:
        raise MockValidationException(str(refused)) from None
    guard = _context.guard
    bound: list[_Bound | StatementError] = []
    for index, (request, statement) in enumerate(zip(statements, parsed, strict=True)):
        denial = guard.denied(index) if guard is not None else None
        if denial is not None:
            bound.append(StatementError("AccessDenied", denial))
            continue
        try:
            bound.append(_bind(backend, statement, request.get("Parameters") or []))
        except StatementError as error:
            bound.append(error)
    items = [_item_key(b) for b in bound if isinstance(b, _Bound)]
    if len(set(items)) != len(items):
        raise MockValidationException(DUPLICATE_KEYS)
    responses: list[dict[str, Any]] = []
    for request, outcome in zip(statements, bound, strict=True):
        try:
            if isinstance(outcome, StatementError):
                raise outcome
            injected = guard.fault(outcome.table.name) if guard is not None else None
            if injected is not None:
                raise StatementError(injected, "injected fault")
            _run(outcome, _return_old(request))
            responses.append({"TableName": outcome.table.name})
        except StatementError as error:
            answer: dict[str, Any] = {"Code": error.code, "Message": error.message}
            if error.item is not None:
                answer["Item"] = error.item
            responses.append({"Error": answer})
    return responses


@functools.cache
def _exceptions() -> dict[str, Any]:
    from moto.dynamodb import exceptions

    class DuplicateItem(exceptions.DynamodbException):
        def __init__(self) -> None:
            super().__init__(exceptions.ERROR_TYPE_PREFIX + "DuplicateItemException", DUPLICATE_ITEM)

    return {
        "DuplicateItem": DuplicateItem,
        "ConditionalCheckFailed": exceptions.ConditionalCheckFailed,
        "ResourceNotFound": exceptions.ResourceNotFoundException,
        "ValidationError": exceptions.MockValidationException,
    }


def execute(backend: Any, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`ExecuteStatement` for the same forms: no items back, or the statement's error as the request's
    exception (ConditionalCheckFailedException with Item on ALL_OLD, DuplicateItemException, …)."""
    from moto.dynamodb.exceptions import MockValidationException

    try:
        statement = parse(request.get("Statement", ""))
    except NotImplementedStatement as refused:
        raise MockValidationException(str(refused)) from None
    try:
        _run(_bind(backend, statement, request.get("Parameters") or []), _return_old(request))
    except StatementError as error:
        raised = _exceptions()
        if error.code == "ConditionalCheckFailed":
            raise raised["ConditionalCheckFailed"](error.message, item=error.item) from None
        if error.code == "DuplicateItem":
            raise raised["DuplicateItem"]() from None
        raise raised.get(error.code, MockValidationException)(error.message) from None
    return []


# ---------------------------------------------------------------------------------------------
# moto patch

_installed = False
_install_lock = threading.Lock()


def _batch_execute_statement(self: Any) -> Any:
    from moto.dynamodb.responses import DynamoResult

    return DynamoResult({"Responses": batch_execute(self.dynamodb_backend, self.body.get("Statements") or [])})


def _execute_statement(self: Any) -> Any:
    from moto.dynamodb.responses import DynamoResult

    return DynamoResult({"Items": execute(self.dynamodb_backend, self.body)})


def _execute_transaction(self: Any) -> Any:
    from moto.dynamodb.exceptions import MockValidationException

    raise MockValidationException(not_implemented("ExecuteTransaction"))


def install() -> None:
    """Replace moto's PartiQL operations with this module's, once per process (moto 5.2.5 only)."""
    global _installed
    import moto

    from local.moto_patches import MOTO_VERSION

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"local/partiql.py patches moto {MOTO_VERSION}'s DynamoHandler; {moto.__version__} is installed"
        )
    with _install_lock:
        if _installed:
            return
        from moto.dynamodb.responses import DynamoHandler

        DynamoHandler.batch_execute_statement = _batch_execute_statement
        DynamoHandler.execute_statement = _execute_statement
        DynamoHandler.execute_transaction = _execute_transaction
        _installed = True
