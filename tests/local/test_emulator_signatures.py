"""The emulator authenticates every request as AWS does: a SigV4 signature checked for every key (the
local administrator's, IAM users', role sessions'), header-signed or presigned, within its time, and
no answer at all to a web browser.

The attacker is a web page the local user visits (it can make the browser send any URL to
127.0.0.1, with an `Origin` and `Sec-Fetch-*` headers it cannot remove) or a same-account principal
who knows an access key id but not its secret. Requests are made over HTTP exactly as such a client
would send them; botocore signs the legitimate ones, as every client of the emulator does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import json
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from local import sigv4
from local.apigw import ApiGateway, InvokeOutcome
from local.emulator import Credentials, Emulator, FaultsEndpoint
from local.registry import ApiMethod, InvokePermission, RestApiSpec
from tests.evidence import Proof
from tests.local.conftest import REGION
from tests.local.support import iam_user

ZERO_SIGNATURE = "0" * 64
EVIL_ORIGIN = "http://evil.example"
DOCUMENT = b"name,mail\nAnn,ann@signatures.test\n"

REFUSED = Proof(
    "SECURITY",
    "Local mode",
    "forged, stale and cross-origin requests to the emulator",
    injected=(
        "over HTTP to the emulator: the administrator's key with a wrong secret (boto3) and a zero signature "
        "(presigned URL and Authorization header), a role session's key and an IAM user's key with wrong "
        "secrets, a presigned URL past its X-Amz-Expires, one whose X-Amz-Expires was raised after signing, "
        "one with an added query parameter, a header signature dated 20 minutes ago, a signed body swapped "
        "after signing, an unsigned x-amz-* header on a presigned URL, the fault endpoint signed 20 minutes "
        "ago; and a correct presigned GET sent with Origin: http://evil.example, with Sec-Fetch-Site: "
        "cross-site, and as an OPTIONS preflight"
    ),
    held=(
        "every one refused before moto in the service's own error shape (SignatureDoesNotMatch, "
        "InvalidSignatureException, AccessDenied 'Request has expired', RequestTimeTooSkewed, "
        "XAmzContentSHA256Mismatch) or 403 for a browser, none with an Access-Control-* header; nothing "
        "listed, read or written"
    ),
    figures={"forged or stale requests refused": 13, "cross-origin requests refused": 3},
    test="test_forged_stale_and_cross_origin_requests_are_refused",
)
SERVED = Proof(
    "SECURITY",
    "Local mode",
    "correctly signed requests to the emulator",
    injected=(
        "a presigned GET of an upload (urllib, no SDK), boto3 calls of S3, DynamoDB, SQS, STS, IAM and "
        "Lambda as the administrator, a role session's calls, an S3 upload with a CRC32 checksum, a "
        "multipart upload, and a chunk-signed upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)"
    ),
    held="each served, its answer carrying no Access-Control-* header",
    figures={"signed requests served": 12},
    test="test_correctly_signed_requests_are_served_without_cors_headers",
)
PROOFS = [REFUSED, SERVED]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def cors(self) -> list[str]:
        """The Access-Control-* headers of the answer (none may ever be sent)."""
        return [name for name, _ in self.headers if name.lower().startswith("access-control-")]

    @property
    def code(self) -> str:
        """The error code, from an XML (S3, query protocol) or JSON body."""
        text = self.body.decode(errors="replace")
        if "<Code>" in text:
            return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        try:
            data = json.loads(text)
        except ValueError:
            return ""
        return str(data.get("__type", data.get("message", ""))).rsplit("#", 1)[-1]


def send(method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Answer:
    """One request, its target, headers and body exactly as given."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if (body or method in ("PUT", "POST")) and not any(n.lower() == "content-length" for n in headers or {}):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def boto(credentials: BotoCredentials | Credentials) -> BotoCredentials:
    if isinstance(credentials, BotoCredentials):
        return credentials
    return BotoCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)


