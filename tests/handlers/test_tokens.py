"""Page tokens: opaque, bound to their table, validated."""

import base64
import json

import pytest

from handlers.query.tokens import InvalidToken, decode_token, encode_token


def test_token_round_trips():
    token = encode_token("users-a", {"email": "ann@example.com"})
    assert decode_token("users-a", token) == {"email": "ann@example.com"}


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
        decode_token("users-a", token)


def test_token_from_another_table_is_refused():
    with pytest.raises(InvalidToken, match="not issued for this table"):
        decode_token("users-b", encode_token("users-a", {"email": "ann@example.com"}))


def test_token_with_an_altered_key_is_refused():
    token = encode_token("users-a", {"email": "ann@example.com"})
    data = json.loads(base64.urlsafe_b64decode(token + "=="))
    data["k"] = "bob@example.com"
    with pytest.raises(InvalidToken, match="altered"):
        decode_token("users-a", _forge(data))
