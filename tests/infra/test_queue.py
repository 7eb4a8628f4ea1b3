"""The queue: encrypted, TLS-only, a DLQ after maxReceiveCount, visibility derived from the worker."""

import json

import pytest

from local.mocks import run_program
from tests.infra.support import CI_DEPLOYER, DEPLOYER, AssumedRoleDeployer, function, queue_policy, role_arn, statement

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


PRODUCER, WORKER = "csv-ingest-producer", "csv-ingest-worker"
# Besides the messages themselves: a principal allowed these could take the queue's denies away.
ADMINISTRATION = ["sqs:SetQueueAttributes", "sqs:AddPermission", "sqs:RemovePermission", "sqs:DeleteQueue"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nobody_may_send_to_the_dlq(request, stack):
    # SQS moves a failed chunk there itself; a chunk sent there would be redriven into the queue.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, DLQ), "NobodySends")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage"), DLQ
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", DLQ).outputs["arn"]], DLQ
    # Every IAM principal, whatever it is listed as; a service principal acting itself is not one.
    assert deny["Condition"] == {"Bool": {"aws:PrincipalIsAWSService": "false"}}, DLQ


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_producers_role_may_send_to_the_failed_events_queue(request, stack):
    # Lambda writes the on-failure record with the function's execution role.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, FAILED_EVENTS), "OnlyProducerReportsFailures")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage"), FAILED_EVENTS
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", FAILED_EVENTS).outputs["arn"]], FAILED_EVENTS
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [role_arn(plan, PRODUCER)]}}, FAILED_EVENTS


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_workers_role_may_receive_delete_or_hide_chunks(request, stack):
    # The event source mapping polls with the worker's execution role; nobody else reads personal data
    # in flight, drops a chunk or hides it for twelve hours.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, QUEUE), "OnlyWorkerConsumes")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*"), QUEUE
    assert deny["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], QUEUE
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", QUEUE).outputs["arn"]], QUEUE
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [role_arn(plan, WORKER)]}}, QUEUE


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nobody_but_the_deployers_purges_the_queue(request, stack):
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, QUEUE), "OnlyDeployersAdminister")
    assert deny["Action"] == [*ADMINISTRATION, "sqs:PurgeQueue"], QUEUE


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("name", [QUEUE, DLQ])
def test_only_the_deploying_principal_may_change_or_delete_the_queues(request, stack, name):
    # `pulumi up` sets the queues' attributes and policies (SetQueueAttributes) as whoever runs it.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, name), "OnlyDeployersAdminister")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*"), name
    assert set(ADMINISTRATION) <= set(deny["Action"]), name
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", name).outputs["arn"]], name
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER]}}, name


def test_a_deploying_role_session_is_exempt_by_its_role_not_by_the_session():
    # aws:PrincipalArn is the role's ARN for every session of it; the session's ARN would match no request.
    plan = run_program("dev", mocks_factory=AssumedRoleDeployer)
    for name in (QUEUE, DLQ):
        deny = statement(queue_policy(plan, name), "OnlyDeployersAdminister")
        assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [CI_DEPLOYER]}}, name


def test_the_principals_listed_as_deployers_may_change_the_queues_too(plan_with):
    # Whoever deploys next must be exempt already, or the policy refuses the update that would add them.
    plan = plan_with(deployerPrincipals=[CI_DEPLOYER])
    for name in (QUEUE, DLQ):
        deny = statement(queue_policy(plan, name), "OnlyDeployersAdminister")
        assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, CI_DEPLOYER]}}, name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nobody_reads_or_drops_dead_letters_unless_the_stack_lists_operators(request, stack):
    # A dead letter holds a chunk's rows: personal data. The operators who peek and redrive are listed.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, DLQ), "OnlyOperatorsReadDeadLetters")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*"), DLQ
    assert deny["Action"] == [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:PurgeQueue",
        "sqs:StartMessageMoveTask",
        "sqs:CancelMessageMoveTask",
    ], DLQ
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", DLQ).outputs["arn"]], DLQ
    assert "Condition" not in deny, f"{DLQ}: with no operator listed, nobody reads dead letters"