def header_signed(
    credentials: BotoCredentials | Credentials, service: str, method: str, url: str, body: bytes = b""
) -> dict[str, str]:
    """The headers botocore signs a request with (S3's signer for s3: x-amz-content-sha256, no normalising)."""
    request = AWSRequest(method=method, url=url, data=body)
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(boto(credentials), service, REGION).add_auth(request)
    return dict(request.headers.items())


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """botocore signs as if it were `moment` (the signer's clock, not the emulator's)."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment.astimezone(UTC).replace(tzinfo=None)):
        yield


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def upload(emulator: Emulator) -> tuple[str, str]:
    """A bucket holding one upload: (bucket, key)."""
    bucket = unique("signatures")
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="uploads/people.csv", Body=DOCUMENT)
    return bucket, "uploads/people.csv"


def presigned(emulator: Emulator, bucket: str, key: str, seconds: int = 3600, method: str = "get_object") -> str:
    """A SigV4 presigned URL (botocore presigns S3 with SigV2 unless told otherwise, and SigV2 is no
    signature the emulator accepts)."""
    admin = emulator.admin
    client = boto3.session.Session(
        aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key, region_name=REGION
    ).client(
        "s3",
        endpoint_url=emulator.endpoint_url,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return client.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds)


def with_query(url: str, **changes: str) -> str:
    """`url` with query parameters replaced or added, the rest byte for byte as signed."""
    parts = urllib.parse.urlsplit(url)
    pairs = [p for p in parts.query.split("&") if p.split("=", 1)[0] not in changes]
    pairs += [f"{name}={urllib.parse.quote(value, safe='')}" for name, value in changes.items()]
    return urllib.parse.urlunsplit(parts._replace(query="&".join(pairs)))


def no_retries(emulator: Emulator, service: str, credentials: Credentials) -> Any:
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=REGION,
    ).client(
        service,
        endpoint_url=emulator.endpoint_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def refused_call(call: Callable[[], Any]) -> Answer:
    """The answer a boto3 call was refused with (it must be refused)."""
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    headers = list(response["ResponseMetadata"].get("HTTPHeaders", {}).items())
    code = response["Error"]["Code"]  # as botocore parsed it from the service's shape
    return Answer(response["ResponseMetadata"]["HTTPStatusCode"], headers, f"<Code>{code}</Code>".encode())


def role_credentials(emulator: Emulator) -> Credentials:
    iam, name = emulator.client("iam"), unique("role")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=json.dumps(allow_all))
    return emulator.assume_role(arn, name)


def user_credentials(emulator: Emulator) -> Credentials:
    allow_all = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    return iam_user(emulator.client("iam"), unique("user"), allow_all).credentials


def wrong_secret(credentials: Credentials) -> Credentials:
    return Credentials(credentials.access_key_id, "not-the-secret", credentials.session_token)


# --- what is refused ---------------------------------------------------------------------------


def test_forged_stale_and_cross_origin_requests_are_refused(emulator: Emulator, upload: tuple[str, str]) -> None:
    bucket, key = upload
    endpoint = emulator.endpoint_url
    admin = emulator.admin
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    twenty_minutes_ago = datetime.now(UTC) - timedelta(minutes=20)
    with clock_at(an_hour_ago - timedelta(hours=1)):
        expired_url = presigned(emulator, bucket, key, seconds=3600)
    with clock_at(twenty_minutes_ago):
        stale_headers = header_signed(admin, "s3", "GET", f"{endpoint}/")
        stale_faults = header_signed(admin, "local", "GET", f"{endpoint}/_local/faults")
    zero_authorization = header_signed(admin, "s3", "GET", f"{endpoint}/")
    zero_authorization["Authorization"] = zero_authorization["Authorization"].rsplit("=", 1)[0] + "=" + ZERO_SIGNATURE
    swapped_body = header_signed(admin, "s3", "PUT", f"{endpoint}/{bucket}/uploads/swapped.csv", DOCUMENT)
    put_url = presigned(emulator, bucket, "uploads/copied.csv", method="put_object")
    role, user = role_credentials(emulator), user_credentials(emulator)

    # (what was tried, the answer, the status and error code it must get)
    forged: list[tuple[str, Answer, int, str]] = [
        (
            "admin key, wrong secret (boto3 S3)",
            refused_call(lambda: no_retries(emulator, "s3", wrong_secret(admin)).list_buckets()),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "admin key, wrong secret (boto3 DynamoDB)",
            refused_call(lambda: no_retries(emulator, "dynamodb", wrong_secret(admin)).list_tables()),
            400,
            "InvalidSignatureException",
        ),
        (
            "zero signature, presigned",
            send("GET", with_query(presigned(emulator, bucket, key), **{"X-Amz-Signature": ZERO_SIGNATURE})),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "zero signature, Authorization header",
            send("GET", f"{endpoint}/", zero_authorization),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "role session key, wrong secret",
            refused_call(lambda: no_retries(emulator, "sqs", wrong_secret(role)).list_queues()),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "IAM user key, wrong secret",
            refused_call(lambda: no_retries(emulator, "s3", wrong_secret(user)).get_object(Bucket=bucket, Key=key)),
            403,
            "SignatureDoesNotMatch",
        ),
        ("presigned URL past X-Amz-Expires", send("GET", expired_url), 403, "AccessDenied"),
        (
            "presigned URL, X-Amz-Expires raised after signing",
            send("GET", with_query(expired_url, **{"X-Amz-Expires": "604800"})),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "presigned URL, a query parameter added",
            send("GET", with_query(presigned(emulator, bucket, key), **{"response-content-type": "text/html"})),
            403,
            "SignatureDoesNotMatch",
        ),
        ("header signature 20 minutes old", send("GET", f"{endpoint}/", stale_headers), 403, "RequestTimeTooSkewed"),
        (
            "signed body swapped after signing",
            send("PUT", f"{endpoint}/{bucket}/uploads/swapped.csv", swapped_body, DOCUMENT.replace(b"Ann", b"Eve")),
            400,
            "XAmzContentSHA256Mismatch",
        ),
        (
            "unsigned x-amz-copy-source on a presigned PUT",
            send("PUT", put_url, {"x-amz-copy-source": f"/{bucket}/{key}"}),
            403,
            "AccessDenied",
        ),
        ("fault endpoint signed 20 minutes ago", send("GET", f"{endpoint}/_local/faults", stale_faults), 403, ""),
    ]
    good_url = presigned(emulator, bucket, key)
    cross_origin: list[tuple[str, Answer, int, str]] = [
        ("presigned GET with Origin", send("GET", good_url, {"Origin": EVIL_ORIGIN}), 403, ""),
        ("presigned GET with Sec-Fetch-Site", send("GET", good_url, {"Sec-Fetch-Site": "cross-site"}), 403, ""),
        (
            "CORS preflight",
            send(
                "OPTIONS",
                f"{endpoint}/",
                {"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "GET", "Sec-Fetch-Mode": "cors"},
            ),
            403,
            "",
        ),
    ]

    for what, answer, status, code in forged + cross_origin:
        assert (answer.status, answer.code if code else "") == (status, code), what
        assert answer.cors == [], what
        assert DOCUMENT not in answer.body and b"<Bucket>" not in answer.body, what
    for what, answer, _, _ in cross_origin:
        assert "browser" in json.loads(answer.body)["message"], what
    keys = {o["Key"] for o in emulator.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert not keys & {"uploads/swapped.csv", "uploads/copied.csv"}  # neither was written
    assert len(forged) == REFUSED.figures["forged or stale requests refused"]
    assert len(cross_origin) == REFUSED.figures["cross-origin requests refused"]


def test_every_service_answers_a_wrong_signature_in_its_own_shape(emulator: Emulator) -> None:
    forged = wrong_secret(emulator.admin)
    calls = {
        "sts": lambda: no_retries(emulator, "sts", forged).get_caller_identity(),
        "iam": lambda: no_retries(emulator, "iam", forged).list_roles(),
        "lambda": lambda: no_retries(emulator, "lambda", forged).list_functions(),
        "logs": lambda: no_retries(emulator, "logs", forged).describe_log_groups(),
        "sqs": lambda: no_retries(emulator, "sqs", forged).list_queues(),
    }

    answers = {service: refused_call(call) for service, call in calls.items()}

    assert {service: (a.status, a.code) for service, a in answers.items()} == {
        "sts": (403, "SignatureDoesNotMatch"),
        "iam": (403, "SignatureDoesNotMatch"),
        "lambda": (403, "InvalidSignatureException"),
        "logs": (400, "InvalidSignatureException"),
        "sqs": (403, "SignatureDoesNotMatch"),
    }


def test_an_unsigned_request_is_refused_whoever_it_names(emulator: Emulator, upload: tuple[str, str]) -> None:
    bucket, key = upload
    credential = f"{emulator.admin.access_key_id}/20990101/{REGION}/s3/aws4_request"

    bare = send("GET", f"{emulator.endpoint_url}/{bucket}/{key}")
    named_only = send("GET", f"{emulator.endpoint_url}/{bucket}/{key}?X-Amz-Credential={credential}")

    assert bare.status == 403
    assert (named_only.status, named_only.code) == (400, "AuthorizationQueryParametersError")
    assert DOCUMENT not in bare.body and DOCUMENT not in named_only.body


# --- what is served ----------------------------------------------------------------------------


def chunk_signed_put(credentials: Credentials, url: str, chunks: list[bytes]) -> tuple[dict[str, str], bytes]:
    """A PUT whose body is sent in signed chunks, signed as AWS's chunked-upload page describes
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html): the seed signature over the
    headers with x-amz-content-sha256 `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, then each chunk's signature
    chained from the previous one; the last chunk is empty. Written from the page, independently of
    `local.sigv4`, and checked against the page's own example below."""
    decoded = sum(len(chunk) for chunk in chunks)
    encoded_length = sum(len(f"{len(c):x};chunk-signature={ZERO_SIGNATURE}\r\n") + len(c) + 2 for c in [*chunks, b""])
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "Content-Encoding": "aws-chunked",
            "Content-Length": str(encoded_length),
            "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "X-Amz-Decoded-Content-Length": str(decoded),
        },
    )
    signer = SigV4Auth(boto(credentials), "s3", REGION)
    signer._normalize_url_path = lambda path: path  # S3: the path as sent (what S3SigV4Auth does)
    signer.add_auth(request)
    timestamp = request.context["timestamp"]
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    body = b"".join(
        chain_chunks(
            credentials.secret_access_key, timestamp, f"{timestamp[:8]}/{REGION}/s3/aws4_request", seed, chunks
        )
    )
    return dict(request.headers.items()), body


def chain_chunks(secret: str, timestamp: str, scope: str, seed: str, chunks: list[bytes]) -> Iterator[bytes]:
    date, region, service, _ = scope.split("/")
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    previous = seed
    for chunk in [*chunks, b""]:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                timestamp,
                scope,
                previous,
                hashlib.sha256(b"").hexdigest(),
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        yield f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"


def test_correctly_signed_requests_are_served_without_cors_headers(emulator: Emulator, upload: tuple[str, str]) -> None:
    bucket, key = upload
    admin, role = emulator.admin, role_credentials(emulator)
    served: list[tuple[str, Answer]] = []

    def answered(what: str, call: Callable[[], Any]) -> Any:
        result = call()
        headers = list(result["ResponseMetadata"].get("HTTPHeaders", {}).items())
        served.append((what, Answer(result["ResponseMetadata"]["HTTPStatusCode"], headers, b"")))
        return result

    via_url = send("GET", presigned(emulator, bucket, key))
    served.append(("presigned GET", via_url))
    s3 = no_retries(emulator, "s3", admin)
    answered("S3 ListBuckets", s3.list_buckets)
    answered("DynamoDB ListTables", no_retries(emulator, "dynamodb", admin).list_tables)
    answered("SQS ListQueues", no_retries(emulator, "sqs", admin).list_queues)
    answered("STS GetCallerIdentity", no_retries(emulator, "sts", admin).get_caller_identity)
    answered("IAM ListRoles", no_retries(emulator, "iam", admin).list_roles)
    answered("Lambda ListFunctions", no_retries(emulator, "lambda", admin).list_functions)
    answered("role session GetObject", lambda: no_retries(emulator, "s3", role).get_object(Bucket=bucket, Key=key))
    answered("role session GetCallerIdentity", no_retries(emulator, "sts", role).get_caller_identity)
    answered(
        "PutObject with a CRC32 checksum",
        lambda: s3.put_object(Bucket=bucket, Key="uploads/crc.csv", Body=DOCUMENT, ChecksumAlgorithm="CRC32"),
    )
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="uploads/parts.csv")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="uploads/parts.csv", UploadId=upload_id, PartNumber=1, Body=DOCUMENT)
    answered(
        "multipart upload",
        lambda: s3.complete_multipart_upload(
            Bucket=bucket,
            Key="uploads/parts.csv",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        ),
    )
    chunked_url = f"{emulator.endpoint_url}/{bucket}/uploads/chunked.csv"
    headers, body = chunk_signed_put(admin, chunked_url, [DOCUMENT[:20], DOCUMENT[20:]])
    served.append(("chunk-signed PutObject", send("PUT", chunked_url, headers, body)))

    assert [(what, answer.status) for what, answer in served] == [(what, 200) for what, _ in served]
    assert [(what, answer.cors) for what, answer in served] == [(what, []) for what, _ in served]
    assert via_url.body == DOCUMENT
    assert s3.get_object(Bucket=bucket, Key="uploads/chunked.csv")["Body"].read() == DOCUMENT
    assert len(served) == SERVED.figures["signed requests served"]


def test_a_tampered_chunk_is_refused(emulator: Emulator, upload: tuple[str, str]) -> None:
    bucket, _ = upload
    url = f"{emulator.endpoint_url}/{bucket}/uploads/tampered.csv"
    headers, body = chunk_signed_put(emulator.admin, url, [DOCUMENT])

    answer = send("PUT", url, headers, body.replace(b"Ann", b"Eve"))

    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError):
        emulator.client("s3").head_object(Bucket=bucket, Key="uploads/tampered.csv")


def test_the_fault_endpoint_takes_a_fresh_administrator_signature(emulator: Emulator) -> None:
    endpoint = FaultsEndpoint(emulator.endpoint_url, emulator.admin)
    endpoint.clear()
    with clock_at(datetime.now(UTC) - timedelta(minutes=20)):
        stale = header_signed(emulator.admin, "local", "POST", f"{emulator.endpoint_url}/_local/faults", b"{}")

    answer = send("POST", f"{emulator.endpoint_url}/_local/faults", stale, b"{}")

    assert answer.status == 403
    assert endpoint.list() == []


# --- the verifier against AWS's own examples ---------------------------------------------------
# The S3 API reference's signature examples: key AKIAIOSFODNN7EXAMPLE, its published secret, signed
# at 20130524T000000Z for us-east-1, each with the signature the page gives.

EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_TIME = datetime(2013, 5, 24, 0, 5, tzinfo=UTC)


def test_aws_header_signature_example_verifies() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object"
    request = sigv4.Request(
        method="GET",
        path="/test.txt",
        query="",
        headers={
            "host": "examplebucket.s3.amazonaws.com",
            "range": "bytes=0-9",
            "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(),
            "x-amz-date": "20130524T000000Z",
            "authorization": (
                f"AWS4-HMAC-SHA256 Credential={EXAMPLE_KEY}/20130524/us-east-1/s3/aws4_request,"
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
        },
        body=b"",
    )
    signature = sigv4.parse(request)
    assert signature is not None
    sigv4.verify(signature, EXAMPLE_SECRET, request, now=EXAMPLE_TIME)
    with pytest.raises(sigv4.Refused) as refused:
        sigv4.verify(
            signature,
            EXAMPLE_SECRET,
            dataclasses.replace(request, headers={**request.headers, "range": "bytes=0-99"}),
            now=EXAMPLE_TIME,
        )
    assert refused.value.failure is sigv4.Failure.MISMATCH


def test_aws_presigned_url_example_verifies_until_it_expires() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html, "Example"
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={EXAMPLE_KEY}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    request = sigv4.Request("GET", "/test.txt", query, {"host": "examplebucket.s3.amazonaws.com"}, b"")
    signature = sigv4.parse(request)
    assert signature is not None

    sigv4.verify(signature, EXAMPLE_SECRET, request, now=EXAMPLE_TIME + timedelta(hours=23))
    with pytest.raises(sigv4.Refused) as expired:
        sigv4.verify(signature, EXAMPLE_SECRET, request, now=EXAMPLE_TIME + timedelta(hours=24, seconds=1))
    assert (expired.value.failure, expired.value.message) == (sigv4.Failure.EXPIRED, "Request has expired")


def test_aws_chunked_upload_example_verifies() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html, "Example: PUT Object":
    # 64 KiB then 1 KiB of 'a'; the page gives the seed and each chunk's signature.
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    chunks = [b"a" * 65536, b"a" * 1024]
    body = b"".join(
        chain_chunks(EXAMPLE_SECRET, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request", seed, chunks)
    )
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={EXAMPLE_KEY}/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            f"x-amz-decoded-content-length;x-amz-storage-class,Signature={seed}"
        ),
    }
    request = sigv4.Request("PUT", "/examplebucket/chunkObject.txt", "", headers, body)
    signature = sigv4.parse(request)
    assert signature is not None

    assert len(body) == 66824
    assert b"chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648" in body
    assert b"chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497" in body
    assert b"chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9" in body
    sigv4.verify(signature, EXAMPLE_SECRET, request, now=EXAMPLE_TIME)


# AWS's SigV4 test suite (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html),
# "get-utf8": `GET /ሴ` signed at 20150830T123600Z in us-east-1 for the service `service`, with the
# suite's key; its canonical URI is /%E1%88%B4.
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_aws_utf8_path_example_verifies_from_the_bytes_sent() -> None:
    # A server hands the request line over as latin-1 text, one character a byte (http.server, and
    # werkzeug's RAW_URI: WSGI, PEP 3333): the path is those bytes, whatever they spell.
    sent = "/ሴ".encode().decode("latin-1")
    request = sigv4.Request(
        "GET",
        sent,
        "",
        {
            "host": "example.amazonaws.com",
            "x-amz-date": "20150830T123600Z",
            "authorization": (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                "SignedHeaders=host;x-amz-date, "
                "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
            ),
        },
        b"",
    )
    signature = sigv4.parse(request)
    assert signature is not None

    sigv4.verify(signature, SUITE_SECRET, request, now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/john@gmail.com",  # an @ sent as is: encoded once here (%40)
        "/v1/users/john%40gmail.com",  # sent encoded: encoded once more (%2540), "twice" in all
        "/v1/users/a%20b",
        "/v1/users/x+y@example.com",
        "/v1/users/a%2Fb",
        "/v1/users/%C3%A9@example.com",
        "/v1/./users/../users/-._~",
    ],
)
def test_a_path_botocore_signs_for_api_gateway_verifies(path: str) -> None:
    # SigV4 encodes a non-S3 path "twice": botocore encodes the path as sent once more, as the
    # emulator does; a signer that encodes less (curl 7.88 signs the path as sent) is refused.
    url = f"http://127.0.0.1:8080{path}"
    headers = header_signed(BotoCredentials(EXAMPLE_KEY, EXAMPLE_SECRET), "execute-api", "GET", url)
    request = sigv4.Request.of("GET", url, {**headers, "Host": "127.0.0.1:8080"}, b"")  # as the wire carries it
    signature = sigv4.parse(request)
    assert signature is not None

    sigv4.verify(signature, EXAMPLE_SECRET, request)


# --- the local API Gateway ---------------------------------------------------------------------

API_ARN = f"arn:aws:execute-api:{REGION}:123456789012:abc123"


def test_the_local_api_adds_no_cors_the_program_did_not_declare() -> None:
    function = "arn:aws:lambda:eu-west-1:123456789012:function:query"
    api = RestApiSpec(
        id="abc123",
        name="api",
        execution_arn=API_ARN,
        stage_name="v1",
        methods=(ApiMethod("/users", "GET", "NONE", False, "AWS_PROXY", function),),
        rate_limit=None,
        burst_limit=None,
    )
    permission = InvokePermission("query", "lambda:InvokeFunction", "apigateway.amazonaws.com", f"{API_ARN}/*", None)
    gateway = ApiGateway(
        api,
        region=REGION,
        account_id="123456789012",
        invoke=lambda arn, event: InvokeOutcome({"statusCode": 200, "body": "[]"}, None),
        permissions=[permission],
        log=lambda line: None,
    )
    gateway.bind()
    gateway.start()
    try:
        url = f"{gateway.invoke_url}/users"
        read = send("GET", url, {"Origin": EVIL_ORIGIN})
        preflight = send("OPTIONS", url, {"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "GET"})
    finally:
        gateway.stop()

    assert read.status == 200 and read.cors == []
    assert preflight.status == 403 and preflight.cors == []  # no OPTIONS method declared: no route


def test_api_gateway_iam_mode_reads_presigned_urls_with_their_expiry(emulator: Emulator) -> None:
    role = role_credentials(emulator)
    url = "http://127.0.0.1:8081/v1/users?limit=1"

    def presign(at: datetime) -> str:
        request = AWSRequest(method="GET", url=url, headers={"Host": "127.0.0.1:8081"})
        with clock_at(at):
            SigV4QueryAuth(boto(role), "execute-api", REGION, expires=60).add_auth(request)
        return request.url

    def decide(signed_url: str) -> Any:
        return emulator.authorize_signed(
            "GET", signed_url, {"Host": "127.0.0.1:8081"}, b"", "execute-api:Invoke", f"{API_ARN}/v1/GET/users"
        )

    fresh, old = presign(datetime.now(UTC)), presign(datetime.now(UTC) - timedelta(minutes=2))

    assert decide(fresh).allowed
    assert decide(with_query(fresh, limit="100")).message == sigv4.MISMATCH_MESSAGE
    assert decide(old).message == "Request has expired"
