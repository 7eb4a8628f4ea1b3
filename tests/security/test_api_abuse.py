"""The query API under abuse, in local mode (dev: API key mode, its throttle as configured).

Every hostile request gets a 4xx with a JSON `{"message": ...}` body: never a 5xx, never a stack
trace, never the email (or other value) it carried repeated back. The requests go through local
mode's API Gateway, which routes, checks keys and throttles as API Gateway does, to the real query
function running from its archive with its own role.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from infra.tables import RECENT_JOBS
from tests.evidence import Proof
from tests.local.support import ApiResponse, LocalStackProcess, csv_bytes, http, job_id_for, local_stack, wait_for

SECTION = "API abuse"
ROUTES = ("/users", "/users/someone%40example.com", "/jobs", "/jobs/" + "0" * 32)
BAD_KEYS: tuple[str | None, ...] = (None, "", "not-a-key", "A" * 40)
LIMITS = ("0", "-1", "501", "99999999999999999999", "-99999999999999999999", "ten", "2.5", "1e2", "0x10", " 5", "①")
ODD_EMAILS = (
    "nul%00user@example.com",  # NUL
    "%E2%80%AEmoc.elpmaxe@user",  # right-to-left override
    "re%CC%81sume%CC%81@example.com",  # combining acute accents
    "%F0%9F%98%80@example.com",  # emoji
    "%C0%AFuser@example.com",  # overlong UTF-8 for '/'
    "%C0%80user@example.com",  # overlong UTF-8 for NUL
    "%ED%A0%80user@example.com",  # an encoded UTF-16 surrogate
    "%FF%FEuser@example.com",  # bytes that are never UTF-8
    "%EF%BB%BFuser@example.com",  # byte-order mark
    "us%E2%80%8Ber@example.com",  # zero-width space
    "user%EF%BC%A0example.com",  # full-width @
    "user@exa%0Amp%0Dle.com",  # line breaks
)
ENCODED_SLASHES = (
    "/users/a%2Fb%40example.com",
    "/users/%2F",
    "/users/..%2F..%2Fjobs",
    "/users/%2e%2e%2fjobs",
    "/jobs/%2F" + "0" * 32,
    "/jobs%2F" + "0" * 32,
)
UNKNOWN_PATHS = ("/nothing", "/users/a%40b.co/extra", "/USERS", "/jobs/x/y", "/users//", "/%00", "/.env")
OTHER_METHODS = ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Lengths either side of a regional REST API's URL quota (10,240 characters).
LONG_PATH, TOO_LONG_PATH = 9_000, 20_000
THROTTLE_REQUESTS = 300

PROOFS = [
    Proof(
        "SECURITY",
        SECTION,
        "no key or a wrong key",
        injected="each route asked with no x-api-key, an empty one, a made-up one and a key-shaped one",
        held="every request 403 {'message': 'Forbidden'} from the gateway; the function never ran",
        figures={"requests": len(ROUTES) * len(BAD_KEYS)},
        test="test_no_key_or_a_wrong_key_is_403",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "beyond the throttle",
        injected=f"{THROTTLE_REQUESTS} requests from 8 clients at once against dev's throttle (burst 100, 50/s)",
        held="those beyond the burst got 429 {'message': 'Too Many Requests'}, the rest 200; none 5xx",
        figures={"requests": THROTTLE_REQUESTS},
        test="test_requests_beyond_the_throttle_are_429",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "huge, negative and non-numeric limit",
        injected=f"limit = {', '.join(repr(v) for v in LIMITS)} on /users and /jobs",
        held="every request 400 with a JSON message naming the rule, never the value",
        figures={"requests": 2 * len(LIMITS)},
        test="test_a_limit_outside_1_to_500_is_400",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "malformed, tampered and hand-made page tokens",
        injected="real nextTokens truncated, bit-flipped, swapped between /users and /jobs, "
        "re-encoded with another key; base64 junk and a 5,000-character token; then tokens made by hand "
        "(the checksum is unkeyed) naming a listed user's email and a listed job's position",
        held="a tampered, truncated or foreign token is 400 'startKey …' with a JSON message; a well-formed "
        "token naming a position the caller chose is served the page after it, the page paging there serves, "
        "and nothing else: it only positions a listing the caller may read in full by paging",
        figures={"requests": 16, "hand-made tokens served": 2},
        test="test_tampered_page_tokens_are_400",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "encoded slashes and dot segments",
        injected="%2F and %2e%2e%2f inside {email} and {jobId} and after the route",
        held="every request 404 (no route) or 400 (not a valid path) with a JSON message; none looked up",
        figures={"requests": len(ENCODED_SLASHES)},
        test="test_encoded_slashes_never_reach_another_route",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "very long URLs",
        injected=f"{LONG_PATH:,}-character email and job id paths; a {TOO_LONG_PATH:,}-character path and query",
        held="400/404 from the function within the URL quota, 414 from the gateway beyond it; no echo",
        figures={"requests": 4},
        test="test_very_long_urls_are_refused",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "odd Unicode in emails",
        injected="NUL, RTL override, combining marks, emoji, overlong and invalid UTF-8, BOM, "
        "zero-width space, full-width @, line breaks in /users/{email}",
        held="every request 400 with a JSON message that repeats no part of the email",
        figures={"requests": len(ODD_EMAILS)},
        test="test_odd_unicode_in_an_email_is_400_without_echo",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "unknown methods and paths",
        injected=f"{', '.join(OTHER_METHODS)} on every route; GET on {len(UNKNOWN_PATHS)} unknown paths "
        "and outside the stage",
        held="405 with Allow: GET naming the route template, 404 for unknown paths, 403 outside the stage",
        figures={"requests": len(OTHER_METHODS) * len(ROUTES) + len(UNKNOWN_PATHS) + 1},
        test="test_unknown_methods_and_paths_are_405_or_404",
    ),
]
PROOF = {proof.test: proof for proof in PROOFS}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    settings = ("--set", "workerBatchingWindowSeconds=0", "--retry-delays", "1,2")
    with local_stack(tmp_path_factory.mktemp("api-abuse"), *settings) as running:
        yield running


@dataclass
class Seeded:
    """Page tokens the API really issued, for tampering with."""

    users_token: str
    jobs_token: str


@pytest.fixture(scope="module")
def seeded(local: LocalStackProcess) -> Seeded:
    """Two small uploads: enough users and jobs for a second page of each listing."""
    for number in (1, 2):
        rows = [(f"Abuse Person{number}{i}", f"abuse{number}.{i}@example.com", "") for i in range(3)]
        key = f"uploads/abuse-{number}.csv"
        version = local.upload(key, csv_bytes(("name", "mail", "phone"), rows))
        local.finished_job(job_id_for(local.outputs["bucketName"], key, version))

    def token(path: str) -> str | None:
        response = local.api(f"{path}?limit=1")
        return response.body.get("nextToken") if response.status == 200 else None

    return Seeded(
        users_token=wait_for(lambda: token("/users"), 30, "a /users page token"),
        jobs_token=wait_for(lambda: token("/jobs"), 30, "a /jobs page token"),
    )


# dev's stage admits 50 requests a second after a burst of 100: the cases below are sent at 40 a
# second, so that only the throttle's own test meets it.
PACE_SECONDS = 1 / 40
_last_sent = [0.0]


def send(local: LocalStackProcess, path: str, **options: Any) -> ApiResponse:
    """`local.api`, paced under the stage's steady rate."""
    wait = _last_sent[0] + PACE_SECONDS - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    _last_sent[0] = time.monotonic()
    return local.api(path, **options)


