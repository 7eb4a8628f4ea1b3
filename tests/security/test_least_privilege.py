"""Least privilege, proven in local mode with IAM enforced: each function's role can make exactly
the calls the pipeline needs, and none of a list of calls it must not make.

One dev stack runs in this process (`local.session.LocalStack`), so the test reads every IAM decision
the emulator takes (`DecisionLog`) and can act with each function's role (a session of it, issued by
the emulator's STS, as Lambda issues one). Everything is named from the stack: its outputs, the
registry of what the program declared, the functions' own environment; resources are labelled by
what they are to the pipeline ("an upload", "the jobs table") so the expectations read as a policy
review would.

What fails here:
- a policy that narrows: the run meets a denial, or an expected call never happens (bounded wait);
- a policy that widens: a forbidden call stops being refused, or a grant appears that no call uses;
- a handler that starts a new kind of call: the observed set differs from the expected one.
Checked by hand once each way: with `worker=ReadJobs` revoked (`LocalOptions.revocations`) the run
fails at once naming ('dynamodb:GetItem', 'the jobs table'); with a stack transformation adding
`s3:GetObject` on `*` to the query role and `iam:*` to the producer's, the grants test and both
roles' denial tests fail.
"""

from __future__ import annotations

import io
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.stacks import PipelineFunctions
from handlers.common.signing import SECRET_ARN_VARIABLE
from local import authz
from local.emulator import Credentials, Emulator
from local.mocks import ACCOUNT_ID
from local.registry import FunctionSpec, Registry
from local.session import LocalOptions, LocalStack
from tests.evidence import Proof
from tests.local.support import csv_bytes, http, iam_user, job_id_for, wait_for

PARTS = ("producer", "worker", "query")
REPORT_READER = "report-reader"
"""The IAM user the stack lists in `reportReaders` (created by the test once the stack runs)."""
PROBE_SESSION = "least-privilege-probe"
"""The session name of the test's own role sessions: their calls are never mistaken for the functions'."""
DENIED_CODES = {"AccessDenied", "AccessDeniedException"}
# Valid and rejected rows, so the run writes users and a rejects report. One of its users is already
# stored, by an older upload (`OLDER_ANN`), so the worker both inserts and updates.
ROWS = csv_bytes(
    ["name", "mail", "phone"],
    [
        ["Ann", "ann@least-privilege.test", "+44 20 7946 0000"],
        ["Bob", "bob@least-privilege.test", ""],
        ["Cy", "not-an-email", ""],
        ["", "nameless@least-privilege.test", ""],
    ],
)
UPLOAD_NAME = "least-privilege.csv"
OLDER_ANN = {
    "email": {"S": "ann@least-privilege.test"},
    "name": {"S": "Ann, as an older upload left her"},
    "rowVersion": {"S": f"{1:015d}:{'0' * 64}:{1:010d}"},
}
RUN_TIMEOUT_SECONDS = 60

# --- what each role does in a run: (IAM action, resource label) ------------------------------------

EXPECTED_RUN: dict[str, set[tuple[str, str]]] = {
    "producer": {
        ("s3:GetObjectVersion", "an upload"),
        ("s3:PutObject", "a rejects report"),
        ("sqs:SendMessage", "the chunks queue"),
        ("dynamodb:PutItem", "the jobs table"),
        ("dynamodb:UpdateItem", "the jobs table"),
        ("secretsmanager:GetSecretValue", "the signing secret"),
        ("logs:CreateLogStream", "its own log group"),
        ("logs:PutLogEvents", "its own log group"),
    },
    "worker": {
        ("sqs:ReceiveMessage", "the chunks queue"),
        ("sqs:DeleteMessage", "the chunks queue"),
        ("dynamodb:GetItem", "the jobs table"),
        ("dynamodb:PutItem", "the jobs table"),
        ("dynamodb:UpdateItem", "the jobs table"),
        ("dynamodb:BatchGetItem", "the users table"),
        ("dynamodb:PartiQLInsert", "the users table"),
        ("dynamodb:PartiQLUpdate", "the users table"),
        ("secretsmanager:GetSecretValue", "the signing secret"),
        ("logs:CreateLogStream", "its own log group"),
        ("logs:PutLogEvents", "its own log group"),
    },
    "query": {
        ("dynamodb:GetItem", "the users table"),
        ("dynamodb:Scan", "the users table"),
        ("dynamodb:GetItem", "the jobs table"),
        ("dynamodb:Query", "the jobs index"),
        ("logs:CreateLogStream", "its own log group"),
        ("logs:PutLogEvents", "its own log group"),
    },
}


