"""What the emulator does with a request once its signature is verified: the service it goes to, the
policies it is judged by, and what a message move may do in the caller's name.

The attacker is a same-account principal with partial rights (or none) who signs its own requests
correctly and shapes everything else: the credential scope, the path, the body, the query. Requests
are sent over HTTP exactly as such a client would send them; botocore signs them, as any client would.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from local import sigv4
from local.emulator import Credentials, Emulator, Fault
from tests.evidence import Proof
from tests.local.conftest import REGION
from tests.local.support import iam_user
from tests.local.test_emulator_signatures import Answer, boto, send

DOCUMENT = b"name,mail\nAnn,ann@routes.test\n"
DEAD_LETTER = '{"rows": [["Ann", "ann@routes.test"]]}'
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# What a caller of StartMessageMoveTask must be allowed besides it: receive, delete and read the
# attributes of the dead-letter queue, send to the destination
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html).
ON_THE_DEAD_LETTER_QUEUE = [
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
]

CONFUSED = Proof(
    "SECURITY",
    "Local mode",
    "requests whose signature names one service and whose path or body another",
    injected=(
        "over HTTP, by IAM users with no policy or sqs:* on one queue of their own: a presigned GET of an upload "
        "scoped to sts (?Action=GetCallerIdentity), a PUT of a report whose Authorization header carries two "
        "Credential fields (s3 first, sts last), a presigned POST scoped to sqs naming the user's queue whose "
        "form body is STS AssumeRoleWithWebIdentity for an allow-all role (moto issued its credentials); and "
        "moto's own endpoints (/moto-api/reset, "
        "/moto-api/data.json, /moto-api/reset-auth, /latest/meta-data/, /latest/api/token) signed by the local "
        "administrator and by an IAM user allowed everything"
    ),
    held=(
        "each request served by the service its verified signature names, or refused: the upload not read, "
        "no report planted, no role credentials issued, a header with a repeated field refused as malformed; "
        "moto's endpoints refused to everyone, every bucket still there"
    ),
    figures={"confused requests neither read nor wrote": 3, "requests to moto's own endpoints refused": 10},
    test="test_a_request_goes_to_the_service_its_signature_names",
)
MOVED_AS_CALLER = Proof(
    "SECURITY",
    "Local mode",
    "dead letters moved out by a message move task",
    injected=(
        "StartMessageMoveTask on a dead-letter queue whose policy denies receive and delete to all but its "
        "redrive principal: by an IAM user allowed sqs:* moving into a queue of its own; by the redrive "
        "principal without sqs:SendMessage on the destination; by the redrive principal allowed all, once "
        "with its rights left in place and once with its policy deleted while the task runs"
    ),
    held=(
        "the task runs with the caller's identity: the first two refused with AccessDenied naming the action "
        "and queue, nothing moved; the third moves its message to the source queue; the fourth fails "
        "(AccessDenied), its message not sent on, still in the dead-letter queue"
    ),
    figures={
        "move tasks refused at start": 2,
        "dead letters moved by an allowed caller": 1,
        "tasks failed mid-move": 1,
    },
    test="test_a_message_move_runs_with_the_callers_rights",
)
PROOFS = [CONFUSED, MOVED_AS_CALLER]


# --- helpers --------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: Any, resources: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def user(emulator: Emulator, *statements: dict[str, Any]) -> tuple[str, Credentials]:
    """An IAM user with these statements (none: no policy at all), and its keys."""
    created = iam_user(emulator.client("iam"), unique("user"), *statements)
    return created.arn, created.credentials


def bucket_with_upload(emulator: Emulator) -> str:
    bucket, s3 = unique("routes"), emulator.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="uploads/secret.csv", Body=DOCUMENT)
    return bucket


def queue(emulator: Emulator, name: str, **attributes: str) -> tuple[str, str]:
    """A queue: (url, arn)."""
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName=unique(name), Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def keys(emulator: Emulator, bucket: str) -> set[str]:
    return {o["Key"] for o in emulator.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])}


def signed(credentials: Credentials, service: str, method: str, url: str, body: bytes = b"") -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body)
    (S3SigV4Auth if service == "s3" else SigV4Auth)(boto(credentials), service, REGION).add_auth(request)
    return dict(request.headers.items())


def presigned(credentials: Credentials, service: str, method: str, url: str) -> str:
    request = AWSRequest(method=method, url=url)
    (S3SigV4QueryAuth if service == "s3" else SigV4QueryAuth)(boto(credentials), service, REGION, expires=300).add_auth(
        request
    )
    return request.url


class _BodyKept(SigV4QueryAuth):
    """botocore's presigner moves a form body into the query string; this one signs it where it is."""

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        body, request.data = request.data, b""
        super()._modify_request_before_signing(request)
        request.data = body


