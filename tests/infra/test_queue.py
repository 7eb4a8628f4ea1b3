"""The queue: encrypted, TLS-only, a DLQ after maxReceiveCount, visibility derived from the worker."""

import json

import pytest

from tests.infra.support import function

QUEUE, DLQ = "csv-ingest-chunks", "csv-ingest-chunks-dlq"
FAILED_EVENTS = "csv-ingest-producer-failed-events"


def test_visibility_timeout_is_six_worker_timeouts_plus_the_batching_window(dev, plan_with):
    assert dev.one("aws:sqs/queue:Queue", QUEUE).inputs["visibilityTimeoutSeconds"] == 6 * 60 + 5
    slower = plan_with(workerTimeoutSeconds=120, workerBatchingWindowSeconds=0)
    assert slower.one("aws:sqs/queue:Queue", QUEUE).inputs["visibilityTimeoutSeconds"] == 6 * 120


def test_failed_messages_move_to_the_dlq_after_max_receive_count(dev, prod):
    for plan, count in ((dev, 5), (prod, 8)):
        redrive = json.loads(plan.one("aws:sqs/queue:Queue", QUEUE).inputs["redrivePolicy"])
        assert redrive == {
            "deadLetterTargetArn": plan.one("aws:sqs/queue:Queue", DLQ).outputs["arn"],
            "maxReceiveCount": count,
        }


def test_dlq_keeps_messages_14_days_and_accepts_only_our_queue(dev):
    assert dev.one("aws:sqs/queue:Queue", DLQ).inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    allow = dev.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy", f"{DLQ}-redrive-allow").inputs
    assert allow["queueUrl"] == dev.one("aws:sqs/queue:Queue", DLQ).outputs["url"]
    assert json.loads(allow["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [dev.one("aws:sqs/queue:Queue", QUEUE).outputs["arn"]],
    }


@pytest.mark.parametrize("name", [QUEUE, DLQ, FAILED_EVENTS])
def test_every_queue_is_encrypted_and_denies_requests_without_tls(dev, name):
    queue = dev.one("aws:sqs/queue:Queue", name)
    assert queue.inputs["sqsManagedSseEnabled"] is True, name
    [policy] = [
        p.inputs for p in dev.of_type("aws:sqs/queuePolicy:QueuePolicy") if p.inputs["queueUrl"] == queue.outputs["url"]
    ]
    document = json.loads(policy["policy"])
    assert document["Version"] == "2012-10-17", name
    [deny] = [s for s in document["Statement"] if s["Sid"] == "DenyInsecureTransport"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:*"), name
    assert deny["Resource"] == [queue.outputs["arn"]], name
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, name


@pytest.mark.parametrize(("overrides", "expected"), [({}, 1_048_576), ({"maxMessageBytes": 131_072}, 131_072)])
def test_both_queues_accept_exactly_the_producers_message_budget(plan_with, overrides, expected):
    # A chunk the producer may send must fit the queue, then the DLQ, then the queue again on redrive.
    plan = plan_with(**overrides)
    budget = function(plan, "csv-ingest-producer").inputs["environment"]["variables"]["MAX_MESSAGE_BYTES"]
    assert budget == str(expected)
    for name in (QUEUE, DLQ):
        assert plan.one("aws:sqs/queue:Queue", name).inputs["maxMessageSize"] == expected, name


OPERATOR = "arn:aws:iam::123456789012:role/ops/dlq-redrive"


def _send_restriction(plan):
    policy = plan.one("aws:sqs/queuePolicy:QueuePolicy", f"{QUEUE}-policy").inputs
    [deny] = [s for s in json.loads(policy["policy"])["Statement"] if s["Sid"] == "OnlyListedSenders"]
    return deny


def test_only_the_producers_role_may_send_to_the_queue(dev):
    deny = _send_restriction(dev)
    producer_role = dev.one("aws:iam/role:Role", "csv-ingest-producer-role").outputs["arn"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage"), QUEUE
    assert deny["Resource"] == [dev.one("aws:sqs/queue:Queue", QUEUE).outputs["arn"]], QUEUE
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [producer_role]}}, QUEUE


def test_operators_listed_for_dlq_redrive_may_send_too(plan_with):
    # A redrive sends to the queue as the operator who started it (see infra/queue.py).
    plan = plan_with(queueRedrivePrincipals=[OPERATOR])
    producer_role = plan.one("aws:iam/role:Role", "csv-ingest-producer-role").outputs["arn"]
    assert _send_restriction(plan)["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [producer_role, OPERATOR]


def test_only_the_main_queue_restricts_senders(dev):
    # SQS itself moves failed messages into the DLQ, and Lambda writes failed events as the producer.
    for name in (f"{DLQ}-policy", "csv-ingest-producer-failed-events-policy"):
        statements = json.loads(dev.one("aws:sqs/queuePolicy:QueuePolicy", name).inputs["policy"])["Statement"]
        assert [s["Sid"] for s in statements] == ["DenyInsecureTransport"], name