# --- the stack, its names, and the emulator's decisions ---------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One IAM decision the emulator took for a role session."""

    role_arn: str
    session: str
    action: str
    resource: str
    allowed: bool


class DecisionLog:
    """Every (action, resource) decision the emulator takes for a non-administrator, as it takes it.

    Observes `Emulator._authorize` (the one place identity and resource policies are evaluated)
    without changing its answer: the test reads what the pipeline asked for, not what it was told.
    """

    def __init__(self, emulator: Emulator) -> None:
        self._lock = threading.Lock()
        self._decisions: list[Decision] = []
        evaluate = emulator._authorize

        def recorded(identity: authz.Identity, access: authz.Access, region: str) -> authz.Verdict:
            verdict = evaluate(identity, access, region)
            session = identity.caller_arn.rsplit("/", 1)[-1]
            with self._lock:
                self._decisions.append(Decision(identity.arn, session, access.action, access.resource, verdict.allowed))
            return verdict

        emulator._authorize = recorded  # type: ignore[method-assign]

    def all(self) -> list[Decision]:
        with self._lock:
            return list(self._decisions)

    def mark(self) -> int:
        with self._lock:
            return len(self._decisions)

    def since(self, mark: int) -> list[Decision]:
        with self._lock:
            return self._decisions[mark:]


@dataclass
class Stack:
    """The running dev stack, its pipeline functions, and what the test needs to name its resources."""

    local: LocalStack
    outputs: dict[str, Any]
    functions: PipelineFunctions
    decisions: DecisionLog
    upload_key: str = ""
    report_key: str = ""

    @property
    def emulator(self) -> Emulator:
        assert self.local.emulator is not None
        return self.local.emulator

    def spec(self, part: str) -> FunctionSpec:
        return getattr(self.functions, part)

    @property
    def bucket(self) -> str:
        return self.outputs["bucketName"]

    @property
    def reports_prefix(self) -> str:
        return self.functions.producer.environment["REPORTS_PREFIX"]

    @property
    def jobs_index(self) -> str:
        return self.functions.query.environment["JOBS_INDEX"]

    @property
    def signing_secret(self) -> str:
        return self.functions.producer.environment[SECRET_ARN_VARIABLE]

    @property
    def registry(self) -> Registry:
        assert self.local.registry is not None
        return self.local.registry

    def queue_arn(self, output: str) -> str:
        url = self.outputs[output]
        return next(arn for arn, known in self.registry.queue_urls.items() if known == url)

    def table_arn(self, output: str) -> str:
        return f"arn:aws:dynamodb:{self.emulator.region}:{self.emulator.account_id}:table/{self.outputs[output]}"

    def label(self, resource: str, part: str) -> str:
        """What a resource is to the pipeline, from `part`'s point of view; the ARN itself if unknown."""
        queues = {
            self.queue_arn("queueUrl"): "the chunks queue",
            self.queue_arn("deadLetterQueueUrl"): "the dead-letter queue",
            self.queue_arn("failedUploadEventsQueueUrl"): "the failed-events queue",
        }
        tables = {
            self.table_arn("usersTableName"): "the users table",
            self.table_arn("jobsTableName"): "the jobs table",
            f"{self.table_arn('jobsTableName')}/index/{self.jobs_index}": "the jobs index",
        }
        functions = {self.spec(p).arn: f"the {p} function" for p in PARTS}
        log_groups = {self.spec(p).log_group: p for p in PARTS}
        bucket_arn = f"arn:aws:s3:::{self.bucket}"
        if resource in queues | tables | functions:
            return (queues | tables | functions)[resource]
        if resource == bucket_arn:
            return "the bucket"
        if resource == self.signing_secret:
            return "the signing secret"
        if resource.startswith(f"{bucket_arn}/{self.outputs['uploadsPrefix']}"):
            return "an upload"
        if resource.startswith(f"{bucket_arn}/{self.reports_prefix}"):
            return "a rejects report"
        if ":log-group:" in resource:
            owner = log_groups.get(resource.split(":log-group:", 1)[1].split(":log-stream:", 1)[0])
            return "its own log group" if owner == part else f"the {owner} log group"
        if resource.startswith(f"arn:aws:iam::{self.emulator.account_id}:role/"):
            role = resource.rsplit("/", 1)[1]
            return "its own role" if role == _role_name(self.spec(part)) else "another role"
        return resource

    def role_part(self, role_arn: str) -> str | None:
        return next((p for p in PARTS if self.spec(p).role_arn == role_arn), None)

    def observed(
        self, decisions: list[Decision], *, allowed: bool, probe: bool = False
    ) -> dict[str, set[tuple[str, str]]]:
        """By function: the (action, resource label) pairs its sessions (or the probe's) were given or refused."""
        seen: dict[str, set[tuple[str, str]]] = {p: set() for p in PARTS}
        for decision in decisions:
            part = self.role_part(decision.role_arn)
            if part is None or decision.allowed != allowed:
                continue
            if decision.session == (PROBE_SESSION if probe else self.spec(part).name):
                seen[part].add((decision.action, self.label(decision.resource, part)))
        return seen

    def session(self, role_arn: str) -> Credentials:
        """A session of a role, as the test's own (the local administrator may assume any role)."""
        return self.emulator.assume_role(role_arn, session_name=PROBE_SESSION)

    def client(self, part: str, service: str) -> Any:
        return self.emulator.client(service, self.session(self.spec(part).role_arn))

    def denials_logged(self) -> list[str]:
        """The emulator's refusals (denied and unmapped requests), from the stack's IAM log."""
        path = self.local.state / "logs" / "iam.log"
        return path.read_text().splitlines() if path.exists() else []


