"""The AWS emulator local mode deploys onto: moto, in this process, behind a front of our own.

moto's server is a WSGI app (`DomainDispatcherApplication(create_backend_app)`) in werkzeug's
threaded server; local mode serves the same app behind `Emulator._front`, which supplies what moto
gets wrong or leaves out (`../shared/reference/MOTO-NOTES.md`, `/tmp/localmode/REPORT.md`):

- Authentication: every request is SigV4-verified (`local.sigv4`), the local administrator's as
  much as an IAM user's or a role session's, header-signed or presigned, within its time; a request
  from a web browser (an `Origin` or `Sec-Fetch-*` header) is refused before anything else, and no
  answer carries a CORS header, so a web page the user visits can neither call the emulator nor read
  an answer. The administrator's secret is made anew for each emulator (`local up`): it is in the
  running stack's outputs, nowhere in the repository.
- Routing: a verified request is served by the moto backend of the service its signature names, as
  AWS serves it from that service's endpoint; moto's own guess (the first `Credential=` of the
  header, the path, an `Action` in the body) is never asked, and moto's own endpoints (`/moto-api`,
  instance metadata) answer nobody. What IAM checks and what moto does are read from one request
  for one service.
- IAM: every request not signed by the local administrator is authorised by `local.authz` (moto's
  own enforcement stays off), against the resource policies as they are now: a request that sets or
  removes a bucket's or a queue's policy changes what the next request is judged by. Unknown keys,
  bad signatures and denials answer in the service's own error shape. A message move task runs with
  its caller's identity (`local.message_moves`).
- Atomicity: moto is not safe under concurrent requests, so ONE process-wide lock serialises every
  call into it, response body included. Nothing waits while holding it: an SQS long poll becomes
  short polls outside the lock, an injected delay sleeps outside it, and a Lambda Invoke never enters
  moto (the session runs the function, `on_invoke`).
- Faults: tests inject throttling, errors and delays per service and action, to all or a seeded
  fraction of requests (`Fault`), duplicated and reordered deliveries of the event sources
  (`DeliveryFault`, applied by `local.esm` and the S3 notification pump) and functions' processes
  killed mid-invocation (`KillFault`, applied by `local.functions`) and statements of a PartiQL batch
  answering their own error (`StatementFault`, applied by `local.partiql`), in-process or over HTTP
  (`POST /_local/faults`, administrator only).
- PartiQL: `BatchExecuteStatement` and `ExecuteStatement` run the worker's forms (`INSERT … VALUE
  {'a': ?, …}`, `UPDATE … SET/REMOVE … WHERE key = ? AND comparisons with ?`) as AWS does, each
  statement atomic with its own error and its own IAM check (`PartiQLInsert`/`PartiQLUpdate` on its
  table); any other form is refused by name (`local.partiql`).
- Service answers as AWS gives them: a missing S3 key is 403 AccessDenied to a caller without
  s3:ListBucket (`_missing_object`); an unused DynamoDB expression attribute is a ValidationException
  (`local.dynamodb_expressions`); a service local mode does not emulate answers NotEmulated in its own
  protocol, which the client parses and stops on (`local.protocols`).
- moto's internals are patched where they differ from AWS (`local.moto_patches`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import queue
import random
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlencode

from moto import backend_index
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    SIGNING_ALIASES,
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from local import authz, dynamodb_expressions, message_moves, moto_patches, partiql, protocols, sigv4

# ---------------------------------------------------------------------------------------------
# Public values


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


ADMIN_ACCESS_KEY_ID = "LOCALADMIN0000000000"
"""The local administrator's access key id (like the account root: every request signed with its
secret is allowed). An id names a key, it proves nothing: it stays the same from one `local up` to
the next, while the secret is each emulator's own (`new_admin`)."""


def new_admin() -> Credentials:
    """The administrator of one emulator: `ADMIN_ACCESS_KEY_ID` and a random secret (256 bits).

    Anyone who can read the repository, or another stack's outputs, could sign as the administrator of
    a running stack with a fixed secret; a secret made for each stack is known only to the process that
    runs it and to its outputs file, readable by its owner only (`local.session`). Users' own tools
    (`aws --endpoint-url …`) get it from `local outputs --show-secrets` or its `--env` line."""
    return Credentials(ADMIN_ACCESS_KEY_ID, secrets.token_urlsafe(32))


@dataclass(frozen=True)
class InvokeRequest:
    """A Lambda Invoke API call that reached the emulator."""

    function_name: str
    """As given in the path (name, ARN or partial ARN), with `:qualifier` (from `?Qualifier=` too)."""
    invocation_type: str
    """`RequestResponse` | `Event` | `DryRun` (the `X-Amz-Invocation-Type` header)."""
    payload: bytes
    caller_arn: str | None
    """The principal that called: the role's ARN for a role session, a user's ARN; None for the administrator."""


@dataclass(frozen=True)
class InvokeResponse:
    status: int
    """200 sync, 202 Event, 204 DryRun."""
    payload: bytes
    function_error: str | None = None
    """`Unhandled` → `X-Amz-Function-Error`."""
    executed_version: str = "$LATEST"


@dataclass(frozen=True)
class Fault:
    """An injected failure of requests to the emulator: what a service answers when it throttles
    (`ProvisionedThroughputExceededException`, `RequestThrottled`, `SlowDown`) or fails
    (`InternalServerError`, `InternalError`, `ServiceUnavailable`), to every matching request or
    to a seeded fraction of them, for a number of requests or a period."""

    service: str
    """`dynamodb` | `sqs` | `s3` | `lambda` | `sts` (the request's signing name)."""
    action: str
    """The API operation or an IAM action it needs, without prefix: `BatchWriteItem`, `GetObject`,
    `SendMessage` (also matches SendMessageBatch, as IAM checks it), `Invoke`/`InvokeFunction`; `*` all."""
    delay_seconds: float = 0.0
    """Sleep before handling (outside the global lock)."""
    error_code: str | None = None
    """Answered instead of calling moto, in the service's error shape (see `fault_status`)."""
    times: int | None = None
    """How many matching requests it looks at, each one hit with probability `rate` (None: until
    cleared or `seconds` have passed)."""
    principal: str | None = None
    """Only requests whose principal ARN contains this text (`admin` for the administrator)."""
    rate: float = 1.0
    """The fraction of matching requests hit, drawn from a generator seeded with `seed`: the same
    requests in the same order are hit the same way, so a run is reproducible."""
    seed: int = 0
    seconds: float | None = None
    """How long it lasts from the moment it is added (None: until `times` is spent or it is cleared)."""


