"""AWS Signature Version 4, verified as AWS verifies it, in one place for all of local mode.

Every request that acts in an AWS identity's name is checked here: each request to the emulator
(every service, the local administrator's key and every IAM user's and role session's key alike, and
the emulator's fault endpoint) and each request to an AWS_IAM method of the local API Gateway.

A request carries its signature either in the `Authorization` header or, presigned, in its query
string (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
`X-Amz-Signature`), never both. The signature is recomputed from the request exactly as received:

    HTTPMethod \\n CanonicalUri \\n CanonicalQueryString \\n CanonicalHeaders \\n SignedHeaders \\n HashedPayload

signed with a key derived from the secret, the day, the region and the service
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html). S3 has
rules of its own: its path is neither normalised nor encoded twice, the payload hash is the
`x-amz-content-sha256` header it requires (`UNSIGNED-PAYLOAD` allowed), a presigned URL's is
`UNSIGNED-PAYLOAD`, and a chunked upload signs each chunk
(https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html).

Every request of the pipeline comes through here, so a check is cheap: the signing key (four HMACs)
is derived once per secret, day, region and service and kept; a request costs building its canonical
request, two SHA-256 and one HMAC, plus one SHA-256 over a body whose hash it declares.

Messages name no value from the request (paths and bodies may hold personal data): only timestamps,
header names and AWS's fixed wording.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
# A header signature is good for 15 minutes either side of its date, and a presigned URL dated more
# than 15 minutes ahead is not valid yet (RequestExpired in
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html).
MAX_SKEW = timedelta(minutes=15)
# X-Amz-Expires: 1 second to 7 days (604,800 seconds), counted from X-Amz-Date
# (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
MAX_EXPIRES_SECONDS = 7 * 24 * 60 * 60
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
# strptime costs more than the rest of a verification together: the timestamp is read by hand.
_TIMESTAMP_FORM = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{8}")
_QUERY_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_AUTHENTICATION_PARAMETERS = frozenset({*_QUERY_PARAMETERS, "X-Amz-Security-Token"})
# A session token may be added after signing: "Some services require only that you add
# X-Amz-Security-Token at the end, after you calculate the signature" (the IAM page above).
_MAY_GO_UNSIGNED = frozenset({"x-amz-security-token"})


class Failure(Enum):
    """Why a request's authentication was refused; each service answers each in its own shape."""

    MALFORMED = "malformed"
    """The authentication information is incomplete or not of SigV4's form."""
    MISMATCH = "mismatch"
    """The signature (or a chunk's) is not the one the secret gives for this request."""
    SKEWED = "skewed"
    """A header signature dated more than 15 minutes from now."""
    EXPIRED = "expired"
    """A presigned URL past X-Amz-Date + X-Amz-Expires, or dated ahead."""
    UNSIGNED_HEADERS = "unsigned headers"
    """An `x-amz-*` header, or `host`, that the signature does not cover."""
    PAYLOAD_MISMATCH = "payload mismatch"
    """The body is not the one whose SHA-256 `x-amz-content-sha256` declares (and the signature covers)."""
    BAD_PAYLOAD = "bad payload"
    """An `x-amz-content-sha256` value local mode cannot check, or a chunked body not of its form."""


class Refused(Exception):
    """A request whose authentication fails, and why."""

    def __init__(self, failure: Failure, message: str, *, service: str = "", presigned: bool = False) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.service = service
        """The signing name the request claims (`s3`, `dynamodb`, …), when it could be read."""
        self.presigned = presigned


