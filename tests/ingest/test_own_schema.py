"""Your own schema, end to end, as the README's section of that name does it: a stack file of the
examples started in local mode with `--config-file`, its sample uploaded, its rejects read, its items
got and listed by their own columns, typed, with the commands a user types (each in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.conftest import local_command, run_ingest
from tests.local.support import (
    REPO_ROOT,
    USER_AWS_ENVIRONMENT,
    LocalStackProcess,
    stop_local,
    wait_for,
    wait_until_started,
)

pytestmark = pytest.mark.long(seconds=60)

PRODUCTS_FILE = "examples/products/Pulumi.products.yaml"
DEVICES_FILE = "examples/devices/Pulumi.devices.yaml"
START_TIMEOUT_SECONDS = 120


def local_up(state_root: Path, config_file: str, stack: str) -> LocalStackProcess:
    """`python -m ingest local up --config-file FILE` as the README runs it: no `--stack` (the file's
    name names it), any free port, workers taking messages at once."""
    state_root.mkdir(parents=True, exist_ok=True)
    console = state_root / f"console-{stack}.txt"
    command = [sys.executable, "-m", "ingest", "local", "up", "--config-file", config_file, "--port", "0"]
    command += ["--state-dir", str(state_root), "--set", "workerBatchingWindowSeconds=0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | USER_AWS_ENVIRONMENT
    with console.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT, env=env)
    running = LocalStackProcess(process=process, stack=stack, state_root=state_root, console=console)
    return wait_until_started(running, START_TIMEOUT_SECONDS, f"local mode ({stack}) to start")


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    running = local_up(tmp_path_factory.mktemp("products-state"), PRODUCTS_FILE, "products")
    yield running
    stop_local(running)


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    running = local_up(tmp_path_factory.mktemp("devices-state"), DEVICES_FILE, "devices")
    yield running
    stop_local(running)


def one_json(result: subprocess.CompletedProcess[str]) -> Any:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not one JSON line:\n{result.stdout}\nstderr:\n{result.stderr}"
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def products_job(products: LocalStackProcess) -> dict[str, Any]:
    result = local_command(products, "upload", "examples/products/products.csv", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    return one_json(result)


@pytest.fixture(scope="module")
def devices_job(devices: LocalStackProcess) -> dict[str, Any]:
    result = local_command(devices, "upload", "examples/devices/devices.csv", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    return one_json(result)


# --- products: a text key, decimal, integer, boolean, date ----------------------------------------


def test_the_stack_file_names_the_stack_and_its_schema_is_an_output(products: LocalStackProcess) -> None:
    assert products.state_root.joinpath("products", "outputs.json").is_file()
    assert json.loads(products.outputs["schema"])["name"] == "products"
    assert "productsTableName" in products.outputs
    # Local mode prints its summary just after it writes its outputs, which is what start-up waits for:
    # wait for its last line, the hints.
    wait_for(lambda: '"$INGEST_API_URL/products?limit=5"' in products.console_text(), 30, "the start-up summary")
    started = products.console_text()
    assert "csv-ingest products: running locally" in started
    # the first commands to try are this stack's: its sample, its collection
    assert 'aws s3 cp examples/products/products.csv "s3://$INGEST_BUCKET_NAME/uploads/products.csv"' in started
    assert '"$INGEST_API_URL/products?limit=5"' in started


def test_products_sample_is_ingested_with_its_rejects(products_job: dict[str, Any]) -> None:
    job = products_job
    assert job["status"] == "COMPLETE_WITH_REJECTS"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (10, 6, 4)
    # TS-100 twice: its later row wins, the earlier is superseded
    assert (job["rowsWritten"], job["rowsSuperseded"]) == (5, 1)


def test_products_rejects_say_why_by_column_and_rule(products: LocalStackProcess, products_job: dict[str, Any]) -> None:
    result = local_command(products, "rejects", products_job["jobId"], "--json")

    assert result.returncode == 0, result.stderr
    reasons = {row["row"]: row["reason"] for row in one_json(result)}
    assert reasons == {
        5: "price is below its minimum, 0",
        6: "active is not a boolean (true/t/yes/y/1/on or false/f/no/n/0/off)",
        7: "launched is not a date in ISO 8601 form (YYYY-MM-DD)",
        8: "sku is empty",
    }


def test_get_answers_a_product_typed_by_its_columns(products: LocalStackProcess, products_job: dict[str, Any]) -> None:
    as_json = local_command(products, "get", "TS-100", "--json")
    shown = local_command(products, "get", "TS-100")

    assert as_json.returncode == 0, as_json.stderr
    item = one_json(as_json)
    assert {k: item[k] for k in ("sku", "title", "price", "stock", "active", "launched", "row")} == {
        "sku": "TS-100",
        "title": "Trail shoe",
        "price": "84.9",
        "stock": 10,
        "active": True,
        "launched": "2025-03-01",
        "row": 9,
    }
    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()]
    fields = [line[0] for line in lines[2:]]
    assert fields == ["sku", "title", "price", "stock", "active", "launched", *SOURCE_FIELDS]
    assert ["price", "84.9"] in lines and ["stock", "10"] in lines and ["active", "true"] in lines


SOURCE_FIELDS = ["updatedAt", "uploadedAt", "sourceKey", "jobId", "row"]


def test_get_of_an_absent_product_encodes_the_key_and_names_the_schemas_noun(products: LocalStackProcess) -> None:
    result = local_command(products, "get", "TS 100/../jobs", "--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "error: no product with that sku in local stack products\n"


def test_list_shows_the_products_columns(products: LocalStackProcess, products_job: dict[str, Any]) -> None:
    shown = local_command(products, "list")
    as_json = local_command(products, "list", "--all", "--json")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["sku", "title", "price", "stock", "active", "launched", "updatedAt", "sourceKey", "row"]
    assert lines[-1] == "5 product(s)"
    listed = {item["sku"]: item for item in one_json(as_json)}
    assert sorted(listed) == ["BK-200", "BK-201", "KT-400", "TS-100", "TS-101"]
    assert (listed["KT-400"]["launched"], listed["BK-200"]["price"], listed["TS-101"]["active"]) == (None, "59", False)


def test_check_against_the_running_stacks_file_agrees_with_the_job(products_job: dict[str, Any]) -> None:
    result = run_ingest("upload", "--check", "examples/products/products.csv", "--config-file", PRODUCTS_FILE, "--json")

    checked = one_json(result)
    assert (checked["rows"], checked["valid"], checked["rejected"]) == (
        products_job["rowsTotal"],
        products_job["rowsValid"],
        products_job["rowsRejected"],
    )


# --- devices: an integer key, enum, datetime ---------------------------------------------------


def test_devices_sample_is_ingested_with_its_rejects(devices: LocalStackProcess, devices_job: dict[str, Any]) -> None:
    assert devices_job["status"] == "COMPLETE_WITH_REJECTS"
    assert (devices_job["rowsTotal"], devices_job["rowsValid"], devices_job["rowsRejected"]) == (8, 4, 4)
    result = local_command(devices, "rejects", devices_job["jobId"], "--json")
    reasons = {row["row"]: row["reason"] for row in one_json(result)}
    assert reasons[4] == "status is not one of its 3 values (active, maintenance, retired)"
    assert reasons[6] == "serial is not a whole number (digits, an optional sign)"


def test_get_answers_a_device_by_its_integer_key_typed(devices: LocalStackProcess, devices_job: dict[str, Any]) -> None:
    latest = local_command(devices, "get", "1001", "--json")
    spelled = local_command(devices, "get", "+01002", "--json")  # the key's normal form is looked up

    assert latest.returncode == 0, latest.stderr
    item = one_json(latest)
    assert {k: item[k] for k in ("serial", "model", "status", "lastSeen", "firmware", "owner", "row")} == {
        "serial": 1001,
        "status": "maintenance",
        "model": "Sensor S1",
        "lastSeen": "2026-12-02T10:30:00.000Z",
        "firmware": "1.4.3",
        "owner": "ops@example.com",
        "row": 8,
    }
    assert spelled.returncode == 0, spelled.stderr
    assert one_json(spelled)["lastSeen"] == "2026-12-01T08:15:00.000Z"  # 09:15+01:00, in UTC


def test_get_of_a_key_that_is_not_a_whole_number_says_the_rule(devices: LocalStackProcess) -> None:
    result = local_command(devices, "get", "x1006")

    assert result.returncode == 2
    assert result.stderr == (
        "error: not a serial the API accepts: serial is not a whole number (digits, an optional sign)\n"
    )
