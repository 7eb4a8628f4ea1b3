"""Page tokens for `GET /users`: opaque to clients, checked on the way back in.

A token is the last key of a page (an email) with a checksum bound to the table it came from.
It is validated, not signed: it only positions a scan and grants nothing, so the checksum's job
is to turn a tampered, truncated or foreign token into a clear 400 instead of a wrong page or a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from handlers.common.validation import InvalidValue, normalize_email


class InvalidToken(ValueError):
    """The token was not issued by this API for this table."""


def _checksum(table: str, email: str) -> str:
    return hashlib.sha256(f"{table}\x00{email}".encode()).hexdigest()[:16]


def encode_token(table: str, last_key: dict[str, str]) -> str:
    email = last_key["email"]
    raw = json.dumps({"k": email, "c": _checksum(table, email)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A token holds an email (at most 254 characters) and a checksum: anything longer is not one.
MAX_TOKEN_LENGTH = 512


def decode_token(table: str, token: str) -> dict[str, str]:
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
    try:
        email = normalize_email(data["k"])
    except InvalidValue:
        raise InvalidToken("startKey is not a page token") from None
    if email != data["k"] or data["c"] != _checksum(table, email):
        raise InvalidToken("startKey was not issued for this table, or was altered")
    return {"email": email}