def _role_name(spec: FunctionSpec) -> str:
    return spec.role_arn.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    environment = dict(os.environ)  # local mode seals this process's AWS settings; give them back after
    options = LocalOptions(
        stack="dev",
        state_root=tmp_path_factory.mktemp("least-privilege"),
        # A chunk is written as soon as it is queued (the window is tested in tests/local).
        overrides={
            "workerBatchingWindowSeconds": 0,
            "reportReaders": [f"arn:aws:iam::{ACCOUNT_ID}:user/{REPORT_READER}"],
        },
        retry_delays=(1, 2),
    )
    local = LocalStack(options, io.StringIO())
    try:
        started = local.start()
        assert local.emulator is not None and local.registry is not None
        assert local.emulator.account_id == ACCOUNT_ID, "the reader listed above is of another account"
        decisions = DecisionLog(local.emulator)
        functions = PipelineFunctions.of(local.registry, started.outputs["queueUrl"])
        yield Stack(local, started.outputs, functions, decisions)
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture(scope="module")
def run(stack: Stack) -> None:
    """The pipeline on a small file (users written, rows rejected), then every API route read; done
    once every expected kind of call has happened (a refusal of any of them fails at once)."""
    stack.upload_key = stack.outputs["uploadsPrefix"] + UPLOAD_NAME
    stack.emulator.client("dynamodb").put_item(TableName=_users(stack), Item=OLDER_ANN)
    version = stack.emulator.client("s3").put_object(Bucket=stack.bucket, Key=stack.upload_key, Body=ROWS)["VersionId"]
    job_id = job_id_for(stack.bucket, stack.upload_key, version)

    def refusals() -> None:
        """A function refused anything: a narrowed policy. Fail at once, naming it."""
        refused = {p: r for p, r in stack.observed(stack.decisions.all(), allowed=False).items() if r}
        assert not refused, f"the pipeline's own calls were refused: {refused}"

    def ended() -> dict[str, Any] | None:
        refusals()
        response = http("GET", f"{stack.outputs['apiUrl']}/jobs/{job_id}", {"x-api-key": stack.outputs["apiKey"]})
        done = response.status == 200 and response.body["status"] in ("COMPLETE", "COMPLETE_WITH_REJECTS", "FAILED")
        return response.body if done else None

    job = wait_for(ended, RUN_TIMEOUT_SECONDS, f"job {job_id} to end")
    assert (job["status"], job["rowsWritten"], job["rowsRejected"]) == ("COMPLETE_WITH_REJECTS", 2, 2), job
    report = stack.emulator.client("s3").list_objects_v2(
        Bucket=stack.bucket, Prefix=job["rejectsReport"].split("/", 3)[3]
    )["Contents"]
    stack.report_key = report[0]["Key"]
    # Every route the query function serves.
    for path in ("/users/" + urllib.parse.quote("ann@least-privilege.test"), "/users", f"/jobs/{job_id}", "/jobs"):
        response = http("GET", stack.outputs["apiUrl"] + path, {"x-api-key": stack.outputs["apiKey"]})
        refusals()
        assert response.status == 200, f"GET {path}: {response.status} {response.body}"

    def every_expected_call() -> bool:
        refusals()
        seen = stack.observed(stack.decisions.all(), allowed=True)
        return all(EXPECTED_RUN[p] <= seen[p] for p in PARTS)

    try:
        wait_for(every_expected_call, 30, "every function to make each of its expected calls")
    except AssertionError as timed_out:
        seen = stack.observed(stack.decisions.all(), allowed=True)
        missing = {p: sorted(EXPECTED_RUN[p] - seen[p]) for p in PARTS}
        raise AssertionError(f"calls never made: {missing}") from timed_out