@dataclass(frozen=True)
class Request:
    """An HTTP request as received."""

    method: str
    path: str
    """As sent: percent-encoded, without the query."""
    query: str
    """As sent, without the `?`."""
    headers: Mapping[str, str]
    """Lower-case names; a repeated header's values joined by commas."""
    body: bytes

    @classmethod
    def of(cls, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Request:
        """From a request target or URL as sent (`/path?query`, `http://host/path?query`)."""
        if target.startswith("/"):  # not urlsplit's: `//a/b` is a path here, not a host
            path, _, query = target.partition("?")
        else:
            parts = urlsplit(target)
            path, query = parts.path, parts.query
        return cls(method, path or "/", query, {k.lower(): v for k, v in headers.items()}, body)


@dataclass(frozen=True)
class Signature:
    """The SigV4 authentication a request carries, read but not yet verified."""

    access_key_id: str
    date: str
    """The credential scope's day, `YYYYMMDD`."""
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    """The request's time, `YYYYMMDDTHHMMSSZ` (X-Amz-Date, or the Date header's)."""
    signed_at: datetime
    """`timestamp`, read."""
    session_token: str | None
    expires_seconds: int | None = None
    """X-Amz-Expires of a presigned URL; None for a header signature."""

    @property
    def presigned(self) -> bool:
        return self.expires_seconds is not None

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    def refused(self, failure: Failure, message: str) -> Refused:
        return Refused(failure, message, service=self.service, presigned=self.presigned)


# ---------------------------------------------------------------------------------------------
# Reading


def parse(request: Request) -> Signature | None:
    """The request's SigV4 authentication; None when it carries none. Raises Refused when it carries
    some that is not of SigV4's form."""
    authorization = request.headers.get("authorization")
    pairs = [(name, value) for name, value in _query_pairs(request.query) if name in _AUTHENTICATION_PARAMETERS]
    in_query = {name: value for name, value in pairs if name in _QUERY_PARAMETERS}
    if authorization is None and not in_query:
        return None
    service, presigned = _claimed_service(authorization, in_query), authorization is None
    if len(pairs) != len({name for name, _ in pairs}):  # one read by the verifier, another by moto
        raise Refused(
            Failure.MALFORMED,
            "Each query-string authentication parameter (X-Amz-*) may be given once",
            service=service,
            presigned=presigned,
        )
    if authorization is not None and in_query:
        raise Refused(
            Failure.MALFORMED,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header",
            service=service,
        )
    if authorization is not None:
        fields = _authorization_fields(authorization, service)
        timestamp = request.headers.get("x-amz-date") or _iso_timestamp(request.headers.get("date"))
        if not timestamp:
            raise Refused(
                Failure.MALFORMED,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                service=service,
            )
        return _signature(fields, timestamp, request.headers.get("x-amz-security-token"), None, service)
    missing = [name for name in _QUERY_PARAMETERS if not in_query.get(name)]
    if missing:
        raise Refused(
            Failure.MALFORMED,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            service=service,
            presigned=presigned,
        )
    if in_query["X-Amz-Algorithm"] != ALGORITHM:
        raise Refused(
            Failure.MALFORMED, f'X-Amz-Algorithm only supports "{ALGORITHM}"', service=service, presigned=True
        )
    expires = in_query["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_EXPIRES_SECONDS:
        raise Refused(
            Failure.MALFORMED,
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_SECONDS} (seven days)",
            service=service,
            presigned=True,
        )
    fields = {
        "Credential": in_query["X-Amz-Credential"],
        "SignedHeaders": in_query["X-Amz-SignedHeaders"],
        "Signature": in_query["X-Amz-Signature"],
    }
    token = dict(_query_pairs(request.query)).get("X-Amz-Security-Token")
    return _signature(fields, in_query["X-Amz-Date"], token, int(expires), service)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """Each `name=value` of a query string, decoded (`+` is a plus sign, as SigV4 reads it)."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


_SCOPE = re.compile(r"/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
# "There is no comma between the algorithm and Credential, but the other elements must be separated
# by commas" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-authentication-methods.html),
# a space after each comma as every SDK writes it, or none. Signed header names are lower-case, joined
# by `;`; the signature is 64 lower-case hex digits (the IAM page on signed requests above).
_AUTHORIZATION = re.compile(
    ALGORITHM + r" Credential=(?P<credential>[^,\s]+), *SignedHeaders=(?P<headers>[a-z0-9-]+(?:;[a-z0-9-]+)*)"
    r", *Signature=(?P<signature>[0-9a-f]{64})"
)


def _claimed_service(authorization: str | None, in_query: Mapping[str, str]) -> str:
    """The signing name a request claims, read loosely, so even a malformed one is answered in its
    service's shape."""
    match = _SCOPE.search(authorization if authorization is not None else in_query.get("X-Amz-Credential", ""))
    return match.group(1) if match else ""


def _authorization_fields(authorization: str, service: str) -> dict[str, str]:
    """`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, exactly: each field once, in that
    order, nothing else. A header read loosely is a header two readers may read differently: moto
    picks its service from the first `Credential=` it finds, so a second one would have the request
    verified for one service and served by another."""
    algorithm, _, _ = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise Refused(Failure.MALFORMED, f"local mode accepts {ALGORITHM} signatures only", service=service)
    matched = _AUTHORIZATION.fullmatch(authorization.strip())
    if matched is None:
        raise Refused(
            Failure.MALFORMED,
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature', each once and in "
            f"that order: {ALGORITHM} Credential=..., SignedHeaders=..., Signature=...",
            service=service,
        )
    return {"Credential": matched["credential"], "SignedHeaders": matched["headers"], "Signature": matched["signature"]}


def _iso_timestamp(http_date: str | None) -> str:
    """An HTTP `Date` header as SigV4's timestamp; empty when absent or unreadable."""
    if not http_date:
        return ""
    try:
        return parsedate_to_datetime(http_date).astimezone(UTC).strftime(_TIMESTAMP)
    except (TypeError, ValueError):
        return ""


def _signature(
    fields: Mapping[str, str], timestamp: str, token: str | None, expires: int | None, service: str
) -> Signature:
    presigned = expires is not None
    parts = fields["Credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not _DATE.fullmatch(parts[1]) or not all(parts):
        raise Refused(
            Failure.MALFORMED,
            "Credential should be scoped to a valid date, region and service: "
            "<access key>/<YYYYMMDD>/<region>/<service>/aws4_request",
            service=service,
            presigned=presigned,
        )
    matched = _TIMESTAMP_FORM.fullmatch(timestamp)
    try:
        signed_at = datetime(*map(int, matched.groups()), tzinfo=UTC) if matched else None
    except ValueError:  # no such day or time
        signed_at = None
    if signed_at is None:
        raise Refused(
            Failure.MALFORMED,
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            service=service,
            presigned=presigned,
        )
    if timestamp[:8] != parts[1]:
        raise Refused(
            Failure.MALFORMED,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
            service=service,
            presigned=presigned,
        )
    return Signature(
        access_key_id=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
        timestamp=timestamp,
        signed_at=signed_at,
        session_token=token,
        expires_seconds=expires,
    )


# ---------------------------------------------------------------------------------------------
# Verifying


def verify(signature: Signature, secret: str, request: Request, *, now: datetime | None = None) -> None:
    """Raises Refused unless the request is the one the secret signed, in time, with the body it signed:

    1. the signature over the canonical request;
    2. `host` and every `x-amz-*` header signed ("You must include the host header … and any x-amz-*
       headers in the signature", the IAM page above);
    3. a header signature within 15 minutes of now; a presigned URL within X-Amz-Expires of its date;
    4. the body: its SHA-256 when `x-amz-content-sha256` declares one, each chunk's signature for a
       chunk-signed upload.
    """
    payload_hash, declared = _payload_hash(signature, request)
    canonical = canonical_request(signature, request, payload_hash)
    expected = _hmac_hex(
        _signing_key(secret, signature.date, signature.region, signature.service), _to_sign(signature, canonical)
    )
    if not hmac.compare_digest(expected, signature.signature):
        raise signature.refused(Failure.MISMATCH, MISMATCH_MESSAGE)
    _check_signed_headers(signature, request)
    _check_time(signature, now or datetime.now(UTC))
    if declared:
        _check_payload(signature, secret, request, payload_hash)


def canonical_request(signature: Signature, request: Request, payload_hash: str) -> str:
    s3 = signature.service == "s3"
    headers = "".join(f"{name}:{_trim(request.headers.get(name, ''))}\n" for name in signature.signed_headers)
    return "\n".join(
        [
            request.method,
            _canonical_uri(request.path, s3=s3),
            _canonical_query(request.query, presigned=signature.presigned),
            headers,
            ";".join(signature.signed_headers),
            payload_hash,
        ]
    )


def _canonical_uri(path: str, *, s3: bool) -> str:
    """S3: each segment URI-encoded once, as it is (`a//b/../c` names an object). Every other
    service: the path normalised (no `.`, `..` or empty segments) and the path as sent encoded once
    more, each segment thus encoded twice: an `@` sent as is signs as `%40`, one sent as `%40` as
    `%2540`, as botocore signs them (curl 7.88 signs the path as sent, unencoded, and curl 8.9 to 8.13
    leave an escape such as `%40` as it is: AWS refuses both as much as this).

    The encoding is of the bytes sent: a server hands the request line over as latin-1 text, one
    character a byte (http.server; werkzeug's RAW_URI, WSGI's PEP 3333), so raw UTF-8 in a path
    (AWS's test suite, "get-utf8": `/ሴ` → `/%E1%88%B4`) signs as its bytes."""
    if s3:
        return "/".join(quote(unquote_to_bytes(_sent(segment)), safe="~") for segment in path.split("/")) or "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalised = "/" + "/".join(segments) + ("/" if segments and path.endswith("/") else "")
    return quote(_sent(normalised), safe="/~")


def _sent(text: str) -> bytes:
    """The bytes a path held on the wire: latin-1 text as servers hand it over; text latin-1 cannot
    hold (given by a caller, not read off a socket) as UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


def _canonical_query(query: str, *, presigned: bool) -> str:
    """Names and values URI-encoded separately, sorted by name then value; a presigned URL's
    X-Amz-Signature left out."""
    pairs = sorted(
        (quote(name, safe="~"), quote(value, safe="~"))
        for name, value in _query_pairs(query)
        if not (presigned and name == "X-Amz-Signature")
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def _trim(value: str) -> str:
    """Leading and trailing spaces removed, sequential spaces made one."""
    return " ".join(value.split())


def _payload_hash(signature: Signature, request: Request) -> tuple[str, bool]:
    """The canonical request's HashedPayload, and whether the request declared it
    (`x-amz-content-sha256`) rather than it being computed here from the body."""
    declared = request.headers.get("x-amz-content-sha256")
    if declared is not None:
        return declared, True
    if signature.service == "s3":
        if signature.presigned:
            return UNSIGNED_PAYLOAD, False
        raise signature.refused(Failure.MALFORMED, "Missing required header for this request: x-amz-content-sha256")
    return hashlib.sha256(request.body).hexdigest(), False


def _to_sign(signature: Signature, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{signature.timestamp}\n{signature.scope}\n{digest}"


@functools.lru_cache(maxsize=1024)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _check_signed_headers(signature: Signature, request: Request) -> None:
    signed = set(signature.signed_headers)
    unsigned = sorted(
        name for name in request.headers if name.startswith("x-amz-") and name not in signed | _MAY_GO_UNSIGNED
    )
    if "host" not in signed:
        unsigned.insert(0, "host")
    if unsigned:
        raise signature.refused(
            Failure.UNSIGNED_HEADERS,
            f"There were headers present in the request which were not signed: {', '.join(unsigned)}",
        )


def _check_time(signature: Signature, now: datetime) -> None:
    signed_at = signature.signed_at
    if signature.expires_seconds is not None:
        if signed_at - now > MAX_SKEW:
            raise signature.refused(Failure.EXPIRED, "Request is not yet valid")
        if now > signed_at + timedelta(seconds=signature.expires_seconds):
            raise signature.refused(Failure.EXPIRED, "Request has expired")
        return
    if now - signed_at > MAX_SKEW:
        earliest = (now - MAX_SKEW).strftime(_TIMESTAMP)
        raise signature.refused(
            Failure.SKEWED,
            f"Signature expired: {signature.timestamp} is now earlier than {earliest} "
            f"({now.strftime(_TIMESTAMP)} - 15 min.)",
        )
    if signed_at - now > MAX_SKEW:
        latest = (now + MAX_SKEW).strftime(_TIMESTAMP)
        raise signature.refused(
            Failure.SKEWED,
            f"Signature not yet current: {signature.timestamp} is still later than {latest} "
            f"({now.strftime(_TIMESTAMP)} + 15 min.)",
        )


def _check_payload(signature: Signature, secret: str, request: Request, declared: str) -> None:
    """The body against what `x-amz-content-sha256` (signed) declares."""
    if _HEX_SHA256.fullmatch(declared):
        if hashlib.sha256(request.body).hexdigest() != declared:
            raise signature.refused(
                Failure.PAYLOAD_MISMATCH, "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
    elif declared == STREAMING_SIGNED_PAYLOAD:
        _check_chunks(signature, secret, request)
    elif declared not in (UNSIGNED_PAYLOAD, STREAMING_UNSIGNED_PAYLOAD_TRAILER):
        # STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER and SigV4a's ECDSA values included: no client of
        # local mode sends them, and a body local mode cannot check is refused, not let through.
        raise signature.refused(
            Failure.BAD_PAYLOAD,
            f"x-amz-content-sha256 must be a SHA-256, {UNSIGNED_PAYLOAD}, {STREAMING_SIGNED_PAYLOAD} "
            f"or {STREAMING_UNSIGNED_PAYLOAD_TRAILER} in local mode",
        )


def _check_chunks(signature: Signature, secret: str, request: Request) -> None:
    """A chunked upload: `hex-size;chunk-signature=sig\\r\\n data \\r\\n` … up to an empty chunk,
    each signature over (previous signature, chunk), the first chained from the seed (the request's)."""
    key = _signing_key(secret, signature.date, signature.region, signature.service)
    body, position, decoded, previous = request.body, 0, 0, signature.signature
    while True:
        line_end = body.find(b"\r\n", position)
        size_text, _, extension = body[position : max(line_end, position)].decode("latin-1").partition(";")
        name, _, chunk_signature = extension.partition("=")
        try:
            size = int(size_text, 16)
        except ValueError:
            size = -1
        start = line_end + 2
        data = body[start : start + size]
        if (
            line_end < 0
            or size < 0
            or name != "chunk-signature"
            or len(data) != size
            or body[start + size : start + size + 2] != b"\r\n"
        ):
            raise signature.refused(Failure.BAD_PAYLOAD, "the aws-chunked body is not of its documented form")
        to_sign = "\n".join(
            [
                f"{ALGORITHM}-PAYLOAD",
                signature.timestamp,
                signature.scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        if not hmac.compare_digest(_hmac_hex(key, to_sign), chunk_signature):
            raise signature.refused(Failure.MISMATCH, f"A chunk's signature does not match. {MISMATCH_MESSAGE}")
        previous, position, decoded = chunk_signature, start + size + 2, decoded + size
        if size == 0:
            break
    if position != len(body) or request.headers.get("x-amz-decoded-content-length") != str(decoded):
        raise signature.refused(
            Failure.BAD_PAYLOAD, "the aws-chunked body does not end at its empty chunk or x-amz-decoded-content-length"
        )
