"""The program's S3 trigger as local mode deploys and runs it: one notification rule per upload
suffix (issue 22, item 4), each matched as S3 matches a suffix filter, character for character.

The program is deployed onto an in-process emulator (`local.deployer.deploy`, what `local up` runs
first); objects are put under the uploads prefix the stack outputs, and the S3 → Lambda events the
emulator hands local mode's runtime (`Emulator.s3_events`) are read. The suffixes come from the
stack's outputs, never from this test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.deployer import deploy
from local.emulator import Emulator
from local.mocks import Plan
from local.project import stack_region, stack_settings

pytestmark = pytest.mark.long(seconds=30)

STACK = "dev"
REGION = stack_region(STACK, stack_settings(STACK))
ACCOUNT = "123456789012"
PRODUCER = "csv-ingest-producer"


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Emulator, Plan]]:
    emulator = Emulator(REGION, ACCOUNT)
    emulator.start()
    try:
        yield emulator, deploy(STACK, emulator, lambda api_id: "http://127.0.0.1:9").plan
    finally:
        emulator.stop()


def events_for(emulator: Emulator, plan: Plan, key: str) -> list[tuple[str, dict[str, Any]]]:
    """Put `key` in the upload bucket; the S3 → Lambda events it caused (function ARN, event)."""
    while not emulator.s3_events.empty():
        emulator.s3_events.get_nowait()
    emulator.client("s3").put_object(Bucket=plan.outputs["bucketName"], Key=key, Body=b"name,mail,phone\n")
    time.sleep(0.2)  # the event is queued while the put is handled; nothing arrives later
    events = []
    while not emulator.s3_events.empty():
        events.append(emulator.s3_events.get_nowait())
    return events


def test_a_key_with_each_upload_suffix_triggers_the_producer_once(deployed) -> None:
    emulator, plan = deployed
    producer = plan.one("aws:lambda/function:Function", PRODUCER).outputs["arn"]
    suffixes = plan.outputs["uploadsSuffixes"]
    assert {".csv.gz", ".tsv"} <= set(suffixes), "the default stack takes gzip and tab files"

    for suffix in suffixes:
        key = f"{plan.outputs['uploadsPrefix']}triggers/users{suffix}"
        events = events_for(emulator, plan, key)
        assert [arn for arn, _ in events] == [producer], key
        [record] = events[0][1]["Records"]
        assert record["eventName"].startswith("ObjectCreated:"), key


@pytest.mark.parametrize("name", ["users.gz", "users.CSV", "users.Csv.gz", "users.csv.txt", "users"])
def test_a_key_with_none_of_the_suffixes_as_written_triggers_nothing(deployed, name: str) -> None:
    emulator, plan = deployed
    key = f"{plan.outputs['uploadsPrefix']}triggers/{name}"
    assert not key.endswith(tuple(plan.outputs["uploadsSuffixes"])), key

    assert events_for(emulator, plan, key) == []


def test_a_key_outside_the_uploads_prefix_triggers_nothing_whatever_its_suffix(deployed) -> None:
    emulator, plan = deployed
    for suffix in plan.outputs["uploadsSuffixes"]:
        assert events_for(emulator, plan, f"elsewhere/users{suffix}") == [], suffix
