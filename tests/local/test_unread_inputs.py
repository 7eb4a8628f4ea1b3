"""The program as it is starts with a short, honest "not emulated" listing of its inputs (issue 20).

Each stack is deployed as `local up` deploys it (`local.deployer.deploy`, onto an in-process
emulator; no stack start). Every input the program declares is read by local mode, meaningless
locally by nature (`local.declared_inputs.NOT_APPLICABLE`), or listed: a new input the program
declares and local mode drops fails here until it is applied or listed with its reason.
"""

from __future__ import annotations

import pytest

from local.declared_inputs import unread
from local.deployer import NOT_EMULATED, deploy
from local.emulator import Emulator
from local.mocks import DeclaredResource
from local.project import stack_region, stack_settings

pytestmark = pytest.mark.long(seconds=20)

ACCOUNT = "123456789012"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_as_it_is_lists_exactly_the_inputs_local_mode_does_not_apply(stack: str) -> None:
    emulator = Emulator(stack_region(stack, stack_settings(stack)), ACCOUNT)
    emulator.start()
    try:
        deployment = deploy(stack, emulator, lambda api_id: "http://127.0.0.1:9")
    finally:
        emulator.stop()

    inputs = {name for _, name, _ in deployment.not_emulated if "." in name}
    # The stage's metricsEnabled: local mode computes no CloudWatch metrics; every other input is read,
    # and these are read without their effect (`local.declared_inputs.UNAPPLIED`): the functions'
    # arm64 and JSON log format, the stage's access log format, the jobs' TTL, the uploads' lifecycle.
    functions = ("csv-ingest-producer", "csv-ingest-worker", "csv-ingest-api-fn")
    assert inputs == {
        "csv-ingest-api-throttling.settings.metricsEnabled",
        *(f"{function}.{key}" for function in functions for key in ("architectures", "loggingConfig")),
        "csv-ingest-api-stage.accessLogSettings",
        "csv-ingest-data-jobs.ttl",
        "csv-ingest-uploads-lifecycle.rules",
    }
    # each with the page of what it does on AWS
    assert all("https://" in why for _, name, why in deployment.not_emulated if "." in name)
    # and every resource listed whole is of a type local mode says why it does not create
    assert {type_ for type_, name, _ in deployment.not_emulated if "." not in name} <= set(NOT_EMULATED)


def test_an_input_declared_as_zero_or_false_is_declared_and_only_absent_or_empty_ones_are_not() -> None:
    # A 0 is a choice (a function reserved at 0 concurrency is throttled to nothing): left unread, it
    # is listed like any other value; None, "", [] and an empty block are nothing declared.
    resource = DeclaredResource(
        urn="urn:pulumi:dev::csv-ingest::aws:lambda/function:Function::f",
        id=None,
        type="aws:lambda/function:Function",
        name="f",
        parent="",
        custom=True,
        inputs={
            "reservedConcurrentExecutions": 0,
            "publish": False,
            "snapStart": True,
            "description": "",
            "layers": [],
            "vpcConfig": {"subnetIds": [], "securityGroupIds": []},
            "kmsKeyArn": None,
        },
        outputs={},
        physical_name="f",
    )

    listed = {key for key, _ in unread(resource, read=set())}

    assert listed == {"reservedConcurrentExecutions", "snapStart"}