# --- proofs ---------------------------------------------------------------------------------------

RUN_PROOF = Proof(
    "SECURITY",
    "Least privilege",
    "each function runs with its own role",
    injected=(
        "a 4-row upload (2 rows rejected, 1 of its users stored by an older upload) through the dev stack in "
        "local mode, then every API route read; "
        "every IAM decision the emulator took recorded"
    ),
    held=(
        "each role made exactly its expected calls (action and resource), every one allowed; "
        "the emulator refused or could not map no request of theirs"
    ),
    figures={"distinct producer calls": 8, "distinct worker calls": 11, "distinct query calls": 6, "calls denied": 0},
    test="test_each_function_makes_exactly_its_calls_and_none_is_denied",
)
GRANTS_PROOF = Proof(
    "SECURITY",
    "Least privilege",
    "no grant beyond what is used",
    injected="every (action, resource) each function's deployed role policy grants, read from the emulator's IAM",
    held=(
        "each grant was used by the run, or by a direct call of its role for the four the small run "
        "cannot reach (continuation, failure destination, an event without versionId, the event source's "
        "attribute check)"
    ),
    figures={"grants checked": 29},
    test="test_every_grant_of_each_role_is_used",
)
DENIED_PROOFS = {
    part: Proof(
        "SECURITY",
        "Least privilege",
        f"the {part} role acting beyond its part",
        injected=f"calls with a session of the {part}'s role: {summary}",
        held="each refused with AccessDenied by the emulator's IAM evaluation of that action on that resource",
        figures={"calls denied": count},
        test="test_calls_a_role_must_not_make_are_denied",
    )
    for part, summary, count in (
        (
            "producer",
            "writing or reading users, scanning or deleting jobs, deleting an upload, reading a rejects report, "
            "writing under the uploads prefix, listing the bucket, the worker's queue actions, the DLQ, "
            "invoking the worker, the worker's log group, IAM (its own policy), assuming the worker's role",
            15,
        ),
        (
            "worker",
            "sending chunks, purging the queue, the DLQ's messages, scanning or querying jobs, reading, putting, "
            "updating or deleting users outside PartiQL, deleting jobs, reading or deleting an upload, reading a "
            "rejects report, invoking the producer, the producer's log group, IAM (its own policy), assuming the "
            "producer's role",
            18,
        ),
        (
            "query",
            "reading or deleting an upload, reading a rejects report, listing the bucket, writing or deleting "
            "users, updating jobs, scanning or querying the jobs table itself, sending or receiving chunks, "
            "reading the chunk signing secret, invoking the producer, the producer's log group, IAM (its own "
            "policy), assuming the producer's role",
            16,
        ),
    )
}
REPORT_PROOF = Proof(
    "SECURITY",
    "Least privilege",
    "who can read a rejects report",
    injected=(
        "GetObject on a rejects report with a session of every role the stack creates, as an IAM user whose"
        " own policy allows s3:* on everything, and as the user the stack lists in `reportReaders`"
    ),
    held=(
        "every role and the unlisted user are refused (the bucket policy denies everyone `reportReaders`"
        " does not name); the listed user reads it"
    ),
    figures={"principals denied": 5, "principals allowed": 1},
    test="test_rejects_report_is_readable_only_by_the_principals_the_stack_names",
)
PROOFS = [RUN_PROOF, GRANTS_PROOF, *DENIED_PROOFS.values(), REPORT_PROOF]


