"""Field rules: names, emails (WHATWG form, dotted domain), phones."""

import pytest

from handlers.common.validation import InvalidValue, normalize_email, normalize_name, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@gmail.com", "john@gmail.com"),
        ("  John.Doe@Gmail.COM ", "john.doe@gmail.com"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        (f"{'a' * 64}@{'b' * 63}.{'c' * 63}.com", f"{'a' * 64}@{'b' * 63}.{'c' * 63}.com"),
    ],
)
def test_valid_emails_are_trimmed_and_lower_cased(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "mail is empty"),
        ("john", "not a valid email"),
        ("john@localhost", "not a valid email"),
        ("john@@gmail.com", "not a valid email"),
        ("jo hn@gmail.com", "not a valid email"),
        ("john@gmail..com", "not a valid email"),
        ("john@-gmail.com", "not a valid email"),
        ("john@gmail.com.", "not a valid email"),
        ("a@b@c.com", "not a valid email"),
        (f"{'a' * 250}@b.com", "at most 254"),
    ],
)
def test_invalid_emails_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidValue, match=reason):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9876543210", "9876543210"),
        ("+44 20 7946 0958", "+442079460958"),
        ("(555) 123-4567", "5551234567"),
        ("555.123.4567", "5551234567"),
        ("", None),
        ("   ", None),
        ("123456", "123456"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_phones_are_normalised_or_absent(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "1234567890123456", "++1234567", "12a4567", "+", "1-800-FLOWERS", "12+34567"])
def test_invalid_phones_are_refused(raw):
    with pytest.raises(InvalidValue, match="6 to 15 digits"):
        normalize_phone(raw)


def test_names_are_trimmed_non_empty_and_bounded():
    assert normalize_name("  Ada Lovelace ") == "Ada Lovelace"
    assert normalize_name("é" * 256) == "é" * 256
    with pytest.raises(InvalidValue, match="name is empty"):
        normalize_name("   ")
    with pytest.raises(InvalidValue, match="257 characters"):
        normalize_name("x" * 257)
