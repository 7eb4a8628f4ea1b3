"""Page tokens: opaque, bound to their table and its key, validated (not signed)."""

import base64
import hashlib
import json

import pytest

from handlers.common.schema import DEFAULT_SCHEMA, parse_schema
from handlers.query.tokens import BY_UPLOAD_TIME, MAX_TOKEN_LENGTH, InvalidToken, by_key, decode_token, encode_token

# The default schema's users table: keyed by the email alone, a string.
BY_EMAIL = by_key(DEFAULT_SCHEMA.key_column)
ANN = {"email": {"S": "ann@example.com"}}


def test_token_round_trips():
    token = encode_token("users-a", ANN, BY_EMAIL)
    assert decode_token("users-a", token, BY_EMAIL) == ANN


def test_the_default_schemas_token_is_what_it_was():
    """Tokens issued before the schema came keep working, and the API issues the same ones."""
    before = "eyJrIjoiYW5uQGV4YW1wbGUuY29tIiwiYyI6IjMyM2VmMWMyYjcyNDE5MjYifQ"  # as the API issued it before schemas
    assert encode_token("users-a", ANN, BY_EMAIL) == before
    assert decode_token("users-a", before, BY_EMAIL) == ANN


def _forge(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "e30",  # {}
        _forge(["ann@example.com"]),
        _forge({"k": "ann@example.com"}),
        _forge({"k": "ann@example.com", "c": "0000000000000000"}),
        _forge({"k": "not an email", "c": "x"}),
        _forge({"k": "ann@example.com", "c": 5}),
    ],
)
def test_tampered_or_invalid_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        decode_token("users-a", token, BY_EMAIL)


def test_token_from_another_table_is_refused():
    with pytest.raises(InvalidToken, match="not issued for this table"):
        decode_token("users-b", encode_token("users-a", ANN, BY_EMAIL), BY_EMAIL)


def test_token_with_an_altered_key_is_refused():
    token = encode_token("users-a", ANN, BY_EMAIL)
    data = json.loads(base64.urlsafe_b64decode(token + "=="))
    data["k"] = "bob@example.com"
    with pytest.raises(InvalidToken, match="altered"):
        decode_token("users-a", _forge(data), BY_EMAIL)


def hand_made(scope: str, position: str) -> str:
    """A token made without the API, by anyone who reads tokens.py: its checksum is unkeyed."""
    checksum = hashlib.sha256(f"{scope}\x00{position}".encode()).hexdigest()[:16]
    return _forge({"k": position, "c": checksum})


def test_a_hand_made_token_names_the_position_its_maker_chose():
    """Validated, not signed: a well-formed token for this listing positions it wherever it says."""
    zoe = {"email": {"S": "zoe@example.com"}}
    assert decode_token("users-a", hand_made("users-a", "zoe@example.com"), BY_EMAIL) == zoe
    position = "001767225600000#" + "f" * 32
    assert decode_token("jobs/index/recent-jobs", hand_made("jobs/index/recent-jobs", position), BY_UPLOAD_TIME) == {
        "recentPk": {"S": "JOB"},
        "recentSk": {"S": position},
        "jobId": {"S": "f" * 32},
        "sk": {"S": "JOB"},
    }


def test_a_token_whose_position_is_a_lone_surrogate_is_refused_not_a_server_error():
    # JSON's `\ud800` decodes to a character UTF-8 cannot encode: the checksum could not even be computed.
    with pytest.raises(InvalidToken, match="startKey is not a page token"):
        decode_token("users-a", _forge({"k": "a\ud800", "c": "0" * 16}), BY_EMAIL)


# -- other schemas' keys ---------------------------------------------------------------------------
SKU = parse_schema(
    {"name": "products", "key": "sku", "columns": [{"name": "sku", "type": "text", "maxLength": 512}]}
).key_column
SERIAL = parse_schema({"name": "devices", "key": "serial", "columns": [{"name": "serial", "type": "integer"}]})
PRICE = parse_schema({"name": "prices", "key": "price", "columns": [{"name": "price", "type": "decimal"}]})


def test_a_token_of_another_schemas_table_is_refused():
    token = encode_token("products-a", {"sku": {"S": "ann@example.com"}}, by_key(SKU))
    with pytest.raises(InvalidToken, match="not issued for this table"):
        decode_token("users-a", token, BY_EMAIL)


@pytest.mark.parametrize(
    ("schema", "stored", "position"),
    [
        (SERIAL, {"N": "42"}, "42"),
        (SERIAL, {"N": "-7"}, "-7"),
        (PRICE, {"N": "12.5"}, "12.5"),
        (PRICE, {"N": "0"}, "0"),
        (PRICE, {"N": "1E+2"}, "100"),
    ],
)
def test_a_number_key_travels_as_its_normal_form_and_comes_back_a_number(schema, stored, position):
    key = by_key(schema.key_column)
    token = encode_token("t", {schema.key_attribute: stored}, key)
    assert json.loads(base64.urlsafe_b64decode(token + "=="))["k"] == position
    assert decode_token("t", token, key) == {schema.key_attribute: {"N": position}}


@pytest.mark.parametrize("position", ["ten", "12.50", "+3", "1e3", "NaN", "Infinity", "1E+999999", "", "4" * 39])
def test_a_position_no_number_key_can_have_is_refused_even_with_a_valid_checksum(position):
    with pytest.raises(InvalidToken, match="not a page token"):
        decode_token("t", hand_made("t", position), by_key(PRICE.key_column))


def test_the_longest_text_key_travels_in_a_token():
    """A key of 512 characters, each of them escaped to six in the token's JSON, still pages."""
    longest = "\x01" * 511 + "x"
    token = encode_token("t", {"sku": {"S": longest}}, by_key(SKU))
    assert 512 < len(token) <= MAX_TOKEN_LENGTH
    assert decode_token("t", token, by_key(SKU)) == {"sku": {"S": longest}}
