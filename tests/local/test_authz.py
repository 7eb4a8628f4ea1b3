"""The emulator's IAM: the policy evaluator on its own, the request mapping, and both through the server."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import authz
from local.emulator import Credentials, Emulator
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import iam_user

PRODUCER = f"arn:aws:iam::{ACCOUNT}:role/producer"
WORKER = f"arn:aws:iam::{ACCOUNT}:role/worker"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def identity(arn: str = WORKER, *policies: dict[str, Any]) -> authz.Identity:
    name = arn.rsplit("/", 1)[-1]
    return authz.Identity(
        arn=arn,
        caller_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session",
        account_id=ACCOUNT,
        kind="AssumedRole",
        unique_id="AROAEXAMPLE:session",
        secret_access_key="secret",
        policies=policies,
    )


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: Any, resources: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def deny(actions: Any, resources: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resources, **extra}


def allowed(who: authz.Identity, action: str, resource: str, resource_policy: dict[str, Any] | None = None) -> bool:
    context = authz.request_context(who, REGION)
    return authz.authorize(who, action, resource, resource_policy, context).allowed


TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/users"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:chunks"

# The program's own resource policy statements (infra/iam.py).
DENY_INSECURE_TRANSPORT = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::uploads", "arn:aws:s3:::uploads/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
ONLY_PRODUCER_SENDS = {
    "Sid": "OnlyListedSenders",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sqs:SendMessage",
    "Resource": [QUEUE],
    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [PRODUCER]}},
}


# --- the evaluator ---------------------------------------------------------------------------


def test_actions_match_case_insensitively_with_wildcards() -> None:
    who = identity(WORKER, policy(allow(["DynamoDB:put*", "dynamodb:?etItem"], TABLE)))
    assert allowed(who, "dynamodb:PutItem", TABLE)
    assert allowed(who, "dynamodb:GetItem", TABLE)
    assert not allowed(who, "dynamodb:DeleteItem", TABLE)


def test_resources_match_case_sensitively_and_dot_is_no_wildcard() -> None:
    who = identity(WORKER, policy(allow("s3:GetObject", "arn:aws:s3:::b/a.csv")))
    assert allowed(who, "s3:GetObject", "arn:aws:s3:::b/a.csv")
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::b/aXcsv")
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::B/a.csv")


def test_star_and_question_mark_are_the_only_wildcards() -> None:
    who = identity(WORKER, policy(allow("s3:GetObject", ["arn:aws:s3:::b/uploads/*", "arn:aws:s3:::b/[x]?"])))
    assert allowed(who, "s3:GetObject", "arn:aws:s3:::b/uploads/2024/01/a.csv")
    assert allowed(who, "s3:GetObject", "arn:aws:s3:::b/[x]1")
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::b/x1")
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::b/reports/a.csv")


def test_not_action_allows_everything_else() -> None:
    who = identity(WORKER, policy({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}))
    assert allowed(who, "dynamodb:PutItem", TABLE)
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::b/k")


def test_not_resource_deny_covers_every_other_resource() -> None:
    other = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/jobs"
    who = identity(
        WORKER,
        policy(allow("dynamodb:*", "*"), {"Effect": "Deny", "Action": "dynamodb:*", "NotResource": TABLE}),
    )
    assert allowed(who, "dynamodb:PutItem", TABLE)
    assert not allowed(who, "dynamodb:PutItem", other)


def test_explicit_deny_wins_over_any_allow() -> None:
    who = identity(WORKER, policy(allow("dynamodb:*", "*")), policy(deny("dynamodb:DeleteItem", TABLE)))
    assert allowed(who, "dynamodb:PutItem", TABLE)
    assert not allowed(who, "dynamodb:DeleteItem", TABLE)
    verdict = authz.authorize(who, "dynamodb:DeleteItem", TABLE, None, authz.request_context(who, REGION))
    assert "explicit deny in an identity-based policy" in verdict.reason


def test_deny_insecure_transport_does_not_apply_over_the_loopback_endpoint() -> None:
    bucket_policy = policy(DENY_INSECURE_TRANSPORT)
    who = identity(WORKER, policy(allow("s3:GetObject", "arn:aws:s3:::uploads/*")))
    assert allowed(who, "s3:GetObject", "arn:aws:s3:::uploads/a.csv", bucket_policy)
    insecure = authz.RequestContext.of(**{"aws:SecureTransport": "false", "aws:PrincipalArn": WORKER})
    verdict = authz.authorize(who, "s3:GetObject", "arn:aws:s3:::uploads/a.csv", bucket_policy, insecure)
    assert not verdict.allowed
    assert "resource-based policy" in verdict.reason


def test_queue_policy_denies_every_sender_but_the_listed_principal() -> None:
    queue_policy = policy(ONLY_PRODUCER_SENDS)
    send = policy(allow("sqs:SendMessage", QUEUE))
    assert allowed(identity(PRODUCER, send), "sqs:SendMessage", QUEUE, queue_policy)
    assert not allowed(identity(WORKER, send), "sqs:SendMessage", QUEUE, queue_policy)
    assert allowed(
        identity(WORKER, policy(allow("sqs:ReceiveMessage", QUEUE))), "sqs:ReceiveMessage", QUEUE, queue_policy
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, True),
        ({"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}}, False),
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/work*"}}, True),
        ({"StringNotLike": {"aws:PrincipalArn": ["*producer*", "*worker*"]}}, False),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, True),
        ({"ArnEquals": {"aws:PrincipalArn": PRODUCER}}, False),
        ({"Bool": {"aws:SecureTransport": True}}, True),
        ({"NumericLessThan": {"aws:EpochTime": "99999999999"}}, True),
        ({"NumericGreaterThan": {"aws:EpochTime": "99999999999"}}, False),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, False),  # absent key: no match
        ({"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}, True),  # …unless IfExists
        ({"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}, True),  # negated: absent matches
        ({"Null": {"aws:SourceAccount": "true"}}, True),
        ({"ForAnyValue:StringEquals": {"aws:PrincipalType": ["User", "AssumedRole"]}}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, True),  # absent: vacuously true
        ({"StringEquals": {"AWS:PRINCIPALACCOUNT": ACCOUNT}}, True),  # key names are case-insensitive
    ],
)
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    who = identity(WORKER, policy(allow("dynamodb:PutItem", TABLE, Condition=condition)))
    assert allowed(who, "dynamodb:PutItem", TABLE) is expected


def test_unknown_operator_fails_closed() -> None:
    odd = {"StringMatchesRegex": {"aws:PrincipalType": "Assumed.*"}}  # no operator IAM documents
    assert not allowed(
        identity(WORKER, policy(allow("dynamodb:PutItem", TABLE, Condition=odd))), "dynamodb:PutItem", TABLE
    )
    who = identity(WORKER, policy(allow("dynamodb:PutItem", TABLE), deny("dynamodb:PutItem", TABLE, Condition=odd)))
    assert not allowed(who, "dynamodb:PutItem", TABLE)


def test_resource_policy_grants_only_the_principal_it_names() -> None:
    nothing = identity(WORKER)
    assert allowed(
        nothing, "sqs:SendMessage", QUEUE, policy(allow("sqs:SendMessage", QUEUE, Principal={"AWS": WORKER}))
    )
    assert allowed(nothing, "sqs:SendMessage", QUEUE, policy(allow("sqs:SendMessage", QUEUE, Principal="*")))
    account = policy(allow("sqs:SendMessage", QUEUE, Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    assert not allowed(nothing, "sqs:SendMessage", QUEUE, account)  # the account defers to identity policies
    service = policy(allow("sqs:SendMessage", QUEUE, Principal={"Service": "s3.amazonaws.com"}))
    assert not allowed(nothing, "sqs:SendMessage", QUEUE, service)
    everyone_else = policy({"Effect": "Deny", "NotPrincipal": {"AWS": WORKER}, "Action": "sqs:*", "Resource": QUEUE})
    send = policy(allow("sqs:SendMessage", QUEUE))
    assert allowed(identity(WORKER, send), "sqs:SendMessage", QUEUE, everyone_else)
    assert not allowed(identity(PRODUCER, send), "sqs:SendMessage", QUEUE, everyone_else)


def test_trust_policy_must_name_the_caller_or_its_account_with_an_identity_allow() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/target"
    context = authz.request_context(identity(), REGION)
    by_service = policy(allow("sts:AssumeRole", role, Principal={"Service": "lambda.amazonaws.com"}))
    may_assume = identity(WORKER, policy(allow("sts:AssumeRole", role)))
    assert not authz.authorize(may_assume, "sts:AssumeRole", role, by_service, context, trust_policy=True).allowed
    by_account = policy(allow("sts:AssumeRole", role, Principal={"AWS": ACCOUNT}))
    assert authz.authorize(may_assume, "sts:AssumeRole", role, by_account, context, trust_policy=True).allowed
    assert not authz.authorize(identity(WORKER), "sts:AssumeRole", role, by_account, context, trust_policy=True).allowed


def test_resource_policy_key_reaches_the_owning_resource() -> None:
    assert authz.resource_policy_key("arn:aws:s3:::uploads/a/b.csv") == "arn:aws:s3:::uploads"
    assert authz.resource_policy_key(f"{TABLE}/index/byJob") == TABLE
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:producer"
    assert authz.resource_policy_key(f"{fn}:live") == fn
    assert authz.resource_policy_key(QUEUE) == QUEUE


# --- the request mapping ---------------------------------------------------------------------


def call(service: str, method: str = "POST", path: str = "/", body: Any = b"", **headers: str) -> authz.Call:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    query: dict[str, list[str]] = {}
    if "?" in path:
        path, _, text = path.partition("?")
        from urllib.parse import parse_qs

        query = parse_qs(text, keep_blank_values=True)
    return authz.Call(service, REGION, ACCOUNT, method, path, query, {**headers}, raw, "127.0.0.1:4566")


def accesses(request: authz.RequestAccess) -> list[tuple[str, str]]:
    return [(a.action, a.resource) for a in request.accesses]


def test_dynamodb_transaction_items_are_checked_one_by_one() -> None:
    items = [
        {"Put": {"TableName": "users", "Item": {}}},
        {"Update": {"TableName": "jobs", "Key": {}}},
        {"ConditionCheck": {"TableName": "jobs", "Key": {}}},
    ]
    request = authz.request_access(
        call("dynamodb", body={"TransactItems": items}, **{"x-amz-target": "DynamoDB_20120810.TransactWriteItems"})
    )
    jobs = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/jobs"
    assert accesses(request) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", jobs),
        ("dynamodb:ConditionCheckItem", jobs),
    ]


def test_dynamodb_query_on_an_index_is_checked_on_the_index() -> None:
    body = {"TableName": "users", "IndexName": "byJob"}
    request = authz.request_access(call("dynamodb", body=body, **{"x-amz-target": "DynamoDB_20120810.Query"}))
    assert accesses(request) == [("dynamodb:Query", f"{TABLE}/index/byJob")]


def test_partiql_statements_need_their_verbs_action_on_their_table() -> None:
    statements = [
        {"Statement": "INSERT INTO \"users\" VALUE {'email': ?}", "Parameters": [{"S": "a"}]},
        {"Statement": 'UPDATE "jobs" SET "a" = ? WHERE "jobId" = ?', "Parameters": [{"S": "a"}, {"S": "b"}]},
        {"Statement": 'delete from users where "email" = ?', "Parameters": [{"S": "a"}]},
    ]
    batch = authz.request_access(
        call("dynamodb", body={"Statements": statements}, **{"x-amz-target": "DynamoDB_20120810.BatchExecuteStatement"})
    )
    single = authz.request_access(
        call(
            "dynamodb",
            body={"Statement": 'SELECT * FROM "users"."byJob" WHERE "jobId" = ?'},
            **{"x-amz-target": "DynamoDB_20120810.ExecuteStatement"},
        )
    )

    jobs = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/jobs"
    # A batch's statements are checked one by one as they run (each may fail alone); the request needs nothing more.
    assert accesses(batch) == []
    assert [(a.action, a.resource) for a in batch.statements] == [
        ("dynamodb:PartiQLInsert", TABLE),
        ("dynamodb:PartiQLUpdate", jobs),
        ("dynamodb:PartiQLDelete", TABLE),
    ]
    assert accesses(single) == [("dynamodb:PartiQLSelect", f"{TABLE}/index/byJob")]
    unreadable = {"Statements": [*statements, {"Statement": "UPSERT users"}]}
    target = {"x-amz-target": "DynamoDB_20120810.BatchExecuteStatement"}
    assert not authz.request_access(call("dynamodb", body=unreadable, **target)).mapped


def test_sqs_batches_need_the_single_message_action() -> None:
    body = {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/chunks", "Entries": []}
    json_call = call("sqs", body=body, **{"x-amz-target": "AmazonSQS.SendMessageBatch"})
    assert accesses(authz.request_access(json_call)) == [("sqs:SendMessage", QUEUE)]
    form = f"Action=DeleteMessageBatch&QueueUrl=http%3A%2F%2F127.0.0.1%3A4566%2F{ACCOUNT}%2Fchunks".encode()
    query_call = call("sqs", body=form, **{"content-type": "application/x-www-form-urlencoded"})
    assert accesses(authz.request_access(query_call)) == [("sqs:DeleteMessage", QUEUE)]


def test_s3_requests_map_to_object_and_bucket_actions() -> None:
    def mapped(method: str, path: str, **headers: str) -> list[tuple[str, str]]:
        return accesses(authz.request_access(call("s3", method, path, **headers)))

    assert mapped("GET", "/uploads/a%20b.csv") == [("s3:GetObject", "arn:aws:s3:::uploads/a b.csv")]
    assert mapped("HEAD", "/uploads/a.csv?versionId=v1") == [("s3:GetObjectVersion", "arn:aws:s3:::uploads/a.csv")]
    assert mapped("PUT", "/uploads/b.csv", **{"x-amz-copy-source": "/uploads/a.csv?versionId=v1"}) == [
        ("s3:PutObject", "arn:aws:s3:::uploads/b.csv"),
        ("s3:GetObjectVersion", "arn:aws:s3:::uploads/a.csv"),
    ]
    assert mapped("POST", "/uploads/big.csv?uploads") == [("s3:PutObject", "arn:aws:s3:::uploads/big.csv")]
    assert mapped("PUT", "/uploads/big.csv?partNumber=1&uploadId=x") == [
        ("s3:PutObject", "arn:aws:s3:::uploads/big.csv")
    ]
    assert mapped("DELETE", "/uploads/a.csv") == [("s3:DeleteObject", "arn:aws:s3:::uploads/a.csv")]
    assert mapped("GET", "/uploads?list-type=2&prefix=x") == [("s3:ListBucket", "arn:aws:s3:::uploads")]
    assert mapped("GET", "/uploads?versions") == [("s3:ListBucketVersions", "arn:aws:s3:::uploads")]
    assert mapped("PUT", "/uploads?policy") == [("s3:PutBucketPolicy", "arn:aws:s3:::uploads")]


def test_s3_requests_carry_their_api_operation_too() -> None:
    def names(method: str, path: str, **headers: str) -> set[str]:
        return set(authz.request_access(call("s3", method, path, **headers)).names)

    assert names("GET", "/uploads/a.csv?versionId=v1") == {"GetObject", "GetObjectVersion"}
    assert names("HEAD", "/uploads/a.csv") == {"HeadObject", "GetObject"}
    assert names("PUT", "/uploads/b.csv", **{"x-amz-copy-source": "/uploads/a.csv"}) == {
        "CopyObject",
        "PutObject",
        "GetObject",
    }
    assert names("PUT", "/uploads/b.csv?partNumber=2&uploadId=x") == {"UploadPart", "PutObject"}
    assert names("POST", "/uploads/b.csv?uploadId=x") == {"CompleteMultipartUpload", "PutObject"}
    assert names("GET", "/uploads?list-type=2") == {"ListObjectsV2", "ListBucket"}


def test_s3_delete_objects_needs_delete_on_every_key() -> None:
    body = (
        b"<Delete><Object><Key>a.csv</Key></Object><Object><Key>b.csv</Key><VersionId>v</VersionId></Object></Delete>"
    )
    request = authz.request_access(call("s3", "POST", "/uploads?delete", body))
    assert accesses(request) == [
        ("s3:DeleteObject", "arn:aws:s3:::uploads/a.csv"),
        ("s3:DeleteObjectVersion", "arn:aws:s3:::uploads/b.csv"),
    ]


def test_lambda_invoke_is_checked_on_the_function_arn() -> None:
    request = authz.request_access(call("lambda", "POST", "/2015-03-31/functions/producer/invocations"))
    assert accesses(request) == [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:producer")]
    assert request.names == {"Invoke", "InvokeFunction"}


def test_iam_requests_are_checked_on_the_principal_or_policy_they_name() -> None:
    def mapped(form: str) -> list[tuple[str, str]]:
        request = call("iam", body=form.encode(), **{"content-type": "application/x-www-form-urlencoded"})
        return accesses(authz.request_access(request))

    role, policy_arn = f"arn:aws:iam::{ACCOUNT}:role/worker", f"arn:aws:iam::{ACCOUNT}:policy/p"
    assert mapped("Action=PutRolePolicy&RoleName=worker&PolicyName=p") == [("iam:PutRolePolicy", role)]
    assert mapped(f"Action=AttachRolePolicy&RoleName=worker&PolicyArn={policy_arn}") == [("iam:AttachRolePolicy", role)]
    assert mapped("Action=CreateUser&UserName=u") == [("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/u")]
    assert mapped("Action=CreatePolicy&PolicyName=p") == [("iam:CreatePolicy", policy_arn)]
    assert mapped("Action=ListRoles") == [("iam:ListRoles", "*")]
    assert not authz.request_access(call("iam", body=b"Action=GetAccountSummary")).mapped


def test_requests_it_cannot_read_are_unmapped() -> None:
    assert not authz.request_access(
        call("dynamodb", body={}, **{"x-amz-target": "DynamoDB_20120810.ExecuteStatement"})
    ).mapped
    assert not authz.request_access(call("kms", body={}, **{"x-amz-target": "TrentService.Decrypt"})).mapped
    assert not authz.request_access(call("s3", "PUT", "/uploads?madeUpSubresource")).mapped


# --- through the server ----------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_table(emulator: Emulator, name: str) -> str:
    emulator.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def role_session(emulator: Emulator, *statements: dict[str, Any]) -> tuple[str, Credentials]:
    """A role trusting Lambda with these statements, and a session of it."""
    iam, name = emulator.client("iam"), unique("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy(*statements)))
    return arn, emulator.assume_role(arn, name)


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def item(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}}


def test_table_scoped_role_writes_its_table_only(emulator: Emulator) -> None:
    mine, other = create_table(emulator, unique("mine")), create_table(emulator, unique("other"))
    _, session = role_session(emulator, allow("dynamodb:PutItem", mine))
    dynamodb = emulator.client("dynamodb", session)
    mine_name, other_name = mine.rsplit("/", 1)[1], other.rsplit("/", 1)[1]

    dynamodb.put_item(TableName=mine_name, Item=item("a"))

    assert emulator.client("dynamodb").get_item(TableName=mine_name, Key=item("a"))["Item"] == item("a")
    assert error_code(lambda: dynamodb.put_item(TableName=other_name, Item=item("a"))) == "AccessDeniedException"
    assert error_code(lambda: dynamodb.get_item(TableName=mine_name, Key=item("a"))) == "AccessDeniedException"


def test_denial_message_names_principal_action_and_resource_not_item_contents(emulator: Emulator) -> None:
    table = create_table(emulator, unique("t"))
    role, session = role_session(emulator)
    with pytest.raises(ClientError) as raised:
        emulator.client("dynamodb", session).put_item(
            TableName=table.rsplit("/", 1)[1], Item={"pk": {"S": "someone@example.com"}}
        )
    message = raised.value.response["Error"]["Message"]
    assert role.rsplit("/", 1)[1] in message and "dynamodb:PutItem" in message and table in message
    assert "example.com" not in message


def test_transaction_with_one_unallowed_item_is_denied_entirely(emulator: Emulator) -> None:
    users, jobs = create_table(emulator, unique("users")), create_table(emulator, unique("jobs"))
    _, session = role_session(emulator, allow(["dynamodb:PutItem", "dynamodb:UpdateItem"], [users, jobs]))
    users_name, jobs_name = users.rsplit("/", 1)[1], jobs.rsplit("/", 1)[1]
    transaction = [
        {"Put": {"TableName": users_name, "Item": item("u")}},
        {"Delete": {"TableName": jobs_name, "Key": item("j")}},
    ]

    code = error_code(lambda: emulator.client("dynamodb", session).transact_write_items(TransactItems=transaction))

    assert code == "AccessDeniedException"
    assert "Item" not in emulator.client("dynamodb").get_item(TableName=users_name, Key=item("u"))


def test_s3_reads_are_allowed_on_the_granted_prefix_only(emulator: Emulator) -> None:
    bucket, s3 = unique("bucket"), emulator.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="uploads/a b.csv", Body=b"x")
    s3.put_object(Bucket=bucket, Key="reports/r.csv", Body=b"y")
    emulator.resource_policies[f"arn:aws:s3:::{bucket}"] = policy(
        {**DENY_INSECURE_TRANSPORT, "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    )
    _, session = role_session(emulator, allow("s3:GetObject", f"arn:aws:s3:::{bucket}/uploads/*"))
    role_s3 = emulator.client("s3", session)

    assert role_s3.get_object(Bucket=bucket, Key="uploads/a b.csv")["Body"].read() == b"x"
    assert error_code(lambda: role_s3.get_object(Bucket=bucket, Key="reports/r.csv")) == "AccessDenied"
    assert error_code(lambda: role_s3.put_object(Bucket=bucket, Key="uploads/c.csv", Body=b"z")) == "AccessDenied"


def test_queue_policy_deny_overrides_the_identity_allow(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName=unique("chunks"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    producer, producer_session = role_session(emulator, allow("sqs:SendMessage", arn))
    _, worker_session = role_session(emulator, allow(["sqs:SendMessage", "sqs:ReceiveMessage"], arn))
    emulator.resource_policies[arn] = policy(
        {**ONLY_PRODUCER_SENDS, "Resource": [arn], "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [producer]}}}
    )

    emulator.client("sqs", producer_session).send_message(QueueUrl=url, MessageBody="chunk")
    code = error_code(lambda: emulator.client("sqs", worker_session).send_message(QueueUrl=url, MessageBody="x"))

    assert code == "AccessDenied"
    assert len(emulator.client("sqs", worker_session).receive_message(QueueUrl=url)["Messages"]) == 1


def test_unknown_access_key_is_refused(emulator: Emulator) -> None:
    stranger = Credentials("ASIAUNKNOWNKEY000000", "secret", "token")
    assert error_code(lambda: emulator.client("dynamodb", stranger).list_tables()) == "UnrecognizedClientException"
    assert error_code(lambda: emulator.client("sqs", stranger).list_queues()) == "InvalidClientTokenId"
    assert error_code(lambda: emulator.client("s3", stranger).list_buckets()) == "InvalidAccessKeyId"
    assert emulator.principal_of(stranger.access_key_id, stranger.session_token) is None


def test_role_key_with_a_wrong_session_token_is_refused(emulator: Emulator) -> None:
    role, session = role_session(emulator, allow("dynamodb:*", "*"))
    forged = Credentials(session.access_key_id, session.secret_access_key, "forged")
    assert error_code(lambda: emulator.client("dynamodb", forged).list_tables()) == "UnrecognizedClientException"
    assert emulator.principal_of(session.access_key_id, session.session_token) == role


def test_iam_user_keys_are_principals_with_their_policies(emulator: Emulator) -> None:
    name = unique("user")
    table = create_table(emulator, unique("t"))
    user = iam_user(emulator.client("iam"), name, allow("dynamodb:PutItem", table)).credentials

    emulator.client("dynamodb", user).put_item(TableName=table.rsplit("/", 1)[1], Item=item("a"))

    assert emulator.principal_of(user.access_key_id, None) == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    assert error_code(lambda: emulator.client("dynamodb", user).list_tables()) == "AccessDeniedException"


def test_admin_always_passes_even_a_bucket_policy_moto_stores(emulator: Emulator) -> None:
    bucket, s3 = unique("bucket"), emulator.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    deny_all = policy({**DENY_INSECURE_TRANSPORT, "Condition": {}, "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_all))

    s3.put_object(Bucket=bucket, Key="k", Body=b"v")

    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert emulator.principal_of(emulator.admin.access_key_id, None) == authz.ADMIN


def test_unmapped_request_by_a_role_is_denied_and_logged(emulator: Emulator, capfd: pytest.CaptureFixture[str]) -> None:
    table = create_table(emulator, unique("t"))
    _, session = role_session(emulator, allow("dynamodb:*", "*"))
    statement = {"Statement": f'UPSERT "{table.rsplit("/", 1)[1]}"'}  # no verb IAM knows

    code = error_code(lambda: emulator.client("dynamodb", session).batch_execute_statement(Statements=[statement]))

    assert code == "AccessDeniedException"
    assert "unmapped request dynamodb BatchExecuteStatement" in capfd.readouterr().err


def test_iam_calls_by_a_role_are_evaluated_against_its_policy(emulator: Emulator) -> None:
    role, session = role_session(emulator, allow("iam:ListRolePolicies", "*"))
    iam = emulator.client("iam", session)
    name = role.rsplit("/", 1)[1]

    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["inline"]
    code = error_code(lambda: iam.put_role_policy(RoleName=name, PolicyName="wider", PolicyDocument="{}"))
    assert code == "AccessDenied"


def test_get_caller_identity_is_always_allowed(emulator: Emulator) -> None:
    role, session = role_session(emulator)
    arn = emulator.client("sts", session).get_caller_identity()["Arn"]
    assert arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[1]}/")


def test_assume_role_by_a_role_needs_permission_and_trust(emulator: Emulator) -> None:
    target, _ = role_session(emulator)  # trusts lambda.amazonaws.com only
    _, session = role_session(emulator, allow("sts:AssumeRole", target))
    code = error_code(lambda: emulator.client("sts", session).assume_role(RoleArn=target, RoleSessionName="hop"))
    assert code == "AccessDenied"


def test_expired_role_session_is_refused(emulator: Emulator) -> None:
    from datetime import datetime

    from moto.sts.models import sts_backends

    _, session = role_session(emulator, allow("dynamodb:*", "*"))
    (stored,) = [s for s in sts_backends[ACCOUNT]["aws"].assumed_roles if s.access_key_id == session.access_key_id]
    stored.expiration = datetime(2000, 1, 1)

    assert error_code(lambda: emulator.client("dynamodb", session).list_tables()) == "ExpiredTokenException"


# --- API Gateway's AWS_IAM mode ----------------------------------------------------------------

API = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/v1"
API_URL = "http://127.0.0.1:8081/v1/users/a%40example.com?verbose=1"


def signed_headers(
    credentials: Credentials, url: str = API_URL, method: str = "GET", body: bytes = b""
) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method=method, url=url, data=body, headers={"Host": "127.0.0.1:8081"})
    key = BotoCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)
    SigV4Auth(key, "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


def api_user(emulator: Emulator, resource: str) -> tuple[str, Credentials]:
    caller = iam_user(emulator.client("iam"), unique("caller"), allow("execute-api:Invoke", resource))
    return caller.arn, caller.credentials


def test_signed_request_by_an_allowed_user_passes(emulator: Emulator) -> None:
    arn, user = api_user(emulator, f"{API}/GET/users/*")

    decision = emulator.authorize_signed(
        "GET", API_URL, signed_headers(user), b"", "execute-api:Invoke", f"{API}/GET/users/a@example.com"
    )

    assert decision.allowed and decision.principal_arn == arn and decision.access_key_id == user.access_key_id


def test_signed_request_by_a_role_session_is_checked_against_the_role(emulator: Emulator) -> None:
    role, session = role_session(emulator, allow("execute-api:Invoke", f"{API}/POST/*"))
    body = b'{"a": 1}'
    headers = signed_headers(session, method="POST", body=body)

    allowed_post = emulator.authorize_signed("POST", API_URL, headers, body, "execute-api:Invoke", f"{API}/POST/users")
    denied_get = emulator.authorize_signed("POST", API_URL, headers, body, "execute-api:Invoke", f"{API}/GET/users")

    assert allowed_post.allowed
    assert allowed_post.principal_arn is not None and role.rsplit("/", 1)[1] in allowed_post.principal_arn
    assert not denied_get.allowed
    who = f"User: {allowed_post.principal_arn}"
    assert denied_get.message == f"{who} is not authorized to perform: execute-api:Invoke on resource: {API}/GET/users"


def test_signed_request_refusals_use_api_gateways_words(emulator: Emulator) -> None:
    _, user = api_user(emulator, f"{API}/*")
    resource = f"{API}/GET/users/a@example.com"
    headers = signed_headers(user)

    unsigned = emulator.authorize_signed(
        "GET", API_URL, {"Host": "127.0.0.1:8081"}, b"", "execute-api:Invoke", resource
    )
    tampered = emulator.authorize_signed(
        "GET", API_URL.replace("verbose=1", "verbose=2"), headers, b"", "execute-api:Invoke", resource
    )
    wrong_secret = Credentials(user.access_key_id, "not the secret")
    forged = emulator.authorize_signed(
        "GET", API_URL, signed_headers(wrong_secret), b"", "execute-api:Invoke", resource
    )
    stranger = Credentials("AKIAUNKNOWNKEY000000", "secret")
    unknown = emulator.authorize_signed("GET", API_URL, signed_headers(stranger), b"", "execute-api:Invoke", resource)

    assert not unsigned.allowed and unsigned.message == "Missing Authentication Token"
    assert not tampered.allowed and tampered.message.startswith("The request signature we calculated does not match")
    assert not forged.allowed and forged.message == tampered.message
    assert not unknown.allowed and unknown.message == "The security token included in the request is invalid."