@dataclass(frozen=True)
class DeliveryFault:
    """An event source delivering more than once, or out of order, as AWS's sources may.

    SQS standard queues deliver "at least once" and "best-effort ordering"
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html),
    so a Lambda SQS mapping may hand the same message to two invocations and later messages
    before earlier ones; S3 notifications are "delivered at least once", occasionally twice
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html)."""

    source: str
    """`sqs` (the SQS event source mapping's batches) or `s3` (S3 notifications to the function)."""
    function: str
    """Only deliveries to functions whose name contains this text."""
    duplicate: bool = False
    """sqs: each batch also goes to a second invocation at the same time (a message is deleted once
    either succeeds with it); s3: the event is delivered again `delay_seconds` later."""
    reorder: bool = False
    """sqs: the next batch waiting is delivered first, and each batch's records are shuffled."""
    delay_seconds: float = 0.0
    seed: int = 0
    """Seeds the shuffles."""
    times: int | None = None
    """How many deliveries (batches, events) it changes (None: until cleared or `seconds` have passed)."""
    seconds: float | None = None


@dataclass(frozen=True)
class KillFault:
    """SIGKILL to a function's process in the middle of an invocation, as Lambda ends one that runs
    out of memory or whose runtime crashes: the invocation fails with `Runtime.ExitError`, and its
    caller reacts as to any failure (an SQS batch is not deleted and comes back after the
    visibility timeout; an asynchronous event is retried with the same request id)."""

    function: str
    """Only invocations of functions whose name contains this text."""
    after_seconds: float
    """How long after its start an invocation is killed; one that ends sooner is spared, and does
    not count towards `times`."""
    times: int = 1
    """How many invocations are killed."""


@dataclass(frozen=True)
class StatementFault:
    """A statement of a PartiQL batch (`BatchExecuteStatement`) answering its own error while the
    others run, as DynamoDB reports a throttled or failed statement in its `BatchStatementError`
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html)
    instead of failing the request. `local.partiql` asks for each statement it is about to run."""

    table: str | None = None
    """Only statements on tables whose name contains this text (None: every table)."""
    error_code: str = "ThrottlingError"
    """One of BatchStatementError's codes (`STATEMENT_ERROR_CODES`)."""
    rate: float = 1.0
    """The fraction of matching statements hit, drawn from a generator seeded with `seed`: the same
    statements in the same order are hit the same way."""
    seed: int = 0
    times: int | None = None
    """How many matching statements it looks at (None: until cleared or `seconds` have passed)."""
    seconds: float | None = None


# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html
STATEMENT_ERROR_CODES = (
    "ConditionalCheckFailed",
    "ItemCollectionSizeLimitExceeded",
    "RequestLimitExceeded",
    "ValidationError",
    "ProvisionedThroughputExceeded",
    "TransactionConflict",
    "ThrottlingError",
    "InternalServerError",
    "ResourceNotFound",
    "AccessDenied",
    "DuplicateItem",
)
AnyFault = Fault | DeliveryFault | KillFault | StatementFault
_F = TypeVar("_F", Fault, DeliveryFault, KillFault, StatementFault)
_R = TypeVar("_R", Fault, StatementFault)
"""The kinds of fault drawn by rate, request by request or statement by statement."""
FAULT_KINDS: dict[str, type[Fault] | type[DeliveryFault] | type[KillFault] | type[StatementFault]] = {
    "request": Fault,
    "delivery": DeliveryFault,
    "kill": KillFault,
    "statement": StatementFault,
}
DELIVERY_SOURCES = ("sqs", "s3")


@dataclass(frozen=True)
class SignedDecision:
    """Whether a SigV4-signed request (API Gateway's AWS_IAM mode) may perform an action."""

    allowed: bool
    principal_arn: str | None
    """Who signed, when the signature was valid: a user's ARN, or the assumed-role session's ARN
    (`arn:aws:sts::…:assumed-role/…`, what API Gateway reports as `identity.userArn`)."""
    access_key_id: str | None
    message: str
    """API Gateway's wording for a refusal; empty when allowed."""


MISSING_TOKEN = "Missing Authentication Token"
BROWSER_REFUSED = (
    "local mode's emulator answers no web browser (this request has an Origin or Sec-Fetch-* header): "
    "a web page must not reach the local stack; use an AWS SDK or the AWS CLI"
)
# Lambda's payload limits (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# 6 MB for a synchronous invocation, 1 MB for an asynchronous one (raised from 256 KB in 2025).
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
# How often a long poll looks again; it never holds the lock between looks.
LONG_POLL_INTERVAL_SECONDS = 0.05
MAX_LONG_POLL_SECONDS = 20
# Role sessions the emulator issues last this long: Lambda renews its functions' credentials itself,
# local mode's function hosts keep one session for their whole life.
SESSION_SECONDS = 12 * 60 * 60
FAULTS_PATH = "/_local/faults"
# The paths moto's server answers itself, whatever the request's signature, before any service:
# its API (`/moto-api/…`: reset every backend, dump every resource, seed its generators) and EC2's
# instance metadata (`DomainDispatcherApplication.get_application` in moto/moto_server/werkzeug_app.py).
# Nobody reaches them through the emulator, the local administrator included: local mode resets moto
# in-process (`Emulator.stop`), never over HTTP. A bucket named `moto-api` cannot be used locally.
MOTO_INTERNAL_PATHS = ("/moto-api", "/favicon.ico", "/latest/meta-data/", "/latest/api/")
MOTO_INTERNAL_REFUSED = "local mode's emulator serves AWS's APIs only, not moto's own endpoints"
# A signing name: lower-case letters, digits and hyphens (`s3`, `dynamodb`, `execute-api`).
_SIGNING_NAME = re.compile(r"[a-z0-9-]+")

# moto keeps its state in process-wide backends and is not atomic: one lock for every emulator.
_MOTO_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------
# Faults


def _check(fault: AnyFault) -> None:
    """Refuse a fault that could never apply, naming the field."""
    if fault.times is not None and fault.times < 1:
        raise ValueError(f"a fault applies at least once, not times={fault.times}")
    seconds = getattr(fault, "seconds", None)
    if seconds is not None and seconds <= 0:
        raise ValueError(f"a fault lasts a positive number of seconds, not seconds={seconds}")
    if isinstance(fault, Fault | StatementFault) and not 0 < fault.rate <= 1:
        raise ValueError(f"a fault's rate is in (0, 1], not rate={fault.rate}")
    if isinstance(fault, StatementFault) and fault.error_code not in STATEMENT_ERROR_CODES:
        raise ValueError(
            f"a statement fault answers one of BatchStatementError's codes ({', '.join(STATEMENT_ERROR_CODES)}), "
            f"not {fault.error_code!r}"
        )
    if isinstance(fault, DeliveryFault):
        if fault.source not in DELIVERY_SOURCES:
            raise ValueError(f"a delivery fault's source is one of {', '.join(DELIVERY_SOURCES)}, not {fault.source!r}")
        if not (fault.duplicate or fault.reorder):
            raise ValueError("a delivery fault duplicates or reorders (or both)")
        if fault.source == "s3" and fault.reorder:
            raise ValueError("S3 events are delivered one at a time: only `duplicate` applies to them")
    if isinstance(fault, KillFault) and fault.times is None:
        raise ValueError("a kill fault kills a number of invocations: give times")
    if isinstance(fault, KillFault) and fault.after_seconds < 0:
        raise ValueError(f"a kill fault waits a non-negative time, not after_seconds={fault.after_seconds}")