# --- every call it makes succeeds --------------------------------------------------------------------


@pytest.mark.usefixtures("run")
def test_each_function_makes_exactly_its_calls_and_none_is_denied(stack: Stack) -> None:
    # Everything the functions' sessions did so far, not only up to the moment the run was complete.
    made = stack.observed(stack.decisions.all(), allowed=True)
    for part in PARTS:
        assert made[part] == EXPECTED_RUN[part], f"{part}: unexpected {made[part] - EXPECTED_RUN[part]}"
        assert len(made[part]) == RUN_PROOF.figures[f"distinct {part} calls"]
    refused = stack.observed(stack.decisions.all(), allowed=False)
    assert sum(len(r) for r in refused.values()) == RUN_PROOF.figures["calls denied"], refused
    # Unmapped requests never reach the evaluation: the emulator logs them, naming the session.
    sessions = [f"{_role_name(stack.spec(p))}/{stack.spec(p).name}" for p in PARTS]
    assert not [line for line in stack.denials_logged() if any(s in line for s in sessions)]


def _granted(stack: Stack, part: str) -> set[tuple[str, str]]:
    """(action, resource label) for every action and resource the role's deployed policies allow."""
    iam, role = stack.emulator.client("iam"), _role_name(stack.spec(part))
    grants = set()
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", f"{part}: {statement}"
            grants |= {(a, stack.label(r, part)) for a in statement["Action"] for r in statement["Resource"]}
    assert not iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], f"{part}: managed policies"
    return grants


def _unreached_grants(stack: Stack) -> dict[str, set[tuple[str, str]]]:
    """Use, with each role's own session, the grants a small file never needs; what they were allowed."""
    mark = stack.decisions.mark()
    producer = stack.functions.producer
    # A file longer than one invocation continues in an asynchronous self-invocation (DryRun: authorised, not run).
    stack.client("producer", "lambda").invoke(FunctionName=producer.name, InvocationType="DryRun")
    # Lambda sends a failed upload event to the on-failure destination with the function's role.
    failed_events = stack.outputs["failedUploadEventsQueueUrl"]
    stack.client("producer", "sqs").send_message(QueueUrl=failed_events, MessageBody="{}")
    # An event without a versionId (none from a versioned bucket) reads the upload's current version.
    stack.client("producer", "s3").head_object(Bucket=stack.bucket, Key=stack.upload_key)
    # Lambda's SQS event source reads the queue's attributes with the worker's role (local mode's poller does not).
    stack.client("worker", "sqs").get_queue_attributes(QueueUrl=stack.outputs["queueUrl"], AttributeNames=["All"])
    return stack.observed(stack.decisions.since(mark), allowed=True, probe=True)


@pytest.mark.usefixtures("run")
def test_every_grant_of_each_role_is_used(stack: Stack) -> None:
    direct = _unreached_grants(stack)
    made = stack.observed(stack.decisions.all(), allowed=True)
    checked = 0
    for part in PARTS:
        used = made[part] | direct[part]
        granted = _granted(stack, part)
        # Each log grant is on the group's streams (`log-group:NAME:log-stream:*`), labelled as the group.
        assert granted - used == set(), f"{part}: granted but never used: {granted - used}"
        assert used - granted == set(), f"{part}: used without a grant of its own: {used - granted}"
        checked += len(granted)
    assert checked == GRANTS_PROOF.figures["grants checked"]


