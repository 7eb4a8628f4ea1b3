"""Emulators one after another in one process (a module of its own: stopping one empties moto's
process-wide backends, which would pull resources from under another module's emulator)."""

from __future__ import annotations

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
