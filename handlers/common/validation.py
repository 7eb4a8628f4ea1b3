"""Field rules shared by the producer (rows) and the query API (paths): one definition of valid."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 256
MAX_EMAIL_LENGTH = 254
# WHATWG's "valid email address" (HTML living standard, input type=email), with a dotted domain
# required on top: `user@localhost` is valid HTML but never a deliverable address here.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"^[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


class InvalidValue(ValueError):
    """A field breaks its rule; the message is the reason shown to the user. It names the field
    and the rule, never the value: reasons reach job records, logs and API errors."""


def normalize_name(raw: str) -> str:
    """Trimmed; non-empty; at most 256 characters."""
    name = raw.strip()
    if not name:
        raise InvalidValue("name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValue(f"name is {len(name)} characters long; at most {MAX_NAME_LENGTH} allowed")
    return name


def normalize_email(raw: str) -> str:
    """Trimmed and lower-cased; one `@`, a dotted domain, no spaces; at most 254 characters."""
    email = raw.strip().lower()
    if not email:
        raise InvalidValue("mail is empty")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidValue(f"mail is {len(email)} characters long; at most {MAX_EMAIL_LENGTH} allowed")
    if not _EMAIL.match(email):
        raise InvalidValue("mail is not a valid email address (local@dotted.domain)")
    return email


def normalize_phone(raw: str) -> str | None:
    """Optional. Spaces, dashes, dots and parentheses removed; then `+`? and 6 to 15 digits."""
    if not raw.strip():
        return None
    phone = _PHONE_SEPARATORS.sub("", raw)
    if not _PHONE.match(phone):
        raise InvalidValue("phone is not an optional '+' and 6 to 15 digits")
    return phone