# --- a list of calls it must not be able to make is denied ---------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A call a role must not be able to make: the IAM action refused, on the resource labelled so."""

    action: str
    target: str
    call: Callable[[Stack, str], Any]
    """(stack, part) → the request, made with a session of that part's role."""


def _item(key: str, value: str) -> dict[str, Any]:
    return {key: {"S": value}}


def _users(stack: Stack) -> str:
    return stack.outputs["usersTableName"]


def _jobs(stack: Stack) -> str:
    return stack.outputs["jobsTableName"]


def _dynamodb(s: Stack, part: str) -> Any:
    return s.client(part, "dynamodb")


def _s3(s: Stack, part: str) -> Any:
    return s.client(part, "s3")


def _sqs(s: Stack, part: str) -> Any:
    return s.client(part, "sqs")


def _other(part: str) -> str:
    """Another pipeline function than `part` (the one it is most tempting to reach)."""
    return {"producer": "worker", "worker": "producer", "query": "producer"}[part]


# Calls every role must be refused.
COMMON: list[Attempt] = [
    Attempt("s3:DeleteObject", "an upload", lambda s, p: _s3(s, p).delete_object(Bucket=s.bucket, Key=s.upload_key)),
    Attempt("s3:GetObject", "a rejects report", lambda s, p: _s3(s, p).get_object(Bucket=s.bucket, Key=s.report_key)),
    Attempt(
        "lambda:InvokeFunction",
        "the {other} function",
        lambda s, p: s.client(p, "lambda").invoke(FunctionName=s.spec(_other(p)).name, InvocationType="DryRun"),
    ),
    Attempt(
        "logs:PutLogEvents",
        "the {other} log group",
        lambda s, p: s.client(p, "logs").put_log_events(
            logGroupName=s.spec(_other(p)).log_group,
            logStreamName="forged",
            logEvents=[{"timestamp": 0, "message": "forged"}],
        ),
    ),
    Attempt(
        "iam:PutRolePolicy",
        "its own role",
        lambda s, p: s.client(p, "iam").put_role_policy(
            RoleName=_role_name(s.spec(p)), PolicyName="wider", PolicyDocument="{}"
        ),
    ),
    Attempt(
        "sts:AssumeRole",
        "another role",
        lambda s, p: s.client(p, "sts").assume_role(RoleArn=s.spec(_other(p)).role_arn, RoleSessionName="hop"),
    ),
]

