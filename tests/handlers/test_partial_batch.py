"""The worker's partial batch response (`handlers/worker/batch.py`): each message handled in order,
only the failed ones reported, none of them raised (the event source mapping has
`ReportBatchItemFailures`, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.worker.batch import SqsRecord, partial_batch_response
from tests.handlers.harness import Killed, load_event


def sqs_event(*bodies: str, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    records = []
    for number, body in enumerate(bodies):
        record = load_event("sqs_record.json")
        record.update(messageId=f"m{number}", body=body, messageAttributes=attributes or {})
        records.append(record)
    return {"Records": records}


def test_every_message_is_handled_in_order_and_none_reported_when_all_succeed():
    seen: list[tuple[str, str]] = []
    response = partial_batch_response(sqs_event("a", "b", "c"), lambda r: seen.append((r.message_id, r.body)))
    assert seen == [("m0", "a"), ("m1", "b"), ("m2", "c")]
    assert response == {"batchItemFailures": []}


def test_only_the_failed_messages_are_reported_and_their_neighbours_still_run():
    seen: list[str] = []

    def handle(record: SqsRecord) -> None:
        seen.append(record.message_id)
        if record.body in ("bad", "worse"):
            raise ValueError(record.body)

    response = partial_batch_response(sqs_event("bad", "good", "worse", "good"), handle)
    assert seen == ["m0", "m1", "m2", "m3"]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]}


def test_a_batch_whose_every_message_fails_reports_them_all_without_raising():
    def handle(record: SqsRecord) -> None:
        raise RuntimeError("no")

    response = partial_batch_response(sqs_event("a", "b"), handle)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_an_invocation_killed_mid_batch_is_not_turned_into_a_report():
    """Lambda ending the invocation (deadline, memory) is no message's failure: it propagates."""

    def handle(record: SqsRecord) -> None:
        raise Killed("deadline")

    with pytest.raises(Killed):
        partial_batch_response(sqs_event("a"), handle)


def test_a_records_message_attributes_are_given_as_lambdas_event_carries_them():
    carried = {"chunkMac": {"stringValue": "abc", "stringListValues": [], "dataType": "String"}}
    records: list[SqsRecord] = []
    partial_batch_response(sqs_event("a", attributes=carried), records.append)
    assert records[0].message_attributes == carried
    assert records[0].message_attributes.get("other") is None