def assert_refused(response: ApiResponse, status: int | tuple[int, ...], *, never_repeats: str = "") -> str:
    """A 4xx of the expected status, a JSON object with a string `message`, no trace, no echo."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status in expected, f"expected {expected}, got {response.status}: {response.body!r}"
    assert isinstance(response.body, dict), f"not a JSON object: {response.body!r}"
    message = response.body.get("message")
    assert isinstance(message, str) and message, f"no message: {response.body!r}"
    text = json.dumps(response.body)
    assert "Traceback" not in text and 'File "' not in text, f"a stack trace in the body: {text[:300]}"
    if never_repeats:
        for form in {never_repeats, unquote(never_repeats, errors="replace"), unquote(never_repeats).lower()}:
            assert form not in text, "the body repeats the request's value"
    return message


def test_no_key_or_a_wrong_key_is_403(local: LocalStackProcess) -> None:
    sent = 0
    for path in ROUTES:
        for key in BAD_KEYS:
            headers = {} if key is None else {"x-api-key": key}
            response = http("GET", local.outputs["apiUrl"] + path, headers)
            sent += 1
            assert assert_refused(response, 403) == "Forbidden"
    assert sent == PROOF["test_no_key_or_a_wrong_key_is_403"].figures["requests"]


def test_a_limit_outside_1_to_500_is_400(local: LocalStackProcess) -> None:
    sent = 0
    for path in ("/users", "/jobs"):
        for limit in LIMITS:
            response = send(local, f"{path}?limit={quote(limit)}")
            sent += 1
            message = assert_refused(response, 400, never_repeats=limit.strip() if len(limit.strip()) > 2 else "")
            assert message == "limit must be a whole number from 1 to 500"
    assert sent == PROOF["test_a_limit_outside_1_to_500_is_400"].figures["requests"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _tampered(token: str, other: str) -> list[str]:
    """Ways to alter a real token: cut, flip, re-point, re-encode; and the other listing's token."""
    raw = _unb64(token)
    data = json.loads(raw)
    flipped = bytearray(raw)
    flipped[len(flipped) // 2] ^= 0x01
    return [
        token[: len(token) // 2],
        token[:-1],
        _b64(bytes(flipped)),
        _b64(json.dumps({"k": data["k"] + "x", "c": data["c"]}).encode()),
        _b64(json.dumps({"k": data["k"], "c": "0" * len(data["c"])}).encode()),
        _b64(json.dumps({"k": data["k"], "c": data["c"], "x": 1}).encode()),
        other,
        token + token,
    ]


def test_tampered_page_tokens_are_400(local: LocalStackProcess, seeded: Seeded) -> None:
    junk = ["garbage", _b64(b"[" * 4000), _b64(b"\xff\xfe\x00"), "A" * 5_000]
    cases = [("/users", t) for t in _tampered(seeded.users_token, seeded.jobs_token)]
    cases += [("/jobs", t) for t in _tampered(seeded.jobs_token, seeded.users_token)]
    cases = cases[: 16 - len(junk)] + [("/users", t) for t in junk]
    sent = 0
    for path, token in cases:
        response = send(local, f"{path}?startKey={quote(token)}")
        sent += 1
        assert "startKey" in assert_refused(response, 400, never_repeats=token)
    assert sent == PROOF["test_tampered_page_tokens_are_400"].figures["requests"]
    # The real tokens still work: the refusals above are about the tampering, not the tokens.
    assert send(local, f"/users?limit=1&startKey={seeded.users_token}").status == 200
    assert send(local, f"/jobs?limit=1&startKey={seeded.jobs_token}").status == 200
    # The checksum is not a signature: a token made by hand for a position the caller chose (the
    # first user or job listed) is served the page paging serves after it, and nothing else.
    users, jobs = _listed(local, "/users"), _listed(local, "/jobs")
    hand_made = {
        "/users": _hand_made(local.outputs["usersTableName"], users[0]["email"]),
        "/jobs": _hand_made(
            f"{local.outputs['jobsTableName']}/index/{RECENT_JOBS.name}",
            f"{jobs[0]['uploadedAtMs']:015d}#{jobs[0]['jobId']}",
        ),
    }
    served = 0
    for path, listed in (("/users", users), ("/jobs", jobs)):
        response = send(local, f"{path}?limit=2&startKey={quote(hand_made[path])}")
        served += 1
        assert listed[1:3], f"{path}: the seeded listing is too short to show a page after its first item"
        assert (response.status, response.body["items"]) == (200, listed[1:3]), path
    assert served == PROOF["test_tampered_page_tokens_are_400"].figures["hand-made tokens served"]


def _listed(local: LocalStackProcess, path: str) -> list[dict[str, Any]]:
    """Every item of a listing, in its order, by following its tokens page after page."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        body = send(local, f"{path}?limit=2" + (f"&startKey={quote(token)}" if token else "")).body
        items += body["items"]
        if not (token := body["nextToken"]):
            return items


def _hand_made(scope: str, position: str) -> str:
    """A token as anyone who reads handlers/query/tokens.py can make one: its checksum has no key."""
    checksum = hashlib.sha256(f"{scope}\x00{position}".encode()).hexdigest()[:16]
    return _b64(json.dumps({"k": position, "c": checksum}).encode())


def test_encoded_slashes_never_reach_another_route(local: LocalStackProcess) -> None:
    sent = 0
    for path in ENCODED_SLASHES:
        response = send(local, path)
        sent += 1
        message = assert_refused(response, (400, 404))
        # Refused as a route (404) or as a path the route cannot read (400), never looked up.
        refusals = ("no route GET here", "the path is not a valid")
        assert message.startswith(refusals), f"{path} was looked up: {message}"
    assert sent == PROOF["test_encoded_slashes_never_reach_another_route"].figures["requests"]


def test_very_long_urls_are_refused(local: LocalStackProcess) -> None:
    long_email = "a" * (LONG_PATH - len("@example.com")) + "@example.com"
    answers = [
        assert_refused(send(local, f"/users/{long_email}"), 400, never_repeats=long_email),
        assert_refused(send(local, "/jobs/" + "f" * LONG_PATH), 404, never_repeats="f" * 64),
        assert_refused(send(local, "/users/" + "b" * TOO_LONG_PATH + "@example.com"), 414),
        assert_refused(send(local, "/users?startKey=" + "c" * TOO_LONG_PATH), 414),
    ]
    assert answers[0] == f"mail is {len(long_email)} characters long; at most 254 allowed"
    assert answers[2:] == ["Request-URI Too Long"] * 2
    assert len(answers) == PROOF["test_very_long_urls_are_refused"].figures["requests"]


def test_odd_unicode_in_an_email_is_400_without_echo(local: LocalStackProcess) -> None:
    sent = 0
    for email in ODD_EMAILS:
        response = send(local, f"/users/{email}")
        sent += 1
        # The part that survives decoding (`user`, `example.com`) must not come back either.
        assert_refused(response, 400, never_repeats=email)
        assert "example" not in json.dumps(response.body)
    assert sent == PROOF["test_odd_unicode_in_an_email_is_400_without_echo"].figures["requests"]


def test_unknown_methods_and_paths_are_405_or_404(local: LocalStackProcess) -> None:
    sent = 0
    templates = {"/users": "/users", "/jobs": "/jobs"}
    for path in ROUTES:
        template = templates.get(path, "/users/{email}" if path.startswith("/users/") else "/jobs/{jobId}")
        for method in OTHER_METHODS:
            response = send(local, path, method=method, body=b"{}" if method in ("POST", "PUT", "PATCH") else None)
            sent += 1
            message = assert_refused(response, 405, never_repeats="someone")
            assert message == f"{method} is not allowed on {template}; use GET"
            assert response.headers.get("Allow") == "GET"
    for path in UNKNOWN_PATHS:
        response = send(local, path)
        sent += 1
        assert assert_refused(response, 404, never_repeats="a@b.co").startswith("no route GET here")
    outside = urlsplit(local.outputs["apiUrl"])._replace(path="/v2/users").geturl()
    response = http("GET", outside, {"x-api-key": local.outputs["apiKey"]})
    sent += 1
    assert_refused(response, 403)
    assert sent == PROOF["test_unknown_methods_and_paths_are_405_or_404"].figures["requests"]


def _flood(url: str, key: str, count: int) -> list[ApiResponse]:
    """`count` requests from eight clients at once, each sending as fast as it is answered: past
    the stage's steady rate once the burst is spent (one client alone already is, locally)."""
    with ThreadPoolExecutor(max_workers=8) as clients:
        return list(clients.map(lambda _: http("GET", url, {"x-api-key": key}), range(count)))


def test_requests_beyond_the_throttle_are_429(local: LocalStackProcess) -> None:
    results = _flood(local.outputs["apiUrl"] + "/jobs?limit=1", local.outputs["apiKey"], THROTTLE_REQUESTS)
    statuses = sorted({response.status for response in results})
    assert len(results) == PROOF["test_requests_beyond_the_throttle_are_429"].figures["requests"]
    assert set(statuses) <= {200, 429}, f"statuses {statuses}"
    throttled = [response.body for response in results if response.status == 429]
    assert throttled, "no request was throttled"
    assert all(body == {"message": "Too Many Requests"} for body in throttled)
    # The burst is spent, not the stack: within a few seconds the bucket refills and requests pass.
    wait_for(lambda: send(local, "/jobs?limit=1").status == 200, 10, "the throttle to let requests through again")


def test_the_stack_answered_no_5xx(local: LocalStackProcess) -> None:
    """The gateway's access log over the module: whatever was sent, nothing was a server error."""
    statuses = [int(line.split()[2]) for line in _access_log(local)]
    assert len(statuses) >= sum(p.figures["requests"] for p in PROOFS), "fewer access log lines than requests sent"
    assert [s for s in statuses if s >= 500] == []


def _access_log(local: LocalStackProcess) -> list[str]:
    """The gateway's lines `METHOD RESOURCE STATUS TIMEms REQUEST-ID` (local.apigw)."""
    text = (local.state / "logs" / "api.log").read_text()
    return [line for line in text.splitlines() if re.search(r"\b[A-Z]+ \S+ [0-9]{3} [0-9]+ms ", line)]