@dataclass(eq=False)
class _Active:
    """A fault as added, with what it has left and what it did."""

    fault: AnyFault
    rng: random.Random
    until: float | None
    """Monotonic time it ends at (None: no period)."""
    left: int | None
    pending: int = 0
    """Kills armed whose invocation has not ended yet."""
    applied: int = 0

    def live(self, now: float) -> bool:
        return (self.until is None or now < self.until) and (self.left is None or self.left - self.pending > 0)


@dataclass(frozen=True)
class DeliveryOrder:
    """What a delivery fault asks of one delivery (an SQS batch, an S3 event)."""

    duplicate: bool
    reorder: bool
    delay_seconds: float
    rng: random.Random
    """This delivery's own generator (seeded from the fault's, in the order deliveries asked)."""
    applied: Callable[[int], None]
    """Counts the messages or events whose delivery it changed."""


@dataclass(frozen=True)
class KillOrder:
    """A kill armed for one invocation: the host says whether it fired."""

    after_seconds: float
    fired: Callable[[], None]
    spared: Callable[[], None]
    """The invocation ended first: the kill goes back to the fault."""


class Faults:
    """The injected faults, matched in the order they were added (the first that hits applies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Active] = []

    def add(self, fault: AnyFault) -> None:
        _check(fault)
        seconds = getattr(fault, "seconds", None)
        until = None if seconds is None else time.monotonic() + seconds
        entry = _Active(fault, random.Random(getattr(fault, "seed", 0)), until, fault.times)
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def list(self) -> list[AnyFault]:
        """The faults still active, `times` counting what is left."""
        now = time.monotonic()
        with self._lock:
            return [dataclasses.replace(e.fault, times=e.left) for e in self._entries if e.live(now)]

    def applied(self) -> list[tuple[AnyFault, int]]:
        """Every fault added since the last `clear`, as added, with how often it hit: requests answered
        with its error or delayed, messages or events delivered differently, processes killed."""
        with self._lock:
            return [(e.fault, e.applied) for e in self._entries]

    def take(self, service: str, names: Iterable[str], principal: str) -> Fault | None:
        """The first request fault that matches this request and hits it (its `rate`), counted."""
        names = set(names)

        def matches(fault: Fault) -> bool:
            named = fault.action == "*" or fault.action in names
            return fault.service == service and named and (fault.principal is None or fault.principal in principal)

        return self._first_hit(Fault, matches)

    def statement(self, table: str) -> str | None:
        """The error code of the first statement fault that matches a statement on `table` and hits it."""
        hit = self._first_hit(StatementFault, lambda fault: fault.table is None or fault.table in table)
        return None if hit is None else hit.error_code

    def _first_hit(self, kind: type[_R], matches: Callable[[_R], bool]) -> _R | None:
        """The first live fault of `kind` that `matches` and hits (its seeded `rate`): each one matching
        looks at this request or statement (its `times` counts down), the one that hits counts it."""
        now = time.monotonic()
        with self._lock:
            for entry, fault in self._live(kind, now):
                if not matches(fault):
                    continue
                if entry.left is not None:
                    entry.left -= 1
                if entry.rng.random() < fault.rate:
                    entry.applied += 1
                    return fault
        return None

    def delivery(self, source: str, function_name: str) -> DeliveryOrder | None:
        """What the first live delivery fault for this source and function asks of this delivery."""
        now = time.monotonic()
        with self._lock:
            for entry, fault in self._live(DeliveryFault, now):
                if fault.source != source or fault.function not in function_name:
                    continue
                if entry.left is not None:
                    entry.left -= 1
                return DeliveryOrder(
                    fault.duplicate,
                    fault.reorder,
                    fault.delay_seconds,
                    random.Random(entry.rng.getrandbits(64)),
                    lambda count, entry=entry: self._count(entry, count),
                )
        return None

    def kill_order(self, function_name: str) -> KillOrder | None:
        """A kill for this invocation of the function, if a kill fault has one left."""
        now = time.monotonic()
        with self._lock:
            for entry, fault in self._live(KillFault, now):
                if fault.function not in function_name:
                    continue
                entry.pending += 1
                return KillOrder(
                    fault.after_seconds,
                    fired=lambda entry=entry: self._settle(entry, fired=True),
                    spared=lambda entry=entry: self._settle(entry, fired=False),
                )
        return None

    def _live(self, kind: type[_F], now: float) -> Iterator[tuple[_Active, _F]]:
        """The live entries holding a fault of `kind`, in the order added (the caller holds the lock)."""
        for entry in self._entries:
            if isinstance(entry.fault, kind) and entry.live(now):
                yield entry, entry.fault

    def _count(self, entry: _Active, count: int) -> None:
        with self._lock:
            entry.applied += count

    def _settle(self, entry: _Active, *, fired: bool) -> None:
        with self._lock:
            entry.pending -= 1
            if fired:
                assert entry.left is not None
                entry.left -= 1
                entry.applied += 1


@dataclass(frozen=True)
class CallCount:
    """The requests of one caller to one operation: how many, their body bytes, their 64 KiB units."""

    calls: int = 0
    body_bytes: int = 0
    units_64k: int = 0
    """Each request's body in 64 KiB chunks, rounded up (how SQS bills a request)."""
    items: int = 0
    """What DynamoDB bills a batch by: its statements (`BatchExecuteStatement`), keys (`BatchGetItem`)
    or requests (`BatchWriteItem`); one for any other request."""

    def plus(self, body_bytes: int, items: int = 1) -> CallCount:
        units = max(1, -(-body_bytes // 65536))
        return CallCount(self.calls + 1, self.body_bytes + body_bytes, self.units_64k + units, self.items + items)


def batch_items(access: authz.RequestAccess) -> int:
    """How many items or statements a DynamoDB batch carries (`CallCount.items`); one for anything else."""
    if access.service != "dynamodb":
        return 1
    if access.operation == "BatchExecuteStatement":
        return len(access.statements)
    requests = access.body.get("RequestItems")
    if access.operation == "BatchGetItem" and isinstance(requests, dict):
        return sum(len(spec.get("Keys") or []) for spec in requests.values() if isinstance(spec, dict))
    if access.operation == "BatchWriteItem" and isinstance(requests, dict):
        return sum(len(entries) for entries in requests.values() if isinstance(entries, list))
    return 1


class CallCounter:
    """Every request the emulator served, by caller (a role's name, or "admin"), service and operation:
    what the benchmarks count API calls with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], CallCount] = {}

    def record(self, caller: str, service: str, access: authz.RequestAccess, body_bytes: int) -> None:
        key = (caller, service, access.operation)
        items = batch_items(access)
        with self._lock:
            self._counts[key] = self._counts.get(key, CallCount()).plus(body_bytes, items)

    def snapshot(self) -> dict[tuple[str, str, str], CallCount]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def fault_from_json(data: Mapping[str, Any]) -> AnyFault:
    """A fault from its JSON object (`kind`: `request`, the default, `delivery` or `kill`); fails
    naming a kind or field it does not know."""
    fields = dict(data)
    kind = fields.pop("kind", "request")
    if kind not in FAULT_KINDS:
        raise ValueError(f"a fault's kind is one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    cls = FAULT_KINDS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - known
    if unknown:
        raise ValueError(
            f"a {kind} fault has no field {', '.join(sorted(unknown))}; fields: {', '.join(sorted(known))}"
        )
    return cls(**fields)


def fault_to_json(fault: AnyFault) -> dict[str, Any]:
    kind = next(name for name, cls in FAULT_KINDS.items() if type(fault) is cls)
    return {"kind": kind, **dataclasses.asdict(fault)}


class FaultsEndpoint:
    """Another process's emulator faults, over `POST/GET /_local/faults` signed as the administrator."""

    def __init__(self, endpoint_url: str, credentials: Credentials) -> None:
        """`credentials`: the administrator's, from the running stack's outputs (`awsAccessKeyId`,
        `awsSecretAccessKey`) or the `Emulator` object."""
        self.url = endpoint_url.rstrip("/") + FAULTS_PATH
        self.credentials = credentials

    def add(self, fault: AnyFault) -> None:
        self._send("POST", fault_to_json(fault))

    def clear(self) -> None:
        self._send("POST", {"clear": True})

    def list(self) -> list[AnyFault]:
        return [fault_from_json(f) for f in self._send("GET", None)["faults"]]

    def applied(self) -> list[tuple[AnyFault, int]]:
        """Every fault added since the last clear, with how often it hit (`Faults.applied`)."""
        return [(fault_from_json(a["fault"]), a["count"]) for a in self._send("GET", None)["applied"]]

    def _send(self, method: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=self.url, data=data, headers={"Content-Type": "application/json"})
        key = self.credentials
        SigV4Auth(
            BotoCredentials(key.access_key_id, key.secret_access_key, key.session_token), "local", "local"
        ).add_auth(request)
        prepared = urllib.request.Request(self.url, data=data or None, headers=dict(request.headers), method=method)
        with urllib.request.urlopen(prepared, timeout=10) as response:
            return json.loads(response.read())


# ---------------------------------------------------------------------------------------------
# Responses in each service's error shape


@dataclass(frozen=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# (status, code) per service when the caller is refused; the default is the JSON services' shape.
_ACCESS_DENIED = {"s3": (403, "AccessDenied"), "sqs": (400, "AccessDenied"), "lambda": (403, "AccessDeniedException")}
_ACCESS_DENIED_DEFAULT = (400, "AccessDeniedException")
_QUERY_ACCESS_DENIED = (403, "AccessDenied")
_UNKNOWN_KEY = {
    "s3": (403, "InvalidAccessKeyId"),
    "dynamodb": (400, "UnrecognizedClientException"),
    "lambda": (403, "UnrecognizedClientException"),
    "logs": (400, "UnrecognizedClientException"),
}
_UNKNOWN_KEY_DEFAULT = (403, "InvalidClientTokenId")
_EXPIRED = {"s3": (400, "ExpiredToken"), "dynamodb": (400, "ExpiredTokenException")}
_EXPIRED_DEFAULT = (403, "ExpiredToken")
_MISSING_AUTH_DEFAULT = (403, "MissingAuthenticationToken")
# A signature that does not match: JSON services say InvalidSignatureException, S3 and the query
# services SignatureDoesNotMatch. S3 has a code of its own for most other authentication failures
# (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html); elsewhere a stale header
# signature is the mismatch shape with "Signature expired", an expired presigned URL RequestExpired
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html).
_SIGNATURE_MISMATCH = {
    "s3": (403, "SignatureDoesNotMatch"),
    "dynamodb": (400, "InvalidSignatureException"),
    "lambda": (403, "InvalidSignatureException"),
    "logs": (400, "InvalidSignatureException"),
}
_SIGNATURE_MISMATCH_DEFAULT = (403, "SignatureDoesNotMatch")
_S3_SIGNATURE_REFUSALS = {
    sigv4.Failure.SKEWED: (403, "RequestTimeTooSkewed"),
    sigv4.Failure.EXPIRED: (403, "AccessDenied"),
    sigv4.Failure.UNSIGNED_HEADERS: (403, "AccessDenied"),
    sigv4.Failure.PAYLOAD_MISMATCH: (400, "XAmzContentSHA256Mismatch"),
    sigv4.Failure.BAD_PAYLOAD: (400, "InvalidRequest"),
}
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Request Entity Too Large"}

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "LimitExceededException",
        "TransactionInProgressException",
    }
)