def test_the_operators_listed_for_redrive_alone_read_dead_letters(plan_with):
    deny = statement(queue_policy(plan_with(queueRedrivePrincipals=[OPERATOR]), DLQ), "OnlyOperatorsReadDeadLetters")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [OPERATOR]}}, DLQ


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nobody_but_the_operators_starts_or_cancels_a_move_of_dead_letters(request, stack):
    # A move task sends dead letters wherever its caller names (DestinationArn): one allowed sqs:* by its
    # own policy would move them into a queue of its own and read them there.
    deny = statement(queue_policy(request.getfixturevalue(stack), DLQ), "OnlyOperatorsReadDeadLetters")
    assert {"sqs:StartMessageMoveTask", "sqs:CancelMessageMoveTask"} <= set(deny["Action"]), DLQ
    # Listing the tasks shows their counts and queues, no message: it stays open, like GetQueueAttributes.
    assert "sqs:ListMessageMoveTasks" not in deny["Action"], DLQ


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deployers_change_purge_or_delete_the_failed_events_queue(request, stack):
    # A principal allowed sqs:SetQueueAttributes could replace the policy and undo the send deny; a purge
    # would drop the failed uploads waiting for replay without a trace.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, FAILED_EVENTS), "OnlyDeployersAdminister")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*"), FAILED_EVENTS
    assert deny["Action"] == [*ADMINISTRATION, "sqs:PurgeQueue"], FAILED_EVENTS
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", FAILED_EVENTS).outputs["arn"]], FAILED_EVENTS
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER]}}, FAILED_EVENTS


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nobody_reads_or_drops_failed_upload_events_unless_the_stack_lists_operators(request, stack):
    # A failed event names a bucket and key and starts a job when replayed: the operators who replay
    # them are the ones queueRedrivePrincipals lists.
    plan = request.getfixturevalue(stack)
    deny = statement(queue_policy(plan, FAILED_EVENTS), "OnlyOperatorsReplayFailures")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*"), FAILED_EVENTS
    assert deny["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], FAILED_EVENTS
    assert deny["Resource"] == [plan.one("aws:sqs/queue:Queue", FAILED_EVENTS).outputs["arn"]], FAILED_EVENTS
    assert "Condition" not in deny, f"{FAILED_EVENTS}: with no operator listed, nobody reads failed events"


def test_the_operators_and_deployers_listed_alone_handle_failed_upload_events(plan_with):
    plan = plan_with(queueRedrivePrincipals=[OPERATOR], deployerPrincipals=[CI_DEPLOYER])
    document = queue_policy(plan, FAILED_EVENTS)
    replay = statement(document, "OnlyOperatorsReplayFailures")
    assert replay["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [OPERATOR]}}, FAILED_EVENTS
    administration = statement(document, "OnlyDeployersAdminister")
    assert administration["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, CI_DEPLOYER]}}, FAILED_EVENTS


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize(
    ("name", "sids"),
    [
        (QUEUE, ["DenyInsecureTransport", "OnlyListedSenders", "OnlyWorkerConsumes", "OnlyDeployersAdminister"]),
        (DLQ, ["DenyInsecureTransport", "NobodySends", "OnlyOperatorsReadDeadLetters", "OnlyDeployersAdminister"]),
        (
            FAILED_EVENTS,
            [
                "DenyInsecureTransport",
                "OnlyProducerReportsFailures",
                "OnlyOperatorsReplayFailures",
                "OnlyDeployersAdminister",
            ],
        ),
    ],
)
def test_queue_policies_only_deny(request, stack, name, sids):
    # Nothing is granted by a queue's policy: every principal's access comes from its own policy.
    document = queue_policy(request.getfixturevalue(stack), name)
    assert [s["Sid"] for s in document["Statement"]] == sids, name
    assert {s["Effect"] for s in document["Statement"]} == {"Deny"}, name
