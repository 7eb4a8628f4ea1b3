"""Page tokens for `GET /{collection}` and `GET /jobs`: opaque to clients, checked on the way back in.

A token is the last key of a page, carried as one string (the item's key in its normal form: an
email, a SKU, `42`; a job's place in the `recent-jobs` index), with a checksum bound to what it was
issued for: the items table, or the jobs table's index. Opaque means clients pass it back without
reading it, not that it is hidden: it is base64 JSON, and its position (an email) reads as plainly
as the page it came after.

A token is bound to its table by the checksum, and to the table's key by how it is read back
(`by_key`): the position becomes the key's attribute with the key's DynamoDB type (S or N), and
must be a key of that type (`ten` or `12.50` is no number key). So a token of another table,
another schema's included, is refused (the checksum), and so is a position no key of this table
can have. A schema's key changes only with its table (a new table, so a new scope); the default's
tokens are what they were.

It is validated, not signed. The checksum is a SHA-256 of the scope and the position with no key,
so anyone who reads this module can make a well-formed token naming a position of their choice
(a listed item's key; a listed job's upload time and id), and is served the page after it, the
page paging there serves. That grants nothing: a token only positions a listing the caller may
read in full anyway by paging. The checksum's job is to turn a tampered, truncated or foreign
token (an items token sent to `/jobs`) into a clear 400 instead of a wrong page or a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from handlers.common.dynamo import to_wire_key
from handlers.common.jobs import RECENT_JOBS_SK, recent_jobs_start_key
from handlers.common.schema import (
    MAX_KEY_BYTES,
    MAX_NUMBER_DIGITS,
    MAX_NUMBER_EXPONENT,
    MIN_NUMBER_EXPONENT,
    Column,
    render,
)
from handlers.query.views import column_value, exact_decimal

WireKey = dict[str, dict[str, Any]]
"""A key in DynamoDB's wire format, as `LastEvaluatedKey` and `ExclusiveStartKey` carry it."""


class InvalidToken(ValueError):
    """The token was not issued by this API for this listing."""


@dataclass(frozen=True)
class PageKey:
    """How one listing's last key travels in a token: as one string, and back to a start key."""

    position: Callable[[Mapping[str, Any]], str]
    """The page's `LastEvaluatedKey` (wire format) as the string the token carries."""
    start_key: Callable[[str], WireKey]
    """The `ExclusiveStartKey` (wire format) a carried string stands for; `ValueError` when no key
    of the listing is that string."""


def by_key(column: Column) -> PageKey:
    """An items table, scanned: its key is the key column's attribute alone, of the column's
    DynamoDB type (`S` or `N`). A position is the key's normal form (`render`): a number as the API
    answers it (`handlers/query/views.py`), whatever text DynamoDB gave it back in.

    A position read back must be a key DynamoDB can hold of that type, so that the scan never fails
    on it (a 500): a string of 1 to 2048 bytes, a number in its normal form within DynamoDB's
    range. It is not held to the column's own rules (an email's form, a `maxLength`, an enum's
    values): those may be tightened on a live stack, and a listing must still page past an item
    stored under looser ones."""
    attribute, kind = column.attribute, column.type.attribute_type

    def position(last_key: Mapping[str, Any]) -> str:
        return render(column_value(column, last_key[attribute]))

    def start_key(carried: str) -> WireKey:
        if not carried or len(carried.encode()) > MAX_KEY_BYTES:
            raise ValueError("no key is that long or empty")
        if kind == "N" and not _is_number(carried):
            raise ValueError("not a number as DynamoDB gives it")
        return {attribute: {kind: carried}}

    return PageKey(position=position, start_key=start_key)


def _is_number(text: str) -> bool:
    """Whether `text` is a DynamoDB number in the normal form positions carry (`42`, `-0.5`)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    if not number.is_finite():
        return False
    # The range first: `1E+999999` is short, its digits are not.
    if not number.is_zero() and not MIN_NUMBER_EXPONENT <= number.adjusted() <= MAX_NUMBER_EXPONENT:
        return False
    return len(number.as_tuple().digits) <= MAX_NUMBER_DIGITS and exact_decimal(text) == text


BY_UPLOAD_TIME = PageKey(
    position=lambda key: str(key[RECENT_JOBS_SK]["S"]),
    start_key=lambda carried: to_wire_key(recent_jobs_start_key(carried)),
)
"""The jobs table's `recent-jobs` index: its sort key names the job too, so it is the whole key."""


def _is_text(value: Any) -> bool:
    """A string of Unicode text: JSON's `\\ud800` escapes decode to a lone surrogate, which no key
    holds and UTF-8 cannot encode."""
    return isinstance(value, str) and not any("\ud800" <= character <= "\udfff" for character in value)


def _checksum(scope: str, position: str) -> str:
    return hashlib.sha256(f"{scope}\x00{position}".encode()).hexdigest()[:16]


def encode_token(scope: str, last_key: Mapping[str, Any], key: PageKey) -> str:
    """A token for the page after `last_key`, valid only for `scope` (a table, or `<table>/index/<name>`)."""
    position = key.position(last_key)
    raw = json.dumps({"k": position, "c": _checksum(scope, position)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A token holds a position and a checksum: the longest issued is the base64 of the JSON of the
# longest key DynamoDB stores (MAX_KEY_BYTES of UTF-8, each byte at worst 6 characters escaped,
# as a control character's `\u001f`). Anything longer is not a token, and is refused unread.
MAX_TOKEN_LENGTH = -(-(len('{"k":"","c":""}') + 16 + 6 * MAX_KEY_BYTES) // 3) * 4


def decode_token(scope: str, token: str, key: PageKey) -> WireKey:
    """The `ExclusiveStartKey` the token stands for; `InvalidToken` for anything else."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("startKey is not a page token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidToken("startKey is not a page token") from None
    if not isinstance(data, dict) or set(data) != {"k", "c"} or not all(map(_is_text, data.values())):
        raise InvalidToken("startKey is not a page token")
    # The checksum first: a token of another listing is told apart as such, whatever it carries.
    if data["c"] != _checksum(scope, data["k"]):
        raise InvalidToken("startKey was not issued for this table, or was altered")
    try:
        return key.start_key(data["k"])
    except ValueError:
        raise InvalidToken("startKey is not a page token") from None
