"""Page tokens: opaque, bound to their table, validated (not signed)."""

import base64
import hashlib
import json

import pytest

from handlers.query.tokens import BY_UPLOAD_TIME, InvalidToken, decode_token, encode_token


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


def hand_made(scope: str, position: str) -> str:
    """A token made without the API, by anyone who reads tokens.py: its checksum is unkeyed."""
    checksum = hashlib.sha256(f"{scope}\x00{position}".encode()).hexdigest()[:16]
    return _forge({"k": position, "c": checksum})


def test_a_hand_made_token_names_the_position_its_maker_chose():
    """Validated, not signed: a well-formed token for this listing positions it wherever it says."""
    assert decode_token("users-a", hand_made("users-a", "zoe@example.com")) == {"email": "zoe@example.com"}
    position = "001767225600000#" + "f" * 32
    assert decode_token("jobs/index/recent-jobs", hand_made("jobs/index/recent-jobs", position), BY_UPLOAD_TIME) == {
        "recentPk": "JOB",
        "recentSk": position,
        "jobId": "f" * 32,
        "sk": "JOB",
    }