def presigned_with_body(credentials: Credentials, service: str, url: str, body: bytes, headers: dict[str, str]) -> str:
    """A presigned POST URL whose signature covers `body` (sent as the request's body)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    _BodyKept(boto(credentials), service, REGION, expires=300).add_auth(request)
    return request.url


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def count_in(emulator: Emulator, url: str) -> int:
    """Messages in a queue, visible or not."""
    attributes = emulator.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


# --- 1. the service a request goes to ---------------------------------------------------------


def test_a_request_goes_to_the_service_its_signature_names(emulator: Emulator) -> None:
    bucket = bucket_with_upload(emulator)
    endpoint = emulator.endpoint_url
    _, nobody = user(emulator)
    own_queue, own_queue_arn = queue(emulator, "own")
    _, owner = user(emulator, allow("sqs:*", own_queue_arn))
    iam, role_name = emulator.client("iam"), unique("everything")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="all", PolicyDocument=json.dumps(policy(allow("*", "*"))))
    _, everything = user(emulator, allow("*", "*"))

    # An sts-scoped URL for an object's path: moto serves a request without an Authorization header
    # from S3 unless its path or body says otherwise.
    as_sts = send(
        "GET", presigned(nobody, "sts", "GET", f"{endpoint}/{bucket}/uploads/secret.csv?Action=GetCallerIdentity")
    )
    # Two Credential fields: moto routes on the first (s3), a reader keeping the last sees sts.
    report = f"{endpoint}/{bucket}/reports/planted/rejects-0000.csv?Action=GetCallerIdentity"
    headers = signed(nobody, "sts", "PUT", report, b"row,line,reason\n")
    algorithm, fields = headers["Authorization"].split(" ", 1)
    first = fields.split(",")[0].replace("/sts/", "/s3/")
    headers["Authorization"] = f"{algorithm} {first}, {fields}"
    planted = send("PUT", report, headers, b"row,line,reason\n")
    # A presigned POST scoped to sqs, naming the caller's own queue, whose form body is an STS action:
    # moto hands a request without an Authorization header whose body says AssumeRoleWithWebIdentity to STS.
    form = urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "QueueName": own_queue.rsplit("/", 1)[1],
            "RoleArn": role,
            "RoleSessionName": "escalated",
            "WebIdentityToken": "anything",
        }
    ).encode()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    escalation = send("POST", presigned_with_body(owner, "sqs", f"{endpoint}/", form, form_type), form_type, form)
    confused = [("sts-scoped GET", as_sts), ("two credentials", planted), ("STS body, sqs scope", escalation)]

    internal: list[tuple[str, Answer]] = []
    for who, credentials in (("admin", emulator.admin), ("user", everything)):
        for method, path in (
            ("POST", "/moto-api/reset"),
            ("GET", "/moto-api/data.json"),
            ("POST", "/moto-api/reset-auth"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            ("PUT", "/latest/api/token"),
        ):
            url = f"{endpoint}{path}"
            internal.append((f"{who} {method} {path}", send(method, url, signed(credentials, "sts", method, url))))

    for what, answer in confused:
        assert DOCUMENT not in answer.body, what
        assert b"SecretAccessKey" not in answer.body and b"AssumeRoleWithWebIdentity" not in answer.body, what
    assert as_sts.status == 404  # served by STS, the service the URL was signed for, which has no such path
    assert (planted.status, planted.code) == (400, "AuthorizationHeaderMalformed")  # S3's words: s3 comes first
    assert keys(emulator, bucket) == {"uploads/secret.csv"}  # nothing planted, nothing posted
    for what, answer in internal:
        assert answer.status == 403, what
    assert bucket in {b["Name"] for b in emulator.client("s3").list_buckets()["Buckets"]}
    assert len(confused) == CONFUSED.figures["confused requests neither read nor wrote"]
    assert len(internal) == CONFUSED.figures["requests to moto's own endpoints refused"]


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential={c}, Credential={c}, SignedHeaders=host;x-amz-date, Signature={s}",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;x-amz-date, Signature={s}, Credential={c}",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;x-amz-date, Signature={s}, Signature={s}",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;x-amz-date, Signature={s}, Extra=1",
        "AWS4-HMAC-SHA256 Signature={s}, Credential={c}, SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256, Credential={c}, SignedHeaders=host;x-amz-date, Signature={s}",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;x-amz-date, Signature={s},",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;x-amz-date, Signature=not-hex",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=, Signature={s}",
        "AWS4-HMAC-SHA256 Credential={c} SignedHeaders=host;x-amz-date Signature={s}",
    ],
)
def test_an_authorization_header_not_exactly_of_sigv4s_form_is_refused(authorization: str) -> None:
    credential = f"AKIDEXAMPLE/20250101/{REGION}/s3/aws4_request"
    header = authorization.format(c=credential, s="a" * 64)
    request = sigv4.Request.of("GET", "/", {"Authorization": header, "X-Amz-Date": "20250101T000000Z"}, b"")

    with pytest.raises(sigv4.Refused) as refused:
        sigv4.parse(request)

    assert refused.value.failure is sigv4.Failure.MALFORMED


def test_a_presigned_url_repeating_an_authentication_parameter_is_refused() -> None:
    credential = urllib.parse.quote(f"AKIDEXAMPLE/20250101/{REGION}/s3/aws4_request", safe="")
    query = (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date=20250101T000000Z"
        f"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={'a' * 64}"
    )
    twice = query + f"&X-Amz-Credential={credential.replace('s3', 'sts')}"
    request = sigv4.Request.of("GET", f"/bucket/key?{twice}", {}, b"")

    assert sigv4.parse(sigv4.Request.of("GET", f"/bucket/key?{query}", {}, b"")) is not None
    with pytest.raises(sigv4.Refused) as refused:
        sigv4.parse(request)
    assert refused.value.failure is sigv4.Failure.MALFORMED


# --- 2. message moves in the caller's name ---------------------------------------------------


def dead_letter_queue(emulator: Emulator, redrive_principal: str) -> tuple[str, str, str, str]:
    """A source queue and its DLQ holding one message, the DLQ's policy denying receive and delete to
    all but `redrive_principal` (as the program's does): (source url, source arn, dlq url, dlq arn)."""
    dlq_url, dlq_arn = queue(emulator, "dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    source_url, source_arn = queue(emulator, "chunks", RedrivePolicy=redrive)
    emulator.resource_policies[dlq_arn] = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
            "Resource": dlq_arn,
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": redrive_principal}},
        }
    )
    emulator.client("sqs").send_message(QueueUrl=dlq_url, MessageBody=DEAD_LETTER)
    return source_url, source_arn, dlq_url, dlq_arn


