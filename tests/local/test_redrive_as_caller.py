"""A DLQ redrive runs with its caller's rights (issue 20, item 5).

On AWS a message move task uses the permissions of whoever starts it: besides
sqs:StartMessageMoveTask, receiving, deleting and reading the attributes of the dead-letter queue and
sending to the destination
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html).
`local.message_moves` already acts in the caller's name (an earlier round; the broader cases are in
tests/local/test_emulator_routes.py::test_a_message_move_runs_with_the_callers_rights). This is the
issue's own case: a user allowed only to start the move, and one denied SendMessage on the source queue
the dead letters would go back to, move nothing and get AccessDenied.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.emulator import Emulator
from tests.local.support import iam_user
from tests.local.test_emulator_routes import ON_THE_DEAD_LETTER_QUEUE, count_in, dead_letter_queue, unique


def refused(call: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


def test_a_move_by_a_user_allowed_only_to_start_it_or_denied_sending_moves_nothing(emulator: Emulator) -> None:
    iam, admin = emulator.client("iam"), emulator.client("sqs")
    name = unique("redriver")
    redriver = iam_user(iam, name)
    # GIVEN a DLQ holding one dead letter, its policy leaving receive and delete to this user only
    source_url, source_arn, dlq_url, dlq_arn = dead_letter_queue(emulator, redriver.arn)
    sqs = emulator.client("sqs", redriver.credentials)

    # WHEN the user, allowed sqs:StartMessageMoveTask and nothing else, starts a move back to the source
    only_start = {"Effect": "Allow", "Action": "sqs:StartMessageMoveTask", "Resource": dlq_arn}
    document = {"Version": "2012-10-17", "Statement": [only_start]}
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    only_started = refused(lambda: sqs.start_message_move_task(SourceArn=dlq_arn))

    # AND again allowed everything on the DLQ but explicitly denied SendMessage on the source queue
    on_dlq = {"Effect": "Allow", "Action": ON_THE_DEAD_LETTER_QUEUE, "Resource": dlq_arn}
    no_send = {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": source_arn}
    allow_send = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}
    document = {"Version": "2012-10-17", "Statement": [on_dlq, allow_send, no_send]}
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    denied_send = refused(lambda: sqs.start_message_move_task(SourceArn=dlq_arn))

    # THEN both are AccessDenied, the second naming SendMessage on the source queue, and nothing moved:
    # no task was started, the dead letter is still in the DLQ and the source queue is empty
    assert only_started["Code"] == "AccessDenied", only_started
    assert "sqs:ReceiveMessage" in only_started["Message"] and dlq_arn in only_started["Message"]
    assert denied_send["Code"] == "AccessDenied", denied_send
    assert f"sqs:SendMessage on resource: {source_arn}" in denied_send["Message"]
    assert "explicit deny" in denied_send["Message"]
    assert admin.list_message_move_tasks(SourceArn=dlq_arn)["Results"] == []
    assert (count_in(emulator, dlq_url), count_in(emulator, source_url)) == (1, 0)