FORBIDDEN: dict[str, list[Attempt]] = {
    "producer": [
        Attempt(
            "dynamodb:PutItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).put_item(TableName=_users(s), Item=_item("email", "x@least-privilege.test")),
        ),
        Attempt(
            "dynamodb:GetItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).get_item(TableName=_users(s), Key=_item("email", "ann@least-privilege.test")),
        ),
        Attempt("dynamodb:Scan", "the jobs table", lambda s, p: _dynamodb(s, p).scan(TableName=_jobs(s))),
        Attempt(
            "dynamodb:DeleteItem",
            "the jobs table",
            lambda s, p: _dynamodb(s, p).delete_item(
                TableName=_jobs(s), Key={**_item("jobId", "x"), **_item("sk", "JOB")}
            ),
        ),
        Attempt(
            "s3:PutObject",
            "an upload",
            lambda s, p: _s3(s, p).put_object(Bucket=s.bucket, Key=s.outputs["uploadsPrefix"] + "loop.csv", Body=b""),
        ),
        Attempt("s3:ListBucket", "the bucket", lambda s, p: _s3(s, p).list_objects_v2(Bucket=s.bucket)),
        Attempt(
            "sqs:ReceiveMessage",
            "the chunks queue",
            lambda s, p: _sqs(s, p).receive_message(QueueUrl=s.outputs["queueUrl"], WaitTimeSeconds=0),
        ),
        Attempt(
            "sqs:DeleteMessage",
            "the chunks queue",
            lambda s, p: _sqs(s, p).delete_message(QueueUrl=s.outputs["queueUrl"], ReceiptHandle="forged"),
        ),
        Attempt(
            "sqs:SendMessage",
            "the dead-letter queue",
            lambda s, p: _sqs(s, p).send_message(QueueUrl=s.outputs["deadLetterQueueUrl"], MessageBody="{}"),
        ),
        *COMMON,
    ],
    "worker": [
        Attempt(
            "sqs:SendMessage",
            "the chunks queue",
            lambda s, p: _sqs(s, p).send_message(QueueUrl=s.outputs["queueUrl"], MessageBody="{}"),
        ),
        Attempt(
            "sqs:PurgeQueue", "the chunks queue", lambda s, p: _sqs(s, p).purge_queue(QueueUrl=s.outputs["queueUrl"])
        ),
        Attempt(
            "sqs:ReceiveMessage",
            "the dead-letter queue",
            lambda s, p: _sqs(s, p).receive_message(QueueUrl=s.outputs["deadLetterQueueUrl"], WaitTimeSeconds=0),
        ),
        Attempt(
            "sqs:DeleteMessage",
            "the dead-letter queue",
            lambda s, p: _sqs(s, p).delete_message(QueueUrl=s.outputs["deadLetterQueueUrl"], ReceiptHandle="forged"),
        ),
        Attempt("dynamodb:Scan", "the jobs table", lambda s, p: _dynamodb(s, p).scan(TableName=_jobs(s))),
        Attempt(
            "dynamodb:Query",
            "the jobs index",
            lambda s, p: _dynamodb(s, p).query(
                TableName=_jobs(s),
                IndexName=s.jobs_index,
                KeyConditionExpression="recentPk = :pk",
                ExpressionAttributeValues={":pk": {"S": "x"}},
            ),
        ),
        Attempt(
            "dynamodb:GetItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).get_item(TableName=_users(s), Key=_item("email", "ann@least-privilege.test")),
        ),
        Attempt(
            "dynamodb:PutItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).put_item(TableName=_users(s), Item=_item("email", "x@least-privilege.test")),
        ),
        Attempt(
            "dynamodb:UpdateItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).update_item(
                TableName=_users(s),
                Key=_item("email", "ann@least-privilege.test"),
                UpdateExpression="SET #n = :n",
                ExpressionAttributeNames={"#n": "name"},
                ExpressionAttributeValues={":n": {"S": "x"}},
            ),
        ),
        Attempt(
            "dynamodb:DeleteItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).delete_item(
                TableName=_users(s), Key=_item("email", "ann@least-privilege.test")
            ),
        ),
        Attempt(
            "dynamodb:DeleteItem",
            "the jobs table",
            lambda s, p: _dynamodb(s, p).delete_item(
                TableName=_jobs(s), Key={**_item("jobId", "x"), **_item("sk", "JOB")}
            ),
        ),
        Attempt("s3:GetObject", "an upload", lambda s, p: _s3(s, p).get_object(Bucket=s.bucket, Key=s.upload_key)),
        *COMMON,
    ],
    "query": [
        Attempt("s3:GetObject", "an upload", lambda s, p: _s3(s, p).get_object(Bucket=s.bucket, Key=s.upload_key)),
        Attempt("s3:ListBucket", "the bucket", lambda s, p: _s3(s, p).list_objects_v2(Bucket=s.bucket)),
        Attempt(
            "dynamodb:PutItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).put_item(TableName=_users(s), Item=_item("email", "x@least-privilege.test")),
        ),
        Attempt(
            "dynamodb:DeleteItem",
            "the users table",
            lambda s, p: _dynamodb(s, p).delete_item(
                TableName=_users(s), Key=_item("email", "ann@least-privilege.test")
            ),
        ),
        Attempt(
            "dynamodb:UpdateItem",
            "the jobs table",
            lambda s, p: _dynamodb(s, p).update_item(
                TableName=_jobs(s),
                Key={**_item("jobId", "x"), **_item("sk", "JOB")},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": "COMPLETE"}},
            ),
        ),
        Attempt("dynamodb:Scan", "the jobs table", lambda s, p: _dynamodb(s, p).scan(TableName=_jobs(s))),
        Attempt(
            "dynamodb:Query",
            "the jobs table",
            lambda s, p: _dynamodb(s, p).query(
                TableName=_jobs(s),
                KeyConditionExpression="jobId = :j",
                ExpressionAttributeValues={":j": {"S": "x"}},
            ),
        ),
        Attempt(
            "sqs:SendMessage",
            "the chunks queue",
            lambda s, p: _sqs(s, p).send_message(QueueUrl=s.outputs["queueUrl"], MessageBody="{}"),
        ),
        Attempt(
            "sqs:ReceiveMessage",
            "the chunks queue",
            lambda s, p: _sqs(s, p).receive_message(QueueUrl=s.outputs["queueUrl"], WaitTimeSeconds=0),
        ),
        # It reads job records, never the secret their chunks' keys derive from.
        Attempt(
            "secretsmanager:GetSecretValue",
            "the signing secret",
            lambda s, p: s.client(p, "secretsmanager").get_secret_value(SecretId=s.signing_secret),
        ),
        *COMMON,
    ],
}