def settled(emulator: Emulator, credentials: Credentials, dlq_arn: str) -> dict[str, Any]:
    """The latest move task of the DLQ, once it has stopped running."""
    sqs = emulator.client("sqs", credentials)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
        if task["Status"] != "RUNNING":
            return task
        time.sleep(0.1)
    raise AssertionError("the move task never ended")


def test_a_message_move_runs_with_the_callers_rights(emulator: Emulator) -> None:
    iam = emulator.client("iam")
    # The redrive principal: a user the DLQ's policy lets receive and delete.
    redrive_name = unique("redrive")
    redrive = iam_user(iam, redrive_name)
    redrive_arn, redriver = redrive.arn, redrive.credentials

    # 1. An intruder allowed sqs:* moves the dead letters into a queue of its own.
    _, _, dlq_url, dlq_arn = dead_letter_queue(emulator, redrive_arn)
    _, intruder = user(emulator, allow("sqs:*", "*"))
    own_url, own_arn = queue(emulator, "intruder")
    intruder_code = error_code(
        lambda: emulator.client("sqs", intruder).start_message_move_task(SourceArn=dlq_arn, DestinationArn=own_arn)
    )
    time.sleep(0.5)  # a move that had started would have moved the message by now
    intruder_kept_out = count_in(emulator, own_url) == 0 and count_in(emulator, dlq_url) == 1

    # 2. The redrive principal, without sqs:SendMessage on the destination.
    rights = policy(allow(ON_THE_DEAD_LETTER_QUEUE, dlq_arn))
    iam.put_user_policy(UserName=redrive_name, PolicyName="p", PolicyDocument=json.dumps(rights))
    with pytest.raises(ClientError) as no_send:
        emulator.client("sqs", redriver).start_message_move_task(SourceArn=dlq_arn, DestinationArn=own_arn)

    # 3. The redrive principal allowed everything it needs: back to the source queue.
    source_url, _, _, dlq_arn_3 = dead_letter_queue(emulator, redrive_arn)
    rights = policy(allow(ON_THE_DEAD_LETTER_QUEUE, dlq_arn_3), allow("sqs:SendMessage", "*"))
    iam.put_user_policy(UserName=redrive_name, PolicyName="p", PolicyDocument=json.dumps(rights))
    emulator.client("sqs", redriver).start_message_move_task(SourceArn=dlq_arn_3)
    moved = settled(emulator, redriver, dlq_arn_3)

    # 4. Allowed at the start, its policy deleted while the move waits for its first receive.
    destination_url, destination_arn = queue(emulator, "destination")
    _, _, dlq_url_4, dlq_arn_4 = dead_letter_queue(emulator, redrive_arn)
    rights = policy(allow(ON_THE_DEAD_LETTER_QUEUE, dlq_arn_4), allow("sqs:SendMessage", destination_arn))
    iam.put_user_policy(UserName=redrive_name, PolicyName="p", PolicyDocument=json.dumps(rights))
    emulator.faults.add(Fault("sqs", "ReceiveMessage", delay_seconds=1.0, times=1, principal=redrive_name))
    try:
        emulator.client("sqs", redriver).start_message_move_task(SourceArn=dlq_arn_4, DestinationArn=destination_arn)
        iam.delete_user_policy(UserName=redrive_name, PolicyName="p")
        iam.put_user_policy(  # lists its tasks still, nothing else
            UserName=redrive_name,
            PolicyName="p",
            PolicyDocument=json.dumps(policy(allow("sqs:ListMessageMoveTasks", dlq_arn_4))),
        )
        failed = settled(emulator, redriver, dlq_arn_4)
    finally:
        emulator.faults.clear()

    assert intruder_code == "AccessDenied" and intruder_kept_out
    no_send_error = no_send.value.response["Error"]
    assert no_send_error["Code"] == "AccessDenied"
    assert "sqs:SendMessage" in no_send_error["Message"] and own_arn in no_send_error["Message"]
    assert count_in(emulator, own_url) == 0 and count_in(emulator, dlq_url) == 1
    assert (moved["Status"], moved["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 1)
    assert [m["Body"] for m in emulator.client("sqs").receive_message(QueueUrl=source_url)["Messages"]] == [DEAD_LETTER]
    assert failed["Status"] == "FAILED" and "AccessDenied" in failed.get("FailureReason", "")
    assert "routes.test" not in failed["FailureReason"]
    assert count_in(emulator, destination_url) == 0 and count_in(emulator, dlq_url_4) == 1
    refused_at_start = [intruder_code, no_send_error["Code"]]
    assert len(refused_at_start) == MOVED_AS_CALLER.figures["move tasks refused at start"]
    assert (
        moved["ApproximateNumberOfMessagesMoved"] == MOVED_AS_CALLER.figures["dead letters moved by an allowed caller"]
    )
    assert [failed["Status"]].count("FAILED") == MOVED_AS_CALLER.figures["tasks failed mid-move"]


# --- 3. the policies a request is judged by --------------------------------------------------


def test_a_rewritten_queue_policy_judges_the_next_call(emulator: Emulator) -> None:
    url, arn = queue(emulator, "chunks")
    sender_arn, sender = user(emulator, allow("sqs:SendMessage", arn))
    deny_sender = {
        "Sid": "DenySender",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnEquals": {"aws:PrincipalArn": sender_arn}},
    }
    admin, sqs = emulator.client("sqs"), emulator.client("sqs", sender)

    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy(deny_sender))})
    while_denied = error_code(lambda: sqs.send_message(QueueUrl=url, MessageBody="a"))
    admin.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps(policy({**deny_sender, "Effect": "Allow"}))}
    )
    sqs.send_message(QueueUrl=url, MessageBody="b")
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy(deny_sender))})
    denied_again = error_code(lambda: sqs.send_message(QueueUrl=url, MessageBody="c"))
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})  # removed
    sqs.send_message(QueueUrl=url, MessageBody="d")

    assert (while_denied, denied_again) == ("AccessDenied", "AccessDenied")
    assert count_in(emulator, url) == 2


