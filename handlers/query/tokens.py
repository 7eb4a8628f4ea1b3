"""Page tokens for `GET /users` and `GET /jobs`: opaque to clients, checked on the way back in.

A token is the last key of a page, carried as one string (an email; a job's place in the
`recent-jobs` index), with a checksum bound to what it was issued for: the users table, or the
jobs table's index. Opaque means clients pass it back without reading it, not that it is hidden:
it is base64 JSON, and its position (an email) reads as plainly as the page it came after.

It is validated, not signed. The checksum is a SHA-256 of the scope and the position with no key,
so anyone who reads this module can make a well-formed token naming a position of their choice
(a listed user's email; a listed job's upload time and id), and is served the page after it, the
page paging there serves. That grants nothing: a token only positions a listing the caller may
read in full anyway by paging. The checksum's job is to turn a
tampered, truncated or foreign token (a users token sent to `/jobs`) into a clear 400 instead of
a wrong page or a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.common.jobs import RECENT_JOBS_SK, recent_jobs_start_key
from handlers.common.validation import InvalidValue, normalize_email


class InvalidToken(ValueError):
    """The token was not issued by this API for this listing."""


@dataclass(frozen=True)
class PageKey:
    """How one listing's last key travels in a token: as one string, and back to a start key."""

    position: Callable[[Mapping[str, Any]], str]
    """The page's `LastEvaluatedKey` as the string the token carries."""
    start_key: Callable[[str], dict[str, str]]
    """The `ExclusiveStartKey` a carried string stands for; `ValueError` when it cannot be one."""


def _email_start_key(email: str) -> dict[str, str]:
    try:
        normalized = normalize_email(email)
    except InvalidValue:
        raise ValueError("not an email") from None
    if normalized != email:  # issued tokens carry stored (normalised) emails only
        raise ValueError("not a stored email")
    return {"email": email}


BY_EMAIL = PageKey(position=lambda key: str(key["email"]), start_key=_email_start_key)
"""The users table, scanned: its key is the email alone."""
BY_UPLOAD_TIME = PageKey(position=lambda key: str(key[RECENT_JOBS_SK]), start_key=recent_jobs_start_key)
"""The jobs table's `recent-jobs` index: its sort key names the job too, so it is the whole key."""


def _checksum(scope: str, position: str) -> str:
    return hashlib.sha256(f"{scope}\x00{position}".encode()).hexdigest()[:16]


def encode_token(scope: str, last_key: Mapping[str, Any], key: PageKey = BY_EMAIL) -> str:
    """A token for the page after `last_key`, valid only for `scope` (a table, or `<table>/index/<name>`)."""
    position = key.position(last_key)
    raw = json.dumps({"k": position, "c": _checksum(scope, position)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A token holds an email (at most 254 characters) or a job position (48) and a checksum: anything
# longer is not one.
MAX_TOKEN_LENGTH = 512


def decode_token(scope: str, token: str, key: PageKey = BY_EMAIL) -> dict[str, str]:
    """The `ExclusiveStartKey` the token stands for; `InvalidToken` for anything else."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("startKey is not a page token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidToken("startKey is not a page token") from None
    if not isinstance(data, dict) or set(data) != {"k", "c"} or not all(isinstance(v, str) for v in data.values()):
        raise InvalidToken("startKey is not a page token")
    # The checksum first: a token of another listing is told apart as such, whatever it carries.
    if data["c"] != _checksum(scope, data["k"]):
        raise InvalidToken("startKey was not issued for this table, or was altered")
    try:
        return key.start_key(data["k"])
    except ValueError:
        raise InvalidToken("startKey is not a page token") from None
