"""Emulators one after another in one process (a module of its own: stopping one empties moto's
process-wide backends, which would pull resources from under another module's emulator)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.emulator import Emulator
from tests.local.conftest import ACCOUNT, REGION


def test_a_stopped_emulators_resources_are_gone_for_the_next_one() -> None:
    first = Emulator(REGION, ACCOUNT)
    first.start()
    first.client("sqs").create_queue(QueueName="left-behind")
    first.stop()
    second = Emulator(REGION, ACCOUNT)
    second.start()
    try:
        assert "QueueUrls" not in second.client("sqs").list_queues(QueueNamePrefix="left-behind")
    finally:
        second.stop()


def test_each_emulator_has_an_administrator_secret_of_its_own() -> None:
    first = Emulator(REGION, ACCOUNT)
    first.start()
    first.client("sqs").list_queues()
    former = first.admin
    first.stop()
    second = Emulator(REGION, ACCOUNT)
    second.start()
    try:
        with pytest.raises(ClientError) as raised:
            boto3.client(
                "sqs",
                endpoint_url=second.endpoint_url,
                region_name=REGION,
                aws_access_key_id=former.access_key_id,
                aws_secret_access_key=former.secret_access_key,
                config=Config(retries={"total_max_attempts": 1}),
            ).list_queues()
        assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        assert second.admin.access_key_id == former.access_key_id  # an id, the same; the secret is not
    finally:
        second.stop()