def test_a_queue_policy_set_over_the_query_protocol_judges_the_next_call(emulator: Emulator) -> None:
    url, arn = queue(emulator, "chunks")
    sender_arn, sender = user(emulator, allow("sqs:SendMessage", arn))
    deny_sender = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": sender_arn},
            "Action": "sqs:SendMessage",
            "Resource": arn,
        }
    )
    form = urllib.parse.urlencode(
        {
            "Action": "SetQueueAttributes",
            "Version": "2012-11-05",
            "QueueUrl": url,
            "Attribute.1.Name": "Policy",
            "Attribute.1.Value": json.dumps(deny_sender),
        }
    ).encode()
    headers = {**signed(emulator.admin, "sqs", "POST", url, form), "Content-Type": "application/x-www-form-urlencoded"}

    answer = send("POST", url, headers, form)

    assert answer.status == 200, answer.body
    assert (
        error_code(lambda: emulator.client("sqs", sender).send_message(QueueUrl=url, MessageBody="a")) == "AccessDenied"
    )


def test_a_bucket_policy_put_and_deleted_judges_the_next_call(emulator: Emulator) -> None:
    bucket = bucket_with_upload(emulator)
    reader_arn, reader = user(emulator, allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*"))
    deny_reader = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": reader_arn},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    )
    admin, s3 = emulator.client("s3"), emulator.client("s3", reader)

    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_reader))
    while_denied = error_code(lambda: s3.get_object(Bucket=bucket, Key="uploads/secret.csv"))
    admin.delete_bucket_policy(Bucket=bucket)

    assert while_denied == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="uploads/secret.csv")["Body"].read() == DOCUMENT


