"""The benchmarks run (on tiny inputs) and their report renders: so `python -m bench` does not rot.

Figures are never asserted here: timings on a shared machine prove nothing. What is asserted is
that every benchmark produced its result, that the cost model's arithmetic holds, and that the
report names every benchmark.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import benchmarks
from bench.cost import DYNAMODB_WRITE_UNIT, ROWS, estimate, lambda_seconds
from bench.inputs import rows
from bench.producer_cpu import stack_config
from bench.projection import (
    DYNAMODB_LATENCY_MS,
    LAMBDA_MB_PER_VCPU,
    NEW_ON_DEMAND_TABLE_WRITES_PER_SECOND,
    sequential_requests,
    users_table_stage,
)
from tests.local.support import REPO_ROOT

pytestmark = pytest.mark.long(seconds=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("bench-results")
    subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--results-dir", str(results)],
        cwd=REPO_ROOT,
        check=True,
        timeout=600,
    )
    (path,) = results.glob("*-tiny.json")
    return path


def test_every_benchmark_produces_a_result(tiny_run: Path) -> None:
    results = json.loads(tiny_run.read_text())

    assert set(results["benchmarks"]) == {b.name for b in benchmarks()}
    assert results["machine"]["cores"] >= 1


def test_the_report_renders_every_benchmark(tiny_run: Path, tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    subprocess.run(
        [sys.executable, "-m", "bench", "--render", str(tiny_run), "--report", str(report)],
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )

    text = report.read_text()
    for benchmark in benchmarks():
        assert benchmark.title in text


def test_both_designs_wrote_every_row_end_to_end(tiny_run: Path) -> None:
    runs = json.loads(tiny_run.read_text())["benchmarks"]["end_to_end"]["runs"]

    assert {run["design"] for run in runs} == {"ours", "naive"}
    for run in runs:
        writes = {c["operation"]: c for c in run["calls"] if c["caller"] == "worker" and c["service"] == "dynamodb"}
        if run["design"] == "ours":
            # A fresh table: every row one INSERT statement, 25 to a BatchExecuteStatement; no PutItem.
            assert writes["BatchExecuteStatement"]["items"] == run["rows"]
            assert writes["BatchExecuteStatement"]["calls"] * 25 >= run["rows"]
            assert "PutItem" not in writes
        else:
            assert writes["BatchWriteItem"]["calls"] * 10 >= run["rows"]  # ten rows a call at most


def test_inputs_numbered_from_elsewhere_share_no_email_and_keep_their_names() -> None:
    def emails(lines: list[str]) -> set[str]:
        return {line.split(",")[1] for line in lines}

    default, here, elsewhere = list(rows(50)), list(rows(50, first=0)), list(rows(50, first=50))

    assert here == default  # the inputs of every other benchmark are the same bytes
    assert not emails(here) & emails(elsewhere)
    assert [line.split(",")[0] for line in elsewhere] == [line.split(",")[0] for line in here]


def test_the_worker_benchmark_writes_every_row_by_one_statement_fresh_and_present(tiny_run: Path) -> None:
    # The same emails uploaded twice: first into a table without them (every row an INSERT), then a newer
    # version of each (every row an UPDATE); the ceiling sends one UPDATE per row too. None by PutItem.
    # A chunk reads its hints (a key per row) only if most of the emails of its job's last chunk in its
    # environment were stored, or it is the job's first there (writes.Presence); one sent without them
    # learns a stored email from its INSERT's DuplicateItem, then sends its UPDATE. So a fresh row takes
    # one statement, and a present one a hint or a DuplicateItem before its UPDATE.
    worker = json.loads(tiny_run.read_text())["benchmarks"]["worker"]
    fresh, present, rows = worker["cases"]["fresh"], worker["cases"]["present"], worker["rows"]

    assert fresh["dynamodb_items"]["BatchExecuteStatement"] == rows
    assert fresh["dynamodb_items"].get("BatchGetItem", 0) <= rows
    assert (
        present["dynamodb_items"]["BatchExecuteStatement"] + present["dynamodb_items"].get("BatchGetItem", 0)
        == 2 * rows
    )
    for case in (fresh, present):
        assert "PutItem" not in case["dynamodb_calls"]
    assert worker["ceiling_statements"] == rows


def test_the_producer_benchmark_reads_the_wide_schema_in_the_same_run(tiny_run: Path) -> None:
    producer = json.loads(tiny_run.read_text())["benchmarks"]["producer_cpu"]
    default, wide = producer, producer["wide"]

    assert (default["schema"], default["columns"]) == ("users", 3)
    assert (wide["schema"], wide["columns"]) == ("customers", 20)
    assert wide["rows"] > 0 and wide["messages"] > 0
    assert wide["cpu_us_per_row"] > 0 and wide["csv_reader_cpu_us_per_row"] > 0
    assert "wide" not in wide and "met" not in wide  # the target is the default schema's only


def test_the_worker_benchmark_writes_every_wide_row_by_one_statement_fresh_and_present(tiny_run: Path) -> None:
    # As on the default schema: a stack deployed with the wide schema, the same file written into a
    # table without its keys (an INSERT a row), then again (a hint or a DuplicateItem, then an UPDATE).
    wide = json.loads(tiny_run.read_text())["benchmarks"]["worker"]["wide"]
    fresh, present, rows = wide["cases"]["fresh"], wide["cases"]["present"], wide["rows"]

    assert (wide["schema"], wide["columns"]) == ("customers", 20)
    assert fresh["dynamodb_items"]["BatchExecuteStatement"] == rows
    assert (
        present["dynamodb_items"]["BatchExecuteStatement"] + present["dynamodb_items"].get("BatchGetItem", 0)
        == 2 * rows
    )
    for case in (fresh, present):
        assert case["worker_cpu_us_per_row"] > 0
        assert "PutItem" not in case["dynamodb_calls"]


def test_the_report_shows_the_wide_schema_beside_the_default(tiny_run: Path, tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    subprocess.run(
        [sys.executable, "-m", "bench", "--render", str(tiny_run), "--report", str(report)],
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )

    sections = re.split(r"^## ", report.read_text(), flags=re.MULTILINE)
    for title in ("Producer CPU", "Worker"):
        (section,) = [s for s in sections if title in s.split("\n")[0]]
        assert re.search(r"^\| users \(default\), 3 columns \|", section, flags=re.MULTILINE), title
        assert re.search(r"^\| customers \(wide\), 20 columns \|", section, flags=re.MULTILINE), title
        assert "default schema only" in section, title


def test_the_projection_waits_on_batches_in_rounds_of_the_writers() -> None:
    # A chunk of 200 rows: 2 BatchGetItems at once, then 9 BatchExecuteStatements, 8 at a time (two
    # rounds), and the admission read, the progress transaction and the finish attempt one by one.
    per_chunk = {"BatchGetItem": 2.0, "BatchExecuteStatement": 9.0, "GetItem": 1.0, "TransactWriteItems": 1.0}
    per_chunk["UpdateItem"] = 1.0

    assert sequential_requests(per_chunk, writers=8) == 1 + 2 + 3


@pytest.mark.parametrize(("statement_bytes", "units"), [(700, 1), (1024, 1), (1500, 2)])
def test_the_users_table_allows_its_write_units_over_the_statements_each_row_takes(
    statement_bytes: int, units: int
) -> None:
    config = stack_config("dev")
    fresh = {"statements_per_row": 1.0, "statement_bytes": statement_bytes}

    stage = users_table_stage(config, {"cases": {"fresh": fresh}})

    assert config.table_billing_mode == "PAY_PER_REQUEST"
    assert stage.rows_per_second == pytest.approx(NEW_ON_DEMAND_TABLE_WRITES_PER_SECOND / units)


def test_the_cost_model_prices_one_write_unit_per_row_at_the_floor() -> None:
    rows = 1000
    run = {
        "rows": rows,
        "calls": [
            {"caller": "worker", "service": "dynamodb", "operation": "PutItem", "calls": rows, "units_64k": rows}
        ],
        "functions": {},
    }

    cost = estimate(run)

    assert cost["lines"]["DynamoDB write units"]["quantity"] == ROWS
    assert cost["dollars"] == pytest.approx(ROWS * DYNAMODB_WRITE_UNIT)


def test_the_cost_model_prices_batches_by_the_statements_and_keys_they_carry() -> None:
    # 1,000 rows: their hints read in 10 BatchGetItems of 100 keys (eventually consistent, half a unit
    # each), then 40 BatchExecuteStatements of 25 statements, one of which failed its condition (it
    # still consumes a write unit), and a GetItem of the job (strongly consistent, one unit).
    rows = 1000
    run = {
        "rows": rows,
        "calls": [
            {"caller": "worker", "service": "dynamodb", "operation": "BatchGetItem", "calls": 10, "items": 1000},
            {
                "caller": "worker",
                "service": "dynamodb",
                "operation": "BatchExecuteStatement",
                "calls": 40,
                "items": 1001,
            },
            {"caller": "worker", "service": "dynamodb", "operation": "GetItem", "calls": 1, "items": 1},
        ],
        "functions": {},
    }

    cost = estimate(run)

    assert cost["lines"]["DynamoDB write units"]["quantity"] == pytest.approx(1001 * ROWS / rows)
    assert cost["lines"]["DynamoDB read units"]["quantity"] == pytest.approx((0.5 * 1000 + 1) * ROWS / rows)


def test_a_functions_time_on_aws_is_its_cpu_at_its_vcpu_share_plus_its_own_calls_in_rounds() -> None:
    worker = {"memory_mb": 256, "cpu_seconds": 1.0, "concurrent_calls": {"PutItem": 16}}
    calls = [
        {"caller": "worker", "service": "dynamodb", "operation": "PutItem", "calls": 160},  # 10 rounds of 16
        {"caller": "worker", "service": "dynamodb", "operation": "GetItem", "calls": 2},  # one at a time
        # Lambda's own calls with the worker's role (the mapping's polls, log shipping), and another function's:
        {"caller": "worker", "service": "sqs", "operation": "ReceiveMessage", "calls": 50},
        {"caller": "worker", "service": "sqs", "operation": "DeleteMessageBatch", "calls": 5},
        {"caller": "worker", "service": "logs", "operation": "PutLogEvents", "calls": 3},
        {"caller": "producer", "service": "sqs", "operation": "SendMessageBatch", "calls": 7},
    ]

    seconds = lambda_seconds("worker", worker, calls)

    assert seconds == pytest.approx(LAMBDA_MB_PER_VCPU / 256 + 12 * DYNAMODB_LATENCY_MS / 1000)


def test_benchmarks_md_is_the_render_of_the_raw_results_it_names(tmp_path: Path) -> None:
    # BENCHMARKS.md is generated: rendering its committed results again gives it byte for byte, so every
    # figure in it comes from that file (and a renderer that depends on the order JSON keeps fails here).
    committed = (REPO_ROOT / "BENCHMARKS.md").read_text()
    found = re.search(r"Raw results: `(bench/results/[^`]+\.json)`", committed)
    assert found, "BENCHMARKS.md names no raw results"
    rendered = tmp_path / "BENCHMARKS.md"
    subprocess.run(
        [sys.executable, "-m", "bench", "--render", found.group(1), "--report", str(rendered)],
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )

    assert rendered.read_text() == committed, "regenerate with: python -m bench --render " + found.group(1)