def fault_status(service: str, code: str) -> int:
    """The HTTP status AWS answers an error code with: 503 for S3's SlowDown and ServiceUnavailable,
    500 for internal errors, 429 for Lambda's TooManyRequestsException, 400 for throttling and any
    other (client) code. botocore retries throttling codes and 5xx statuses, as against AWS."""
    if code in ("SlowDown", "ServiceUnavailable", "ServiceUnavailableException"):
        return 503
    if code.startswith("Internal") or code in ("ServiceException", "ServiceFailure"):
        return 500
    if service == "lambda" and code == "TooManyRequestsException":
        return 429
    return 400


def signature_refusal(refused: sigv4.Refused, headers: Mapping[str, str]) -> _Response:
    """A request whose SigV4 authentication failed, answered as its service answers it."""
    service = refused.service
    if refused.failure is sigv4.Failure.MALFORMED:
        if service == "s3":
            code = "AuthorizationQueryParametersError" if refused.presigned else "AuthorizationHeaderMalformed"
            return error_response(service, headers, 400, code, refused.message)
        return error_response(service, headers, 400, "IncompleteSignature", refused.message)
    if service == "s3" and refused.failure in _S3_SIGNATURE_REFUSALS:
        status, code = _S3_SIGNATURE_REFUSALS[refused.failure]
    elif refused.failure is sigv4.Failure.EXPIRED:
        status, code = 400, "RequestExpired"
    else:
        status, code = _SIGNATURE_MISMATCH.get(service, _SIGNATURE_MISMATCH_DEFAULT)
    return error_response(service, headers, status, code, refused.message)


def _is_json_protocol(service: str, headers: Mapping[str, str]) -> bool:
    return service not in ("s3", "sts", "iam") and (service != "sqs" or "x-amz-target" in headers)


# The services whose error shapes are written out below (the emulated ones; "" an unsigned request).
_OWN_SHAPES = frozenset({"", "s3", "sqs", "sts", "iam", "dynamodb", "lambda", "logs", "secretsmanager"})