def test_a_queue_made_again_under_a_deleted_ones_name_has_no_policy(emulator: Emulator) -> None:
    sqs, name = emulator.client("sqs"), unique("again")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sender_arn, sender = user(emulator, allow("sqs:SendMessage", arn))
    deny_sender = policy({"Effect": "Deny", "Principal": {"AWS": sender_arn}, "Action": "sqs:*", "Resource": arn})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(deny_sender)})

    sqs.delete_queue(QueueUrl=url)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    emulator.client("sqs", sender).send_message(QueueUrl=url, MessageBody="a")

    assert count_in(emulator, url) == 1


def test_a_policy_that_is_not_a_json_object_is_refused_and_the_last_one_stays(emulator: Emulator) -> None:
    url, arn = queue(emulator, "chunks")
    sender_arn, sender = user(emulator, allow("sqs:SendMessage", arn))
    deny_sender = policy({"Effect": "Deny", "Principal": {"AWS": sender_arn}, "Action": "sqs:*", "Resource": arn})
    admin = emulator.client("sqs")
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(deny_sender)})

    code = error_code(lambda: admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": "{not json"}))

    assert code == "InvalidAttributeValue"
    assert (
        error_code(lambda: emulator.client("sqs", sender).send_message(QueueUrl=url, MessageBody="a")) == "AccessDenied"
    )


# --- 4. the administrator's secret -----------------------------------------------------------


def test_the_administrator_secret_once_in_the_repository_is_refused(emulator: Emulator) -> None:
    former = Credentials(emulator.admin.access_key_id, "local-admin-secret-for-the-emulator-only")
    url = f"{emulator.endpoint_url}/"

    answer = send("GET", url, signed(former, "s3", "GET", url))

    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")
    assert len(emulator.admin.secret_access_key) >= 40
