"""PartiQL in local mode, through boto3 against an in-process emulator: the statements the worker sends
run as AWS documents them (`local.partiql`), IAM is checked per statement, anything else is refused,
and a statement fault makes a seeded fraction of a batch's statements fail on their own."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.emulator import Emulator, Faults, StatementFault, fault_from_json, fault_to_json
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import iam_user

# The worker's statements, as contract.md states them (handlers/worker sends these texts).
COLUMNS = ("name", "rowVersion", "uploadedAt", "updatedAt", "jobId", "sourceBucket", "sourceKey")


def insert_text(table: str, *, phone: bool = True) -> str:
    pairs = ", ".join(f"'{name}': ?" for name in ("email", *COLUMNS, *(["phone"] if phone else [])))
    return f'INSERT INTO "{table}" VALUE {{{pairs}}}'


def update_text(table: str, *, phone: bool = True) -> str:
    sets = " ".join(f'SET "{name}" = ?' for name in COLUMNS)
    last = 'SET "phone" = ?' if phone else 'REMOVE "phone"'
    return f'UPDATE "{table}" {sets} {last} WHERE "email" = ? AND ("rowVersion" <= ? OR "rowVersion" > ?)'


def row(email: str, version: int, name: str = "Ann", phone: str | None = "+15550100") -> dict[str, dict[str, str]]:
    values = {
        "email": {"S": email},
        "name": {"S": name},
        "rowVersion": {"N": str(version)},
        "uploadedAt": {"S": "2026-12-06T00:00:00Z"},
        "updatedAt": {"S": "2026-12-06T00:00:01Z"},
        "jobId": {"S": "job"},
        "sourceBucket": {"S": "bucket"},
        "sourceKey": {"S": "key.csv"},
    }
    if phone is not None:
        values["phone"] = {"S": phone}
    return values


def insert(table: str, email: str, version: int, **fields: Any) -> dict[str, Any]:
    values = row(email, version, **fields)
    names = ("email", *COLUMNS, *(["phone"] if "phone" in values else []))
    return {"Statement": insert_text(table, phone="phone" in values), "Parameters": [values[n] for n in names]}


def update(
    table: str, email: str, version: int, *, phone: str | None = "+15550100", all_old: bool = True, **fields: Any
) -> dict[str, Any]:
    values = row(email, version, phone=phone, **fields)
    parameters = [values[n] for n in COLUMNS] + ([values["phone"]] if phone is not None else [])
    far_future = {"N": str(10**15)}
    statement = {
        "Statement": update_text(table, phone=phone is not None),
        "Parameters": [*parameters, values["email"], values["rowVersion"], far_future],
    }
    if all_old:
        statement["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return statement


def create_users_table(emulator: Emulator, name: str) -> str:
    """A table keyed as the users table is (`email`, a string), as the administrator; its name."""
    emulator.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
    )
    return name


@pytest.fixture
def table(emulator: Emulator) -> Iterator[str]:
    name = create_users_table(emulator, f"users-{uuid.uuid4().hex[:8]}")
    yield name
    emulator.faults.clear()


def batch(emulator: Emulator, *statements: dict[str, Any], client: Any = None) -> list[dict[str, Any]]:
    dynamodb = client or emulator.client("dynamodb")
    responses: list[dict[str, Any]] = dynamodb.batch_execute_statement(Statements=list(statements))["Responses"]
    assert len(responses) == len(statements)
    return responses


def stored(emulator: Emulator, table: str, email: str) -> dict[str, Any] | None:
    found = emulator.client("dynamodb").get_item(TableName=table, Key={"email": {"S": email}}, ConsistentRead=True)
    return found.get("Item")


def codes(responses: list[dict[str, Any]]) -> list[str | None]:
    return [r.get("Error", {}).get("Code") for r in responses]


def refusal(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


# --- the statements the worker sends ---------------------------------------------------------


def test_insert_with_parameters_writes_the_item(emulator: Emulator, table: str) -> None:
    responses = batch(emulator, insert(table, "a@example.com", 5), insert(table, "b@example.com", 6, phone=None))

    assert codes(responses) == [None, None]
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 5)
    assert stored(emulator, table, "b@example.com") == row("b@example.com", 6, phone=None)


def test_insert_of_an_existing_key_is_a_duplicate_item_and_changes_nothing(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 5))

    responses = batch(emulator, insert(table, "a@example.com", 9, name="Bob"))

    assert codes(responses) == ["DuplicateItem"]
    assert "Item" not in responses[0]["Error"]
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 5)


def test_update_whose_condition_holds_sets_and_removes(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 5))

    responses = batch(emulator, update(table, "a@example.com", 7, name="Bob", phone=None))

    assert codes(responses) == [None]
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 7, name="Bob", phone=None)


def test_update_whose_condition_is_false_fails_with_the_stored_item(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 8))

    responses = batch(emulator, update(table, "a@example.com", 7, name="Bob"))

    assert codes(responses) == ["ConditionalCheckFailed"]
    assert responses[0]["Error"]["Item"] == row("a@example.com", 8)
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 8)


def test_a_failed_condition_returns_no_item_without_all_old(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 8))

    responses = batch(emulator, update(table, "a@example.com", 7, all_old=False))

    assert codes(responses) == ["ConditionalCheckFailed"]
    assert "Item" not in responses[0]["Error"]


def test_update_of_an_absent_item_fails_and_creates_nothing(emulator: Emulator, table: str) -> None:
    responses = batch(emulator, update(table, "absent@example.com", 7))

    assert codes(responses) == ["ConditionalCheckFailed"]
    assert "Item" not in responses[0]["Error"]
    assert stored(emulator, table, "absent@example.com") is None


def test_an_equal_version_is_rewritten_so_a_redelivery_is_harmless(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 7))

    assert codes(batch(emulator, update(table, "a@example.com", 7, name="Bob"))) == [None]
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 7, name="Bob")


def test_a_far_future_version_is_replaced(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 10**16))

    assert codes(batch(emulator, update(table, "a@example.com", 7))) == [None]
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 7)


def test_statements_of_a_batch_succeed_and_fail_on_their_own(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "old@example.com", 9), insert(table, "dup@example.com", 1))

    responses = batch(
        emulator,
        update(table, "old@example.com", 3),
        insert(table, "new@example.com", 4),
        insert(table, "dup@example.com", 4),
        update(table, "absent@example.com", 4),
    )

    assert codes(responses) == ["ConditionalCheckFailed", None, "DuplicateItem", "ConditionalCheckFailed"]
    assert responses[1] == {"TableName": table}
    assert stored(emulator, table, "new@example.com") == row("new@example.com", 4)


# --- AWS's comparison semantics --------------------------------------------------------------


def conditional(table: str, where: str, *parameters: dict[str, str]) -> dict[str, Any]:
    return {
        "Statement": f'UPDATE "{table}" SET "seen" = ? WHERE "email" = ? AND {where}',
        "Parameters": [{"S": "yes"}, {"S": "a@example.com"}, *parameters],
    }


@pytest.mark.parametrize(
    ("where", "parameters", "holds"),
    [
        # Numbers by value: 10 > 9 (as text, "10" < "9").
        ('"rowVersion" <= ?', [{"N": "9"}], False),
        ('"rowVersion" > ?', [{"N": "9"}], True),
        ('"rowVersion" = ?', [{"N": "10.0"}], True),
        # Strings by UTF-8 bytes: U+FF21 (EF BC A1) < U+1F600 (F0 9F 98 80); UTF-16 would order them the other way.
        ('"name" < ?', [{"S": "\U0001f600"}], True),
        ('"name" >= ?', [{"S": "\U0001f600"}], False),
        # Binary by bytes.
        ('"blob" < ?', [{"B": b"\x02"}], True),
        # Across types, ordering is false and equality is false.
        ('"rowVersion" < ?', [{"S": "99"}], False),
        ('"rowVersion" = ?', [{"S": "10"}], False),
        ('"rowVersion" <> ?', [{"N": "11"}], True),
        # An attribute the item lacks compares false, whatever the operator.
        ('"missing" = ?', [{"S": "x"}], False),
        ('"missing" < ?', [{"N": "1"}], False),
        ('"missing" <> ?', [{"N": "1"}], False),
        ('NOT "missing" = ?', [{"S": "x"}], True),
        ('("rowVersion" < ? OR "name" = ?)', [{"N": "1"}, {"S": "\uff21"}], True),
        ('NOT ("rowVersion" < ? OR "name" = ?)', [{"N": "1"}, {"S": "\uff21"}], False),
    ],
)
def test_conditions_compare_as_dynamodb_does(
    emulator: Emulator, table: str, where: str, parameters: list[dict[str, Any]], holds: bool
) -> None:
    emulator.client("dynamodb").put_item(
        TableName=table,
        Item={
            "email": {"S": "a@example.com"},
            "rowVersion": {"N": "10"},
            "name": {"S": "\uff21"},
            "blob": {"B": b"\x01"},
        },
    )

    responses = batch(emulator, conditional(table, where, *parameters))

    assert codes(responses) == ([None] if holds else ["ConditionalCheckFailed"])
    assert ("seen" in (stored(emulator, table, "a@example.com") or {})) is holds


# --- whole-request validation ----------------------------------------------------------------


def test_more_than_25_statements_are_refused(emulator: Emulator, table: str) -> None:
    statements = [insert(table, f"u{i}@example.com", 1) for i in range(26)]

    code, _ = refusal(lambda: batch(emulator, *statements))

    assert code == "ValidationException"
    assert stored(emulator, table, "u0@example.com") is None
    assert codes(batch(emulator, *statements[:25])) == [None] * 25


def test_reads_mixed_with_writes_are_refused(emulator: Emulator, table: str) -> None:
    read = {"Statement": f'SELECT * FROM "{table}" WHERE "email" = ?', "Parameters": [{"S": "b@example.com"}]}

    code, message = refusal(lambda: batch(emulator, insert(table, "a@example.com", 1), read))

    assert (code, message) == (
        "ValidationException",
        "Read and write requests together in the same batch is not supported.",
    )
    assert stored(emulator, table, "a@example.com") is None


def test_one_item_twice_in_a_batch_is_refused(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 1))

    code, message = refusal(
        lambda: batch(
            emulator,
            insert(table, "b@example.com", 1),
            update(table, "a@example.com", 2),
            update(table, "a@example.com", 3),
        )
    )

    assert (code, message) == ("ValidationException", "Provided list of item keys contains duplicates")
    assert stored(emulator, table, "b@example.com") is None
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 1)


def test_a_key_of_the_wrong_type_is_that_statements_validation_error(emulator: Emulator, table: str) -> None:
    wrong = insert(table, "a@example.com", 1)
    wrong["Parameters"][0] = {"N": "1"}

    responses = batch(emulator, wrong, insert(table, "b@example.com", 1))

    assert codes(responses) == ["ValidationError", None]
    assert "Type mismatch for key email expected: S actual: N" in responses[0]["Error"]["Message"]


def test_a_number_that_is_not_one_is_that_statements_validation_error(emulator: Emulator, table: str) -> None:
    batch(emulator, insert(table, "a@example.com", 1))
    stale = update(table, "a@example.com", 2)
    stale["Parameters"][-2] = {"N": "not a number"}

    responses = batch(emulator, stale, insert(table, "b@example.com", 1))

    assert codes(responses) == ["ValidationError", None]
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 1)


def test_a_statement_on_a_missing_table_is_resource_not_found(emulator: Emulator, table: str) -> None:
    responses = batch(emulator, insert(f"{table}-gone", "a@example.com", 1), insert(table, "a@example.com", 1))

    assert codes(responses) == ["ResourceNotFound", None]


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ('SELECT * FROM "{t}" WHERE "email" = ?', "SELECT"),
        ('DELETE FROM "{t}" WHERE "email" = ?', "DELETE"),
        ("INSERT INTO \"{t}\" VALUE {{'email': 'someone@example.com'}}", "a literal value"),
        ('UPDATE "{t}" SET "a"."b" = ? WHERE "email" = ?', "a nested document path"),
        ('UPDATE "{t}" SET "a" = ? WHERE "email" = ? RETURNING ALL NEW *', "RETURNING"),
        ('UPDATE "{t}" SET "a" = ? WHERE "email" = ? AND begins_with("a", ?)', "a function"),
        ('UPDATE "{t}" SET "a" = ? WHERE "email" IN [?, ?]', "IN"),
    ],
)
def test_forms_local_mode_does_not_implement_are_refused_naming_them(
    emulator: Emulator, table: str, statement: str, named: str
) -> None:
    refused: dict[str, Any] = {"Statement": statement.format(t=table)}
    if "?" in statement:
        refused["Parameters"] = [{"S": "someone@example.com"}] * statement.count("?")
    statements = [insert(table, "a@example.com", 1), refused]
    if named in ("SELECT",):
        statements = statements[1:]

    code, message = refusal(lambda: batch(emulator, *statements))

    assert code == "ValidationException"
    assert message.startswith(f"local mode does not implement {named}")
    assert "someone@example.com" not in message
    assert stored(emulator, table, "a@example.com") is None


def test_execute_transaction_is_refused(emulator: Emulator, table: str) -> None:
    dynamodb = emulator.client("dynamodb")

    code, message = refusal(
        lambda: dynamodb.execute_transaction(TransactStatements=[insert(table, "a@example.com", 1)])
    )

    assert code == "ValidationException"
    assert message.startswith("local mode does not implement ExecuteTransaction")
    assert stored(emulator, table, "a@example.com") is None


# --- ExecuteStatement: the same forms, errors as the request's exception -----------------------


def test_execute_statement_runs_the_same_forms_with_whole_request_errors(emulator: Emulator, table: str) -> None:
    dynamodb = emulator.client("dynamodb")
    dynamodb.execute_statement(**insert(table, "a@example.com", 8))

    with pytest.raises(ClientError) as duplicate:
        dynamodb.execute_statement(**insert(table, "a@example.com", 9))
    with pytest.raises(ClientError) as stale:
        dynamodb.execute_statement(**update(table, "a@example.com", 7))
    dynamodb.execute_statement(**update(table, "a@example.com", 9, name="Bob"))

    assert duplicate.value.response["Error"]["Code"] == "DuplicateItemException"
    assert stale.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert stale.value.response["Item"] == row("a@example.com", 8)
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 9, name="Bob")


# --- atomicity -------------------------------------------------------------------------------


def test_concurrent_inserts_of_one_key_leave_exactly_one_winner(emulator: Emulator, table: str) -> None:
    writers, start = 8, threading.Barrier(8)
    results: dict[int, str | None] = {}

    def write(index: int) -> None:
        start.wait()
        for attempt in range(5):  # five rounds, each a fresh key every writer races for
            responses = batch(emulator, insert(table, f"race{attempt}@example.com", index, name=f"writer{index}"))
            results[index * 10 + attempt] = codes(responses)[0]

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for attempt in range(5):
        outcomes = [results[i * 10 + attempt] for i in range(writers)]
        assert outcomes.count(None) == 1
        assert outcomes.count("DuplicateItem") == writers - 1
        winner = outcomes.index(None)
        assert stored(emulator, table, f"race{attempt}@example.com") == row(
            f"race{attempt}@example.com", winner, name=f"writer{winner}"
        )


# --- IAM per statement -----------------------------------------------------------------------


def test_iam_is_checked_per_statement(emulator: Emulator, table: str) -> None:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    user = iam_user(
        emulator.client("iam"),
        f"updater-{uuid.uuid4().hex[:8]}",
        {"Effect": "Allow", "Action": ["dynamodb:PartiQLUpdate"], "Resource": arn},
    )
    batch(emulator, insert(table, "a@example.com", 1))
    dynamodb = user.client("dynamodb", retries={"total_max_attempts": 1})

    responses = batch(emulator, insert(table, "b@example.com", 2), update(table, "a@example.com", 2), client=dynamodb)
    code, message = refusal(lambda: dynamodb.execute_statement(**insert(table, "c@example.com", 2)))

    assert codes(responses) == ["AccessDenied", None]
    assert f"not authorized to perform: dynamodb:PartiQLInsert on resource: {arn}" in responses[0]["Error"]["Message"]
    assert stored(emulator, table, "b@example.com") is None
    assert stored(emulator, table, "a@example.com") == row("a@example.com", 2)
    assert code == "AccessDeniedException" and "dynamodb:PartiQLInsert" in message
    assert stored(emulator, table, "c@example.com") is None


def test_a_statement_on_another_table_needs_its_own_grant(emulator: Emulator, table: str) -> None:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    user = iam_user(
        emulator.client("iam"),
        f"inserter-{uuid.uuid4().hex[:8]}",
        {"Effect": "Allow", "Action": ["dynamodb:PartiQLInsert"], "Resource": arn},
    )
    other = create_users_table(emulator, f"{table}-other")

    responses = batch(
        emulator, insert(other, "a@example.com", 1), insert(table, "a@example.com", 1), client=user.client("dynamodb")
    )

    assert codes(responses) == ["AccessDenied", None]
    assert stored(emulator, other, "a@example.com") is None


# --- the statement fault ---------------------------------------------------------------------


def throttled_indexes(emulator: Emulator, table: str, prefix: str) -> list[int]:
    responses = batch(emulator, *(insert(table, f"{prefix}{i}@example.com", 1) for i in range(20)))
    assert set(codes(responses)) <= {None, "ThrottlingError"}
    for index, response in enumerate(responses):
        assert (stored(emulator, table, f"{prefix}{index}@example.com") is None) == ("Error" in response)
    return [i for i, code in enumerate(codes(responses)) if code is not None]


def test_a_statement_fault_throttles_a_seeded_fraction_of_a_batch(emulator: Emulator, table: str) -> None:
    emulator.faults.add(StatementFault(table=table, rate=0.4, seed=7))
    first = throttled_indexes(emulator, table, "first")
    emulator.faults.clear()
    emulator.faults.add(StatementFault(table=table, rate=0.4, seed=7))
    again = throttled_indexes(emulator, table, "again")

    emulator.faults.clear()
    retried = batch(emulator, *(insert(table, f"first{i}@example.com", 1) for i in first))

    assert 0 < len(first) < 20
    assert first == again
    assert codes(retried) == [None] * len(first)


def test_a_statement_fault_answers_its_code_for_its_table_only(emulator: Emulator, table: str) -> None:
    emulator.faults.add(StatementFault(table=table, error_code="ProvisionedThroughputExceeded", times=1))

    first = batch(emulator, insert(table, "a@example.com", 1), insert(table, "b@example.com", 1))
    second = batch(emulator, insert(table, "c@example.com", 1))

    assert codes(first) == ["ProvisionedThroughputExceeded", None]
    assert first[0]["Error"]["Message"] == "injected fault"
    assert codes(second) == [None]
    assert [(f, n) for f, n in emulator.faults.applied()] == [
        (StatementFault(table=table, error_code="ProvisionedThroughputExceeded", times=1), 1)
    ]


def test_a_statement_fault_round_trips_as_json_and_refuses_unknown_codes() -> None:
    fault = StatementFault(table="users", error_code="InternalServerError", rate=0.25, seed=3, times=40)

    assert fault_to_json(fault)["kind"] == "statement"
    assert fault_from_json(fault_to_json(fault)) == fault
    with pytest.raises(ValueError, match="BatchStatementError"):
        Faults().add(StatementFault(error_code="ThrottlingException"))  # the API's code, not a statement's