def error_response(service: str, headers: Mapping[str, str], status: int, code: str, message: str) -> _Response:
    """An error botocore parses to `code`: XML for S3 and query-protocol calls, JSON otherwise
    (SQS's JSON protocol carries the query code in `x-amzn-query-error`, as AWS sends it); any other
    service's in the protocol its client speaks (`local.protocols`)."""
    if service not in _OWN_SHAPES:
        answer = protocols.error(service, headers, status, code, message)
        return _Response(answer.status, answer.headers, answer.body)
    request_id = f"{time.time_ns():032x}"[-32:]
    if service == "s3":
        body = (
            f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        )
        return _Response(status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body.encode())
    if not _is_json_protocol(service, headers):
        sender = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return _Response(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode())
    response_headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
    json_code = code
    if service == "sqs":
        sender = "Receiver" if status >= 500 else "Sender"
        response_headers.append(("x-amzn-query-error", f"{code};{sender}"))
        json_code = "AccessDeniedException" if code == "AccessDenied" else code
    if service == "lambda":
        response_headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        response_headers.append(("x-amzn-RequestId", request_id))
    payload = {"__type": f"com.amazon.coral.service#{json_code}", "message": message}
    if service == "dynamodb":
        payload = {"__type": f"com.amazon.coral.service#{json_code}", "Message": message}
    return _Response(status, response_headers, json.dumps(payload).encode())


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_response(status: int, data: Any) -> _Response:
    return _Response(status, [("Content-Type", "application/json")], json.dumps(data).encode())


# ---------------------------------------------------------------------------------------------
# Requests from web browsers


def _from_a_browser(headers: Mapping[str, str]) -> bool:
    """A browser names the page a request comes from (`Origin`, on every cross-origin request and
    every non-GET one: https://fetch.spec.whatwg.org/#origin-header) and, in every current browser, how
    it was made (`Sec-Fetch-*`: https://www.w3.org/TR/fetch-metadata/); a page's script cannot remove
    either. No AWS SDK or CLI sends them."""
    return "origin" in headers or any(name.startswith("sec-fetch-") for name in headers)


