"""Field rules shared by the producer (rows) and the query API (paths): one definition of valid."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 256
MAX_EMAIL_LENGTH = 254
# WHATWG's "valid email address" (HTML living standard, input type=email), with a dotted domain
# required on top: `user@localhost` is valid HTML but never a deliverable address here.
# A label is 1 to 63 letters, digits and hyphens, neither first nor last a hyphen. What follows a
# label (a dot, the end) is none of these, so a label is always a whole run of them: it is matched
# possessively (no backtracking, twice as fast over a block of addresses), with the same outcome.
_LABEL = r"(?=[a-z0-9])[a-z0-9-]{1,63}+(?<!-)"
_EMAIL_FORM = rf"[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]++@{_LABEL}(?:\.{_LABEL})++"
_EMAIL = re.compile(rf"^{_EMAIL_FORM}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
_PHONE_FORM = r"\+?[0-9]{6,15}"
_PHONE = re.compile(rf"^{_PHONE_FORM}$")
# The same forms over many values joined by line ends, which no valid value holds: one regular
# expression call checks a whole block of rows (`normalize_emails`, `normalize_phones`).
_EMAILS = re.compile(rf"(?:{_EMAIL_FORM}\n)*+{_EMAIL_FORM}")
_PLAIN_PHONES = re.compile(rf"(?:{_PHONE_FORM}\n)*+{_PHONE_FORM}")


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


def normalize_email(raw: str, label: str = "mail") -> str:
    """Trimmed and lower-cased; one `@`, a dotted domain, no spaces; at most 254 characters. Reasons
    name the field `label`."""
    email = raw.strip().lower()
    if not email:
        raise InvalidValue(f"{label} is empty")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidValue(f"{label} is {len(email)} characters long; at most {MAX_EMAIL_LENGTH} allowed")
    if not _EMAIL.match(email):
        raise InvalidValue(f"{label} is not a valid email address (local@dotted.domain)")
    return email


def normalize_phone(raw: str, label: str = "phone") -> str | None:
    """Optional. Spaces, dashes, dots and parentheses removed; then `+`? and 6 to 15 digits. Reasons
    name the field `label`."""
    if not raw.strip():
        return None
    phone = _PHONE_SEPARATORS.sub("", raw)
    if not _PHONE.match(phone):
        raise InvalidValue(f"{label} is not an optional '+' and 6 to 15 digits")
    return phone


# The rules over many values at once, for the producer's blocks of rows: each gives what its rule
# gives every value, or None when some value breaks it (then the rule, value by value, says which
# and why). A few calls in C per block instead of a few in Python per value.


def normalize_names(raws: list[str]) -> list[str] | None:
    """`normalize_name` of each value, or None if one is invalid."""
    names = list(map(str.strip, raws))
    if names and min(map(len, names)) > 0 and max(map(len, names)) <= MAX_NAME_LENGTH:
        return names
    return None


def normalize_emails(raws: list[str]) -> list[str] | None:
    """`normalize_email` of each value, or None if one is invalid."""
    emails = list(map(str.lower, map(str.strip, raws)))
    return emails if _all_match(_EMAILS, emails) and max(map(len, emails)) <= MAX_EMAIL_LENGTH else None


def normalize_phones(raws: list[str]) -> list[str | None] | None:
    """`normalize_phone` of each value, or None if one is invalid. Values already in normal form
    (`+`? and 6 to 15 digits, nothing else) are what the rule gives them, checked at once."""
    if _all_match(_PLAIN_PHONES, raws):
        return list(raws)
    try:
        return [normalize_phone(raw) for raw in raws]
    except InvalidValue:
        return None


def _all_match(pattern: re.Pattern[str], values: list[str]) -> bool:
    """Whether every value matches the form `pattern` repeats, joined by line ends; a value holding
    a line end is never one (the forms exclude it)."""
    joined = "\n".join(values)
    return bool(values) and joined.count("\n") == len(values) - 1 and pattern.fullmatch(joined) is not None
