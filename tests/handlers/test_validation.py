"""Field rules: names, emails (WHATWG form, dotted domain), phones."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers.common.validation import (
    InvalidValue,
    normalize_email,
    normalize_emails,
    normalize_name,
    normalize_names,
    normalize_phone,
    normalize_phones,
)
from tests.properties.test_validation import mail_like, phone_like


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


# --- the rules over a block of values at once ----------------------------------------------------

BATCH = settings(derandomize=True, max_examples=300, deadline=None, database=None)


def one_by_one(normalize, raws):
    """What the rule gives each value, or None if it refuses one."""
    try:
        return [normalize(raw) for raw in raws]
    except InvalidValue:
        return None


@BATCH
@given(raws=st.lists(st.one_of(mail_like(), st.sampled_from(["a@b.co\nc@d.co", "x@y.co\n", "A@B.CO", ""])), max_size=6))
@example(raws=["john@gmail.com", "  John.Doe@Gmail.COM ", f"{'a' * 64}@{'b' * 63}.{'c' * 63}.com"])
def test_a_block_of_emails_is_normalised_as_each_one_is(raws):
    assert normalize_emails(raws) == one_by_one(normalize_email, raws) or not raws


@BATCH
@given(
    raws=st.lists(st.one_of(phone_like(), st.sampled_from(["+441234567890", "123456\n7890123", "", " "])), max_size=6)
)
@example(raws=["+441234567890", "0123456"])
@example(raws=["+44 1234 567890", "", "0123456"])
def test_a_block_of_phones_is_normalised_as_each_one_is(raws):
    assert normalize_phones(raws) == one_by_one(normalize_phone, raws) or not raws


@BATCH
@given(raws=st.lists(st.one_of(st.text(max_size=300), st.sampled_from(["Ada", " ", "x" * 256, "x" * 257])), max_size=6))
def test_a_block_of_names_is_normalised_as_each_one_is(raws):
    assert normalize_names(raws) == one_by_one(normalize_name, raws) or not raws


def test_the_block_rules_need_no_value_to_hold_a_line_end():
    # Two valid values in one cell, joined by a line end, are not two values.
    assert normalize_emails(["a@b.co\nc@d.co"]) is None
    assert normalize_phones(["123456\n7890123"]) == [normalize_phone("123456\n7890123")]  # a separator there
