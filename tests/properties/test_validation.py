"""Properties of the field rules (`handlers/common/validation.py`), against the README's "CSV rules"
restated here without the module's regular expressions: a `name` is trimmed, 1 to 256 characters;
a `mail` is trimmed and lower-cased, at most 254 characters, `local@dotted.domain` in WHATWG's form
(local part of letters, digits and ``.!#$%&'*+/=?^_`{|}~-``; labels of letters, digits and inner
hyphens, at most 63 characters each); a `phone`, stripped of spaces, dashes, dots and parentheses,
is an optional `+` and 6 to 15 digits, or absent when blank.

Each property checks both ways: a value is accepted exactly when it follows the rule, accepted
values come back normalised and normalising them again changes nothing, and a refusal's reason is
one of the fixed sentences below (a length at most), so it can never carry the value.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from handlers.common.validation import InvalidValue, normalize_email, normalize_name, normalize_phone
from tests.evidence import Proof

SECTION = "Properties"
PROOFS = [
    EMAIL := Proof(
        "RELIABILITY",
        SECTION,
        "Validator: the mail rule",
        injected="addresses of 1–6 labels up to 64 characters, in any case, spaces around, one time in three a stray"
        " character (Unicode letter, Kelvin sign, '@', space, quote…) in a part; and arbitrary text",
        held="accepted exactly when the trimmed, lower-cased value follows the rule; normalising is idempotent; reasons"
        " are fixed sentences",
        figures={"examples": 250},
        test="test_mail_is_accepted_exactly_when_it_follows_the_rule",
    ),
    NAME := Proof(
        "RELIABILITY",
        SECTION,
        "Validator: the name rule",
        injected="arbitrary Unicode text of 0–300 characters with any whitespace around",
        held="accepted exactly when 1–256 characters remain once trimmed; normalising is idempotent; reasons are fixed"
        " sentences",
        figures={"examples": 200},
        test="test_name_is_accepted_exactly_when_it_follows_the_rule",
    ),
    PHONE := Proof(
        "RELIABILITY",
        SECTION,
        "Validator: the phone rule",
        injected="0–17 ASCII digits between separators (spaces of any kind, dashes, dots, parentheses), '+' or not,"
        " one time in three a stray character (other scripts' digits, a letter, a second '+'…); and arbitrary text",
        held="absent exactly when blank, accepted exactly when an optional '+' and 6–15 digits remain once separators"
        " go; normalising is idempotent; reasons are fixed sentences",
        figures={"examples": 300},
        test="test_phone_is_accepted_exactly_when_it_follows_the_rule",
    ),
]

# Every reason a field rule may give: fixed words and at most a length.
REASONS = re.compile(
    r"name is empty|name is \d+ characters long; at most 256 allowed"
    r"|mail is empty|mail is \d+ characters long; at most 254 allowed"
    r"|mail is not a valid email address \(local@dotted\.domain\)"
    r"|phone is not an optional '\+' and 6 to 15 digits"
)

LOCAL_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + ".!#$%&'*+/=?^_`{|}~-")
LABEL_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-")


def follows_mail_rule(email: str) -> bool:
    local, at, domain = email.partition("@")
    labels = domain.split(".")
    return (
        bool(at)
        and 0 < len(email) <= 254
        and bool(local)
        and set(local) <= LOCAL_CHARACTERS
        and len(labels) >= 2
        and all(
            0 < len(label) <= 63 and set(label) <= LABEL_CHARACTERS and label[0] != "-" and label[-1] != "-"
            for label in labels
        )
    )


def follows_phone_rule(phone: str) -> bool:
    digits = phone.removeprefix("+")
    return 6 <= len(digits) <= 15 and set(digits) <= set(string.digits)


def outcome(normalize: Callable[[str], str | None], raw: str) -> str | InvalidValue | None:
    try:
        return normalize(raw)
    except InvalidValue as invalid:
        assert REASONS.fullmatch(str(invalid)), f"reason outside the fixed sentences: {str(invalid)!r}"
        return invalid


# Whitespace as str.strip() sees it, ASCII and not.
spaces = st.text(st.sampled_from(" \t\r\n\x0b\x0c\x1c\x85\xa0\u2003\u2028\u3000"), max_size=3)
noise = st.characters(codec="utf-8")


@st.composite
def mutated(draw: st.DrawFn, text: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> str:
    """`text`, and one time in three an `odd` character inserted somewhere in it."""
    value = draw(text)
    if draw(st.integers(0, 2)) == 0:
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(odd) + value[at:]
    return value


odd_in_mail = st.one_of(st.sampled_from('ABZé\u212aİ@ ,"\\_.-'), noise)  # \u212a: Kelvin sign, lower-cases to k
local_parts = mutated(st.text(st.sampled_from(sorted(LOCAL_CHARACTERS)), min_size=0, max_size=66), odd_in_mail)
labels = mutated(
    st.one_of(
        st.from_regex(r"[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?", fullmatch=True),
        st.from_regex(r"[a-z0-9][a-z0-9-]{59,62}[a-z0-9]", fullmatch=True),  # long: addresses near 254
    ),
    odd_in_mail,
)


@st.composite
def mail_like(draw: st.DrawFn) -> str:
    """Addresses, valid or a little off (up to both length limits), in any case, spaces around."""
    address = f"{draw(local_parts)}@{'.'.join(draw(st.lists(labels, min_size=1, max_size=6)))}"
    return draw(spaces) + draw(st.sampled_from([address, address.upper(), address.title()])) + draw(spaces)


@given(raw=st.one_of(mail_like(), st.text(noise, max_size=40)))
def _mail(raw: str) -> None:
    result = outcome(normalize_email, raw)
    expected = raw.strip().lower()
    if isinstance(result, InvalidValue):
        assert not follows_mail_rule(expected)
    else:
        assert result == expected and follows_mail_rule(result)
        assert normalize_email(result) == result


def test_mail_is_accepted_exactly_when_it_follows_the_rule(examples):
    assert examples(_mail, EMAIL) == EMAIL.figures["examples"]


@given(raw=st.builds(lambda a, text, b: a + text + b, spaces, st.text(noise, max_size=300), spaces))
def _name(raw: str) -> None:
    result = outcome(normalize_name, raw)
    expected = raw.strip()
    if isinstance(result, InvalidValue):
        assert not 0 < len(expected) <= 256
    else:
        assert result == expected and 0 < len(result) <= 256
        assert normalize_name(result) == result


def test_name_is_accepted_exactly_when_it_follows_the_rule(examples):
    assert examples(_name, NAME) == NAME.figures["examples"]


separators = st.text(st.sampled_from("-.() \t\n\xa0\u2007"), max_size=2)
odd_in_phone = st.one_of(st.sampled_from("+٣０x/"), noise)  # digits of other scripts, full-width, a letter…


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    """Phone numbers of 0 to 17 digits between separators, with or without '+', a little off or not."""
    digits = draw(st.lists(st.sampled_from(string.digits), max_size=17))
    spaced = "".join(draw(separators) + digit for digit in digits)
    return draw(mutated(st.just(draw(st.sampled_from(["", "+", " +"])) + spaced), odd_in_phone))


@given(raw=st.one_of(phone_like(), st.text(noise, max_size=8)))
def _phone(raw: str) -> None:
    result = outcome(normalize_phone, raw)
    remaining = "".join(c for c in raw if not (c.isspace() or c in "-.()"))
    if raw.strip() == "":
        assert result is None
    elif isinstance(result, InvalidValue):
        assert not follows_phone_rule(remaining)
    else:
        assert result == remaining and follows_phone_rule(result)
        assert normalize_phone(result) == result


def test_phone_is_accepted_exactly_when_it_follows_the_rule(examples):
    assert examples(_phone, PHONE) == PHONE.figures["examples"]