def _without_cors(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """moto answers with CORS headers (flask-cors on every response, a bucket's CORS rules on S3's):
    none leave the emulator, so no page could read an answer even if a request got through."""
    return [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]


# ---------------------------------------------------------------------------------------------
# The emulator


class _QuietRequestHandler(MotoRequestHandler):
    """No access log: request lines carry object keys and paths, which may name people."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


def _to_stderr(line: str) -> None:
    print(f"local emulator: {line}", file=sys.stderr)


class Emulator:
    """moto in this process, on 127.0.0.1, behind the authorising, serialising front."""

    def __init__(self, region: str, account_id: str = "123456789012") -> None:
        self.region = region
        self.account_id = account_id
        self.admin = new_admin()
        self.endpoint_url = ""
        self.resource_policies: dict[str, dict[str, Any]] = {}
        """Resource-based policies by the ARN they protect (`authz.resource_policy_key`): the program's at
        deploy (bucket policies never go into moto), then as requests that set or remove one succeed."""
        self.on_invoke: Callable[[InvokeRequest], InvokeResponse] | None = None
        self.s3_events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.faults = Faults()
        self.calls = CallCounter()
        self._moves = message_moves.MessageMoves(lambda: self.client("sqs"))
        self.log: Callable[[str], None] = _to_stderr
        """Where each refused request is reported (who, which action, which resource): the session's log."""
        self._partition = "aws"
        moto_patches.install()
        moto_patches.route_s3_events(account_id, self.s3_events)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._apps: dict[str, Any] = {}
        """moto's WSGI app by signing name."""
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._clients_lock = threading.Lock()

    # Lifecycle -----------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:`port` (0: any free port) in a daemon thread; returns `endpoint_url`."""
        listening = _listen(port)
        try:
            server = make_server(
                "127.0.0.1",
                port,
                self._front,
                threaded=True,
                request_handler=_QuietRequestHandler,
                fd=listening.fileno(),
            )
        finally:
            listening.close()  # the server holds its own duplicate
        self._server = server
        self.endpoint_url = f"http://127.0.0.1:{server.port}"
        self._thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and forget every resource: moto's backends are global to the process, so
        without this a later emulator here (a benchmark's second stack) would find this one's."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
        with self._clients_lock:
            self._clients.clear()
        moto_api_backend.reset()

    # Clients and identities ----------------------------------------------------------------

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A boto3 client to the emulator (administrator by default), region set, standard retries.

        One per service and credentials, kept (boto3 clients are thread-safe), all made by one
        session, whose loader reads each service's model once: making a client costs tens of
        milliseconds of JSON parsing, and the log shipper and event sources ask for them often."""
        import boto3
        from botocore.config import Config

        key = credentials or self.admin
        cache_key = (service, key.access_key_id, key.session_token)
        with self._clients_lock:  # a boto3 session is not thread-safe: clients are made one at a time
            found = self._clients.get(cache_key)
            if found is None:
                if self._session is None:
                    self._session = boto3.session.Session(region_name=self.region)
                config = Config(retries={"mode": "standard"}, s3={"addressing_style": "path"}, max_pool_connections=32)
                found = self._clients[cache_key] = self._session.client(
                    service,
                    aws_access_key_id=key.access_key_id,
                    aws_secret_access_key=key.secret_access_key,
                    aws_session_token=key.session_token,
                    endpoint_url=self.endpoint_url,
                    config=config,
                )
        return found

    def assume_role(self, role_arn: str, session_name: str) -> Credentials:
        """A session of a role (one trusting lambda.amazonaws.com, say), issued by moto's STS."""
        issued = self.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=SESSION_SECONDS
        )["Credentials"]
        return Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])

    def principal_of(self, access_key_id: str, session_token: str | None) -> str | None:
        """The role ARN of a role session's key, a user's ARN, `admin`, or None for an unknown key."""
        if access_key_id == self.admin.access_key_id:
            return authz.ADMIN
        try:
            return self._identity(access_key_id, session_token).arn
        except authz.UnknownCredentials:
            return None

    def _identity(self, access_key_id: str, session_token: str | None) -> authz.Identity:
        with _MOTO_LOCK:  # reads moto's IAM and STS state
            return authz.resolve_identity(self.account_id, self._partition, access_key_id, session_token)

    def authorize_signed(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, action: str, resource_arn: str
    ) -> SignedDecision:
        """API Gateway's AWS_IAM mode: verify the SigV4 signature (header or presigned), then the
        signer's policies.

        `url` is the request as received (path and query percent-encoded as sent); `headers` the
        request's headers.
        """
        request = sigv4.Request.of(method, url, headers, body)
        try:
            signature = sigv4.parse(request)
        except sigv4.Refused as refused:
            return SignedDecision(False, None, None, refused.message)
        if signature is None:
            return SignedDecision(False, None, None, MISSING_TOKEN)
        key_id = signature.access_key_id
        if key_id == self.admin.access_key_id:
            identity: authz.Identity | None = None
            secret, principal_arn = self.admin.secret_access_key, f"arn:aws:iam::{self.account_id}:root"
        else:
            try:
                identity = self._identity(key_id, signature.session_token)
            except authz.UnknownCredentials:
                return SignedDecision(False, None, key_id, authz.INVALID_TOKEN)
            secret, principal_arn = identity.secret_access_key, identity.caller_arn
        try:
            sigv4.verify(signature, secret, request)
        except sigv4.Refused as refused:
            # Only a request proven to be the signer's, if late, may name the signer.
            late = refused.failure in (sigv4.Failure.SKEWED, sigv4.Failure.EXPIRED)
            return SignedDecision(False, principal_arn if late else None, key_id, refused.message)
        if identity is not None:
            verdict = self._authorize(identity, authz.Access(action, resource_arn), signature.region)
            if not verdict.allowed:
                message = (
                    f"User: {identity.caller_arn} is not authorized to perform: {action} on resource: {resource_arn}"
                )
                return SignedDecision(False, principal_arn, key_id, message)
        return SignedDecision(True, principal_arn, key_id, "")

    def _authorize(self, identity: authz.Identity, access: authz.Access, region: str) -> authz.Verdict:
        """One (action, resource) for a caller: its policies, and the resource's policy or trust policy."""
        context = authz.request_context(identity, region)
        if access.action.lower() == "sts:assumerole":
            with _MOTO_LOCK:
                trust = authz.trust_policy_of(self.account_id, self._partition, access.resource)
            return authz.authorize(identity, access.action, access.resource, trust, context, trust_policy=True)
        policy = self.resource_policies.get(authz.resource_policy_key(access.resource))
        return authz.authorize(identity, access.action, access.resource, policy, context)

    # The front -----------------------------------------------------------------------------

    def _front(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            response = self._handle(environ)
        except Exception:  # a bug of the front: say so without request contents, and answer 500
            print(f"local emulator: internal error\n{''.join(traceback.format_tb(sys.exc_info()[2]))}", file=sys.stderr)
            response = _json_response(500, {"__type": "InternalFailure", "message": "local emulator internal error"})
        reason = _REASONS.get(response.status, "Error" if response.status >= 400 else "OK")
        start_response(f"{response.status} {reason}", response.headers)
        return [response.body]

    def _handle(self, environ: dict[str, Any]) -> _Response:
        body = _read_body(environ)
        headers = _headers(environ)
        if _from_a_browser(headers):
            return _json_response(403, {"message": BROWSER_REFUSED})
        request = sigv4.Request.of(environ["REQUEST_METHOD"], _target(environ), headers, body)
        if environ.get("PATH_INFO", "").startswith(MOTO_INTERNAL_PATHS):
            return _json_response(403, {"message": MOTO_INTERNAL_REFUSED})
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self._faults_endpoint(request)
        try:
            signature = sigv4.parse(request)
        except sigv4.Refused as refused:
            return signature_refusal(refused, headers)
        if signature is None:
            status, code = _MISSING_AUTH_DEFAULT  # unsigned: which service it is meant for is unknown
            return error_response("", headers, status, code, MISSING_TOKEN)
        identity, refusal = self._authenticate(signature, request)
        if refusal is not None:
            return refusal
        app = self._app(signature.service)
        if app is None or (identity is not None and signature.service not in authz.SERVICES):
            return self._not_emulated(signature.service, headers, identity, deployable=app is not None)
        call = authz.Call(
            service=signature.service,
            region=signature.region,
            account_id=self.account_id,
            method=request.method,
            path=request.path,
            query=parse_qs(request.query, keep_blank_values=True),
            headers=headers,
            body=body,
            host=headers.get("host", ""),
        )
        access = authz.request_access(call)
        if identity is None:
            principal, caller_arn, origin_id = authz.ADMIN, None, f"AWS:{self.account_id}"
            self.calls.record("admin", call.service, access, len(body))
        else:
            refusal = self._refusal(identity, call, access)
            if refusal is not None:
                return refusal
            principal, caller_arn = f"{identity.arn} {identity.caller_arn}", identity.arn
            self.calls.record(identity.arn.rsplit("/", 1)[-1], call.service, access, len(body))
            origin_id = f"AWS:{identity.unique_id}"
        fault = self.faults.take(call.service, access.names, principal)
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.error_code:
                status = fault_status(call.service, fault.error_code)
                return error_response(call.service, headers, status, fault.error_code, "injected fault")
        if call.service == "lambda" and access.operation == "Invoke":
            return self._invoke(call, caller_arn)
        try:
            change = authz.policy_change(call, access)
        except authz.MalformedPolicy as malformed:
            return error_response(call.service, headers, 400, malformed.code, str(malformed))
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        origin = moto_patches.RequestOrigin(principal_id=origin_id, source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"))
        if call.service == "sqs" and access.operation == "ReceiveMessage":
            return self._receive_messages(app, environ, call, access, origin)
        if call.service == "sqs" and access.operation in message_moves.OPERATIONS:
            return self._message_move(call, access, self._caller(identity, signature, call.region))
        if call.service == "dynamodb":
            unused = dynamodb_expressions.unused(access.operation, access.body)
            if unused is not None:
                return error_response(call.service, headers, 400, "ValidationException", unused)
        guard = self._statement_guard(identity, call, access) if access.statements else None
        response = self._call_moto(app, environ, body, origin, guard)
        if change is not None and 200 <= response.status < 300:
            self._apply(change)
        if identity is not None and response.status == 404 and call.service == "s3":
            return self._missing_object(identity, call, access) or response
        return response

    def _missing_object(
        self, identity: authz.Identity, call: authz.Call, access: authz.RequestAccess
    ) -> _Response | None:
        """S3's answer to a GetObject or HeadObject of a key that does not exist, for a caller without
        s3:ListBucket on the bucket: 403 AccessDenied, where moto says 404; with that right, moto's 404
        stands (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html and
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions"): a caller
        that may not list the bucket learns nothing of which keys it holds. None: moto's answer stands."""
        if access.operation not in ("GetObject", "HeadObject") or not access.accesses:
            return None
        bucket = access.accesses[0].resource.split(":::", 1)[-1].split("/", 1)[0]
        if not self._bucket_exists(bucket):  # NoSuchBucket: moto's 404 stands, as AWS's does
            return None
        message = self._denial(identity, (authz.Access("s3:ListBucket", f"arn:aws:s3:::{bucket}"),), call.region)
        if message is None:
            return None
        refused = error_response("s3", call.headers, 403, "AccessDenied", message)
        if call.method == "HEAD":  # a HEAD answer has no body: the status alone is the error
            return _Response(403, [h for h in refused.headers if h[0].lower() != "content-type"], b"")
        return refused

    def _bucket_exists(self, bucket: str) -> bool:
        from moto.s3.models import s3_backends

        with _MOTO_LOCK:
            return bucket in s3_backends[self.account_id][self._partition].buckets

    def _not_emulated(
        self, service: str, headers: Mapping[str, str], identity: authz.Identity | None, *, deployable: bool
    ) -> _Response:
        """A request for a service local mode does not emulate (moto has none, or it is not one
        `local.authz` judges for a caller other than the administrator): an error in that service's own
        protocol, which the client parses and stops on, where an answer it could not read would be
        retried as transient."""
        served = "the local administrator's requests only, to deploy" if deployable else "no request"
        message = f"local mode does not emulate {service} (requests signed for {service!r}: it serves {served})"
        if identity is not None:
            self.log(f"not emulated: {service} by {identity.caller_arn}")
        answer = protocols.error(service, headers, 400, "NotEmulated", message)
        return _Response(answer.status, answer.headers, answer.body)

    def _app(self, service: str) -> Any | None:
        """moto's app for the service a verified signature names (None: moto has none).

        A signature's credential scope names the service it was computed for
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-authentication-methods.html),
        and AWS serves a request from the endpoint of one service, refusing a signature scoped to
        another ("Credential should be scoped to correct service", as quoted in
        https://github.com/aws/aws-sdk-go-v2/issues/163). The emulator, one endpoint for all, serves a
        request from the backend of the service its signature is scoped to: the one moto's
        server picks for `<signing name>.<region>.amazonaws.com` (its `SIGNING_ALIASES` and
        `backend_url_patterns`). Nothing else of the request (a second `Credential=`, the path, an
        `Action` in a form body, the Host header) can send it elsewhere, so the service `local.authz`
        judged it for is the service that runs it."""
        found = self._apps.get(service)
        if found is not None or not _SIGNING_NAME.fullmatch(service):
            return found
        host = f"https://{SIGNING_ALIASES.get(service, service)}.{self.region}.amazonaws.com"
        backend = next((name for name, pattern in backend_index.backend_url_patterns if pattern.match(host)), None)
        if backend is None:
            return None
        with self._moto.lock:  # moto's server makes each backend's app once, under this lock
            found = self._moto.app_instances.get(backend)
            if found is None:
                found = self._moto.app_instances[backend] = self._moto.create_app(backend)
        self._apps[service] = found
        return found

    def _apply(self, change: authz.PolicyChange) -> None:
        """A request that set or removed a resource's policy succeeded: the next request is judged by it."""
        if change.document is None:
            self.resource_policies.pop(change.resource, None)
        else:
            self.resource_policies[change.resource] = change.document

    def _caller(self, identity: authz.Identity | None, signature: sigv4.Signature, region: str) -> message_moves.Caller:
        """Whoever sent a message move request, to act in its name: its keys, and its rights checked."""
        if identity is None:
            return message_moves.Caller(sqs=self.client("sqs"), denial=lambda accesses: None)
        keys = Credentials(signature.access_key_id, identity.secret_access_key, signature.session_token)
        return message_moves.Caller(
            sqs=self.client("sqs", keys), denial=lambda accesses: self._denial(identity, accesses, region)
        )

    def _authenticate(
        self, signature: sigv4.Signature, request: sigv4.Request
    ) -> tuple[authz.Identity | None, _Response | None]:
        """Who signed (None: the administrator), or the error for a key the emulator did not issue or a
        signature its secret did not make."""
        identity = None
        if signature.access_key_id == self.admin.access_key_id:
            secret = self.admin.secret_access_key
        else:
            try:
                identity = self._identity(signature.access_key_id, signature.session_token)
            except authz.UnknownCredentials as unknown:
                table, default = (
                    (_EXPIRED, _EXPIRED_DEFAULT)
                    if unknown.code == "ExpiredToken"
                    else (_UNKNOWN_KEY, _UNKNOWN_KEY_DEFAULT)
                )
                status, code = table.get(signature.service, default)
                return None, error_response(signature.service, request.headers, status, code, unknown.message)
            secret = identity.secret_access_key
        try:
            sigv4.verify(signature, secret, request)
        except sigv4.Refused as refused:
            self.log(
                f"refused a request signed with {signature.access_key_id} ({signature.service}): {refused.message}"
            )
            return None, signature_refusal(refused, request.headers)
        return identity, None

    def _refusal(self, identity: authz.Identity, call: authz.Call, access: authz.RequestAccess) -> _Response | None:
        """The error a non-administrator gets (None: allowed)."""
        status, code = self._denied_shape(call)
        if not access.mapped:
            request = f"{call.service or 'unknown service'} {access.operation or call.method}"
            self.log(f"unmapped request {request} by {identity.caller_arn} denied")
            message = (
                f"User: {identity.caller_arn} is not authorized to perform: {request}: "
                "local mode cannot map this request to IAM actions, so it is denied"
            )
            return error_response(call.service, call.headers, status, code, message)
        message = self._denial(identity, access.accesses, call.region)
        if message is not None:
            return error_response(call.service, call.headers, status, code, message)
        return None

    def _denial(
        self,
        identity: authz.Identity,
        accesses: Iterable[authz.Access],
        region: str,
        verdicts: dict[authz.Access, authz.Verdict] | None = None,
    ) -> str | None:
        """AWS's message for the first of `accesses` the caller is not allowed, reported to the log; None
        when every one is allowed. `verdicts`: the decisions already made for this caller in this
        request, by (action, resource), kept there."""
        for needed in accesses:
            verdict = verdicts.get(needed) if verdicts is not None else None
            if verdict is None:
                verdict = self._authorize(identity, needed, region)
                if verdicts is not None:
                    verdicts[needed] = verdict
            if not verdict.allowed:
                message = authz.denial_message(identity, needed.action, needed.resource, verdict)
                self.log(f"denied: {message}")
                return message
        return None

    @staticmethod
    def _denied_shape(call: authz.Call) -> tuple[int, str]:
        if call.service == "sqs" and not _is_json_protocol("sqs", call.headers):
            return _QUERY_ACCESS_DENIED
        if call.service in ("sts", "iam"):
            return _QUERY_ACCESS_DENIED
        return _ACCESS_DENIED.get(call.service, _ACCESS_DENIED_DEFAULT)

    def _statement_guard(
        self, identity: authz.Identity | None, call: authz.Call, access: authz.RequestAccess
    ) -> partiql.Guard:
        """What `local.partiql` may run of a PartiQL batch: each statement's IAM check (AWS reports a
        denied statement as its own `AccessDenied`, a code of `BatchStatementError`) and the statement
        faults.

        Every statement is checked, each denied one answered and logged on its own; the decision for an
        (action, resource) is made once a request, as its caller, policies and context are one for all
        its statements (a batch of the worker's names one table and two actions in 25 statements)."""
        verdicts: dict[authz.Access, authz.Verdict] = {}

        def denied(index: int) -> str | None:
            if identity is None:
                return None
            return self._denial(identity, (access.statements[index],), call.region, verdicts)

        return partiql.Guard(denied=denied, fault=self.faults.statement)

    def _call_moto(
        self,
        app: Any,
        environ: dict[str, Any],
        body: bytes,
        origin: moto_patches.RequestOrigin,
        guard: partiql.Guard | None = None,
    ) -> _Response:
        """One request into moto's `app`, under the lock, its response read in full before the lock is
        released; `guard` says what a PartiQL batch's statements may do (`local.partiql`)."""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            captured[:] = [status, headers]
            return written.append

        with _MOTO_LOCK:
            moto_patches.set_request_origin(origin)
            partiql.set_guard(guard)
            try:
                result = app(environ, start_response)
                try:
                    chunks = b"".join(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            finally:
                moto_patches.set_request_origin(None)
                partiql.set_guard(None)
        status, headers = captured
        return _Response(int(status.split(" ", 1)[0]), _without_cors(headers), b"".join(written) + chunks)

    def _receive_messages(
        self,
        app: Any,
        environ: dict[str, Any],
        call: authz.Call,
        access: authz.RequestAccess,
        origin: moto_patches.RequestOrigin,
    ) -> _Response:
        """SQS long polling as short polls outside the lock, until a message arrives or the wait ends."""
        params = dict(access.body)
        given = params.get("WaitTimeSeconds")
        try:
            wait = self._queue_default_wait(access) if given is None else float(given)
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= MAX_LONG_POLL_SECONDS:
            message = (
                f"Value {given} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
            )
            return error_response("sqs", call.headers, 400, "InvalidParameterValue", message)
        params["WaitTimeSeconds"] = 0  # moto would wait inside the lock
        short_poll = dict(environ)
        if _is_json_protocol("sqs", call.headers):
            body = json.dumps(params).encode()
        else:  # every parameter goes into the form body, none is left in the query string to contradict it
            body = urlencode(params).encode()
            short_poll.update(QUERY_STRING="", CONTENT_TYPE="application/x-www-form-urlencoded")
        deadline = time.monotonic() + wait
        while True:
            response = self._call_moto(app, dict(short_poll), body, origin)
            if response.status != 200 or _has_messages(response.body) or time.monotonic() >= deadline:
                return response
            time.sleep(min(LONG_POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _message_move(self, call: authz.Call, access: authz.RequestAccess, caller: message_moves.Caller) -> _Response:
        """SQS message move tasks (moto has none): `local.message_moves`, JSON protocol only."""
        if not _is_json_protocol("sqs", call.headers):
            return error_response("sqs", call.headers, 400, "InvalidAction", "message move tasks: JSON protocol only")
        try:
            return _json_response(200, self._moves.handle(access.operation, dict(access.body), caller))
        except message_moves.MoveRefused as refused:
            return error_response("sqs", call.headers, 400, refused.code, str(refused))
        except Exception as error:  # e.g. a source queue that does not exist
            return error_response("sqs", call.headers, 400, "InvalidParameterValue", str(error))

    def _queue_default_wait(self, access: authz.RequestAccess) -> float:
        """The queue's ReceiveMessageWaitTimeSeconds, used when a receive does not say."""
        from moto.sqs.models import sqs_backends

        if not access.accesses:
            return 0.0
        _, _, _, region, account, name = access.accesses[0].resource.split(":", 5)
        with _MOTO_LOCK:
            queue_ = sqs_backends[account][region].queues.get(name)
            return float(getattr(queue_, "receive_message_wait_time_seconds", 0) or 0)

    def _invoke(self, call: authz.Call, caller_arn: str | None) -> _Response:
        """Lambda Invoke: handed to the session's `on_invoke`, outside the lock (moto runs no functions)."""
        match = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations/?", call.path)
        assert match is not None
        name = unquote(match.group(1))
        qualifier = call.param("Qualifier")
        if qualifier and name.count(":") in (0, 2, 6):  # name, acct:function:name, ARN: no qualifier yet
            name = f"{name}:{qualifier}"
        invocation_type = call.headers.get("x-amz-invocation-type", "RequestResponse")
        limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(call.body) > limit:
            message = f"Request must be smaller than {limit} bytes for the {invocation_type} invocation type"
            return error_response("lambda", call.headers, 413, "RequestTooLargeException", message)
        if self.on_invoke is None:
            return error_response("lambda", call.headers, 500, "ServiceException", "local mode runs no functions yet")
        request = InvokeRequest(name, invocation_type, call.body, caller_arn)
        try:
            result = self.on_invoke(request)
        except LookupError:
            arn = authz.function_arn(name, call.region, self.account_id)
            return error_response(
                "lambda", call.headers, 404, "ResourceNotFoundException", f"Function not found: {arn}"
            )
        except Exception as error:
            frames = "".join(traceback.format_tb(error.__traceback__))
            print(f"local emulator: on_invoke failed ({type(error).__name__})\n{frames}", file=sys.stderr)
            return error_response("lambda", call.headers, 500, "ServiceException", "local mode failed to invoke")
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", result.executed_version)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        return _Response(result.status, headers, result.payload)

    def _faults_endpoint(self, request: sigv4.Request) -> _Response:
        """`GET`/`POST /_local/faults`, for the administrator only (a SigV4 signature of its key, any scope)."""
        if not self._signed_by_admin(request):
            return _json_response(403, {"message": "the fault endpoint is for the local administrator only"})
        if request.method == "POST":
            try:
                data = json.loads(request.body or b"{}")
                if data == {"clear": True}:
                    self.faults.clear()
                else:
                    self.faults.add(fault_from_json(data))
            except (ValueError, TypeError) as error:
                return _json_response(400, {"message": str(error)})
        elif request.method != "GET":
            return _json_response(405, {"message": "GET or POST"})
        applied = [{"fault": fault_to_json(f), "count": count} for f, count in self.faults.applied()]
        return _json_response(200, {"faults": [fault_to_json(f) for f in self.faults.list()], "applied": applied})

    def _signed_by_admin(self, request: sigv4.Request) -> bool:
        try:
            signature = sigv4.parse(request)
            if signature is None or signature.access_key_id != self.admin.access_key_id:
                return False
            sigv4.verify(signature, self.admin.secret_access_key, request)
        except sigv4.Refused:
            return False
        return True


def _listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (werkzeug would print and exit when the port is taken)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(("127.0.0.1", port))
        listening.listen(128)
    except OSError as error:
        listening.close()
        raise OSError(error.errno, f"the emulator cannot listen on 127.0.0.1:{port}: {error.strerror}") from error
    return listening


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body (chunked transfer encoding decoded by werkzeug), for reading twice."""
    from werkzeug.wsgi import get_input_stream

    body = get_input_stream(environ).read()
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = False
    return body


def _target(environ: Mapping[str, Any]) -> str:
    """The request target as sent: path and query still percent-encoded, what a signer signed
    (werkzeug keeps it as RAW_URI; PATH_INFO is decoded)."""
    raw = environ.get("RAW_URI")
    if raw:
        return str(raw)
    query = environ.get("QUERY_STRING", "")
    return quote(environ.get("PATH_INFO", "/")) + (f"?{query}" if query else "")


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Request headers by lower-case name."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _has_messages(body: bytes) -> bool:
    """Whether a ReceiveMessage response (JSON or XML) holds at least one message."""
    if body.lstrip().startswith(b"{"):
        return bool(json.loads(body).get("Messages"))
    return b"<Message>" in body