@pytest.mark.usefixtures("run")
@pytest.mark.parametrize("part", PARTS)
def test_calls_a_role_must_not_make_are_denied(stack: Stack, part: str) -> None:
    denied = []
    for attempt in FORBIDDEN[part]:
        target = attempt.target.format(other=_other(part))
        what = f"{part}: {attempt.action} on {target}"
        mark = stack.decisions.mark()
        with pytest.raises(ClientError) as raised:
            attempt.call(stack, part)
        assert raised.value.response["Error"]["Code"] in DENIED_CODES, f"{what}: {raised.value}"
        # Refused by the evaluation of that action on that resource (not unmapped, not another check).
        refused = stack.observed(stack.decisions.since(mark), allowed=False, probe=True)[part]
        assert (attempt.action, target) in refused, f"{what}: refusals recorded {refused}"
        denied.append((attempt.action, target))
    assert len(set(denied)) == len(denied) == DENIED_PROOFS[part].figures["calls denied"]


# --- the rejects report ------------------------------------------------------------------------------


def _user_allowed_all_of_s3(emulator: Emulator, name: str) -> Credentials:
    """An IAM user of the account whose own policy allows every S3 action on everything, and its keys."""
    return iam_user(emulator.client("iam"), name, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}).credentials


@pytest.mark.usefixtures("run")
def test_rejects_report_is_readable_only_by_the_principals_the_stack_names(stack: Stack) -> None:
    # No principal is granted anything by the bucket's policy: it only denies.
    bucket_policy = stack.registry.resource_policies[f"arn:aws:s3:::{stack.bucket}"]
    assert [s for s in bucket_policy["Statement"] if s["Effect"] != "Deny"] == []
    roles = [r["Arn"] for r in stack.emulator.client("iam").list_roles()["Roles"]]
    unlisted = _user_allowed_all_of_s3(stack.emulator, "curious-operator")
    refused = 0
    for who, credentials in [*((role, stack.session(role)) for role in roles), ("an unlisted user", unlisted)]:
        s3 = stack.emulator.client("s3", credentials)
        with pytest.raises(ClientError) as raised:
            s3.get_object(Bucket=stack.bucket, Key=stack.report_key)
        assert raised.value.response["Error"]["Code"] == "AccessDenied", f"{who}: {raised.value}"
        refused += 1
    # The unlisted user's own policy does allow it: the refusal is the bucket policy's.
    stack.emulator.client("s3", unlisted).head_bucket(Bucket=stack.bucket)

    reader = _user_allowed_all_of_s3(stack.emulator, REPORT_READER)
    report = stack.emulator.client("s3", reader).get_object(Bucket=stack.bucket, Key=stack.report_key)["Body"].read()
    assert report.decode().splitlines()[0].startswith("row,line,reason"), "the listed reader reads the report"
    assert {"principals denied": refused, "principals allowed": 1} == REPORT_PROOF.figures
