"""Worker: how fast the worker writes chunks into DynamoDB, against the emulator's own write ceiling.

The worker runs as local mode runs it: its archive in its function host's processes, with its role's
credentials, against the in-process emulator. Its input is what the producer sends: a job created
with the producer's own `JobStore`, its CSV packed into chunks by the producer's own `run_segment`
(the messages, bodies and MAC attributes, are captured instead of sent), then marked queued, so the last chunk written
finishes the job as it would on AWS. Each batch of `workerBatchSize` messages becomes one SQS event
(`local.esm.sqs_record`, the records the event source mapping builds), and the worker's host is
invoked with them from as many threads as the mapping's maximum concurrency. Nothing else runs: the
figure is the worker's, not the producer's or the queue's.

Each repeat writes one file twice: first into a table without its emails (fresh: every row an INSERT
statement), then uploaded again, a newer version of every row (present: every row an UPDATE under
`LATEST_WINS`). Each file's keys are its own (`Dataset.rows(first=…)`), so the warm-up and the
repeats never meet each other's.

The emulator's requests are counted by caller role, so the worker's DynamoDB calls per row and per
chunk, and the statements and keys its batches carry, are counted, not inferred. The CPU time of the
worker's processes (read from /proc) is the worker's own cost per chunk, the emulator's time
excluded; the projection scales it to a Lambda.

The ceiling is the best any worker could do on this emulator: the same BatchExecuteStatement calls,
25 statements each, the UPDATE of every row of the run at the version just stored (so every
condition holds and every statement writes; the worker's own request builder, `statement_request`),
sent directly with the worker role's credentials from as many threads as the worker's concurrency,
in a process of their own, measured in the same run.

All of it runs twice in one run: on the default schema (the dev stack as it is), then on the wide
schema (`bench.inputs.WIDE`: 20 columns of every type), the dev stack deployed with its `schema`
setting, in a stack of its own after the first has stopped. The targets are the default schema's only.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.core import Benchmark, Context, Result, median_of, number, ratio, table, timed, verdict
from bench.inputs import USERS, WIDE, WIDE_SCHEMA_DECLARATION, Dataset
from bench.producer_cpu import REMAINING_MS, producer_settings, schema_label, stack_config
from bench.stacks import BenchStack, CpuSpan, LogSpan, local_stack
from handlers.common.chunks import decode
from handlers.common.jobs import COMPLETE, job_id_for, job_key
from handlers.common.schema import from_environment
from handlers.common.signing import SECRET_ARN_VARIABLE, JobKeys
from handlers.producer.ingest import Clock, Services, run_segment
from handlers.producer.job_store import JobStore, Upload
from handlers.worker.writes import (
    MAX_STATEMENTS,
    WRITERS,
    ChunkValues,
    ItemLayout,
    Statements,
    latest_rows,
    statement_request,
)
from infra.config import PipelineConfig
from local.esm import sqs_record
from local.functions import FunctionHost, InvocationResult
from local.project import REPO_ROOT
from local.registry import FunctionSpec, QueueEventSource

STACK = "dev"
# The worker's environment variable naming its items table (infra/worker.py sets it).
ITEMS_TABLE_VARIABLE = "ITEMS_TABLE"
# Where the benchmark's CSVs are put: outside the uploads prefix, so no S3 notification starts the
# producer on them (the benchmark runs the producer's code itself, into a capture).
BENCH_PREFIX = "bench/worker/"
CASES = ("fresh", "present")
"""The table the worker writes into: without the file's emails, or holding every one (an older upload)."""
# Issue 18's targets: DynamoDB requests per row (every operation of the worker's role), worker CPU per row.
TARGET_CALLS_PER_ROW = {"fresh": 0.08, "present": 0.12}
TARGET_CPU_US_PER_ROW = 150.0


def sizes(ctx: Context, config: PipelineConfig, source: QueueEventSource) -> int:
    """Rows for one run: every environment the mapping allows busy with a full batch at once (so the
    run measures the stack's concurrency, not fewer invocations); the tests' tiny run, one chunk."""
    full_round = source.max_concurrency * source.batch_size * config.rows_per_message
    return ctx.pick(tiny=200, quick=full_round, full=full_round)


# --- the worker as deployed ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedWorker:
    """The worker function, the event source mapping that feeds it, and its host."""

    spec: FunctionSpec
    source: QueueEventSource
    host: FunctionHost
    region: str

    @classmethod
    def of(cls, stack: BenchStack) -> DeployedWorker:
        registry = stack.local.registry
        assert registry is not None
        spec = stack.functions.worker
        (source,) = [s for s in registry.queue_sources if s.function_arn == spec.arn]
        return cls(spec=spec, source=source, host=stack.local.hosts[spec.name], region=registry.region)

    @property
    def role_name(self) -> str:
        """How the emulator's call counts name the worker's requests."""
        return self.spec.role_arn.rsplit("/", 1)[-1]

    def events(self, messages: Sequence[SentMessage], per_event: int | None = None) -> list[dict[str, Any]]:
        """The messages as the mapping delivers them: SQS events of `BatchSize` records each (or `per_event`)."""
        records = [sqs_record(_message(message), self.source.queue_arn, self.region) for message in messages]
        size = per_event or self.source.batch_size
        return [{"Records": records[start : start + size]} for start in range(0, len(records), size)]

    def invoke_all(self, events: Sequence[dict[str, Any]]) -> list[InvocationResult]:
        """Every event, at most the mapping's maximum concurrency at once; a failed one raises."""
        with ThreadPoolExecutor(self.source.max_concurrency, thread_name_prefix="bench-invoke") as pool:
            results = list(pool.map(self.host.invoke, events))
        for result in results:
            failures = (result.payload or {}).get("batchItemFailures") if result.ok else None
            if not result.ok or failures:
                raise RuntimeError(f"worker: invocation {result.request_id} failed: {result.error or failures}")
        return results


def _message(sent: SentMessage) -> dict[str, Any]:
    """An SQS message as ReceiveMessage returns it, for `sqs_record`."""
    now_ms = str(int(time.time() * 1000))
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": uuid.uuid4().hex,
        "Body": sent.body,
        "MD5OfBody": hashlib.md5(sent.body.encode()).hexdigest(),  # SQS's checksum of the body
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms},
        "MessageAttributes": sent.attributes,
    }


# --- a job and its chunks, as the producer makes them --------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    """A chunk as the producer sends it: its body, and the attributes that carry its MAC."""

    body: str
    attributes: dict[str, Any]


class _CapturedSqs:
    """SendMessageBatch that keeps every message (called from the producer's send pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[SentMessage] = []

    def send_message_batch(self, *, Entries: list[dict[str, Any]], **_queue: Any) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.messages += [
                SentMessage(entry["MessageBody"], entry.get("MessageAttributes", {})) for entry in Entries
            ]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    rows: int
    messages: list[SentMessage]
    """The chunks the producer would have sent, in its order."""

    @property
    def bodies(self) -> list[str]:
        return [message.body for message in self.messages]


def queued_job(
    stack: BenchStack, config: PipelineConfig, dataset: Dataset, rows: int, name: str, first: int
) -> QueuedJob:
    """A job of `rows` seeded rows of `dataset` (the stack's schema, `config.schema`), keys numbered
    from `first`: created, parsed into chunks and marked queued by the producer's code."""
    target, data = stack.target, dataset.csv_bytes(rows, first=first)
    s3 = target.client("s3")
    key = f"{BENCH_PREFIX}{name}.csv"
    bucket = target.outputs["bucketName"]
    version = s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]
    now = datetime.now(UTC)
    upload = Upload(
        bucket=bucket,
        key=key,
        version_id=version,
        size=len(data),
        uploaded_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        uploaded_at_ms=int(now.timestamp() * 1000),
        sequencer="",
    )
    job_id, owner = job_id_for(bucket, key, version), f"bench-{name}"
    store = JobStore(_jobs_table(stack))
    expires_at = int(time.time()) + config.job_ttl_days * 86400 if config.job_ttl_days else None
    store.create(job_id, upload, expires_at)
    now_ms = int(time.time() * 1000)
    lease = store.acquire(job_id, owner, now_ms, now_ms + REMAINING_MS)
    assert lease.acquired and lease.job is not None, f"{name}: the new job's lease was not ours"
    sqs, clock = _CapturedSqs(), Clock(lambda: REMAINING_MS)
    with ThreadPoolExecutor(4, thread_name_prefix="bench-send") as executor:
        # Signed as the producer signs: with the key derived from the stack's secret (read as the administrator).
        secret_arn = stack.functions.producer.environment[SECRET_ARN_VARIABLE]
        keys = JobKeys.in_secrets_manager(secret_arn, client=lambda: target.client("secretsmanager"))
        services = Services(s3, sqs, executor, keys)
        segment = run_segment(lease.job, services, producer_settings(config), clock)
    if not segment.finished or segment.checkpoint.rows_valid != rows:
        raise RuntimeError(f"{name}: the producer packed {segment.checkpoint.rows_valid} of {rows} rows")
    store.queue(job_id, owner, segment.summary)
    return QueuedJob(job_id=job_id, rows=rows, messages=sqs.messages)


def _jobs_table(stack: BenchStack) -> Any:
    target = stack.target
    resource = target.session.resource("dynamodb", region_name=target.region, endpoint_url=target.endpoint_url)
    return resource.Table(target.outputs["jobsTableName"])


def job_record(stack: BenchStack, job_id: str) -> dict[str, Any]:
    return _jobs_table(stack).get_item(Key=job_key(job_id), ConsistentRead=True).get("Item") or {}


# --- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRun:
    """One job's chunks through the worker."""

    rows: int
    chunks: int
    invocations: int
    cold_starts: int
    seconds: float
    worker_cpu_seconds: float
    """CPU of the worker's processes: its own work, no emulator time in it."""
    local_cpu_seconds: float
    """CPU of this process meanwhile: the emulator serving the worker (and the hosts' plumbing)."""
    billed_ms: int
    """Lambda's billed duration over the run (REPORT lines): the worker's wall time, waiting included."""
    calls: dict[str, int]
    """The worker role's DynamoDB calls by operation."""
    items: dict[str, int]
    """What its calls carried, by operation: a BatchExecuteStatement's statements, a BatchGetItem's keys."""
    statement_bytes: int
    """The request bodies of its BatchExecuteStatements (statements, parameters and types, as sent)."""


def run_worker(stack: BenchStack, worker: DeployedWorker, job: QueuedJob) -> WorkerRun:
    events = worker.events(job.messages)
    log = LogSpan(stack.log_file(worker.spec.name))
    calls = stack.emulator.calls
    calls.reset()
    cpu = CpuSpan(worker.host)
    local_began = time.process_time()
    seconds, results = timed(lambda: worker.invoke_all(events))
    local_cpu = time.process_time() - local_began
    worker_cpu = cpu.seconds()
    ours = {
        operation: count
        for (caller, service, operation), count in sorted(calls.snapshot().items())
        if caller == worker.role_name and service == "dynamodb"
    }
    done = job_record(stack, job.job_id)
    if done.get("status") != COMPLETE or done.get("rowsWritten", 0) + done.get("rowsSuperseded", 0) != job.rows:
        raise RuntimeError(f"worker: job {job.job_id} ended {done.get('status')}, not COMPLETE with every row")
    return WorkerRun(
        rows=job.rows,
        chunks=len(job.messages),
        invocations=len(results),
        cold_starts=sum(result.cold_start for result in results),
        seconds=seconds,
        worker_cpu_seconds=worker_cpu,
        local_cpu_seconds=local_cpu,
        billed_ms=log.runs().billed_ms,
        calls={operation: count.calls for operation, count in ours.items()},
        items={operation: count.items for operation, count in ours.items()},
        statement_bytes=ours["BatchExecuteStatement"].body_bytes if "BatchExecuteStatement" in ours else 0,
    )


def statement_ceiling(stack: BenchStack, worker: DeployedWorker, bodies: Sequence[str]) -> float:
    """Seconds to write the rows of `bodies` as the worker writes a row already stored (its UPDATE
    statement, built by the worker's own `statement_request`, 25 to a BatchExecuteStatement, a chunk's
    rows together, its role), from as many threads as the worker's concurrency. The statements carry
    the versions just stored, so every condition holds and every statement writes.

    The threads run in a process of their own, as the worker's do: in this one they would share the
    GIL with the emulator they measure, and the ceiling would be the client's, not the emulator's.
    A plain child (`python -c`), not multiprocessing, which would re-import the caller's main module."""
    credentials = stack.emulator.assume_role(worker.spec.role_arn, "bench-worker-ceiling")
    # The worker's own table and schema, as its environment names them.
    schema = from_environment(worker.spec.environment)
    statements = Statements(worker.spec.environment[ITEMS_TABLE_VARIABLE], ItemLayout(schema))
    now_ms = int(time.time() * 1000)
    calls = []
    for chunk in map(decode, bodies):
        values = ChunkValues(chunk, now_ms)
        requests = [
            statement_request(statements, values, row, chunk.version_of(row), insert=False)
            for row in latest_rows(chunk, schema.key_index)[0]
        ]
        calls += [requests[start : start + MAX_STATEMENTS] for start in range(0, len(requests), MAX_STATEMENTS)]
    batches = {
        "endpoint_url": stack.emulator.endpoint_url,
        "region": stack.target.region,
        "credentials": vars(credentials),
        "threads": worker.source.max_concurrency,
        "calls": calls,
    }
    child = subprocess.run(
        [sys.executable, "-c", f"import {__name__} as m; m.send_statements()"],
        input=json.dumps(batches),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"worker: the ceiling's statements failed:\n{child.stderr}")
    return float(child.stdout)


def send_statements() -> None:
    """In the child: the BatchExecuteStatement calls read from stdin, from their threads; prints the
    seconds they took. A statement that did not write fails the ceiling (it would not be the same work)."""
    import boto3
    from botocore.config import Config

    batches = json.load(sys.stdin)
    session = boto3.session.Session(
        aws_access_key_id=batches["credentials"]["access_key_id"],
        aws_secret_access_key=batches["credentials"]["secret_access_key"],
        aws_session_token=batches["credentials"]["session_token"],
        region_name=batches["region"],
    )
    config = Config(retries={"mode": "standard"}, max_pool_connections=batches["threads"])
    dynamodb = session.client("dynamodb", endpoint_url=batches["endpoint_url"], config=config)

    def send(call: list[dict[str, Any]]) -> list[str]:
        responses = dynamodb.batch_execute_statement(Statements=call)["Responses"]
        return [response["Error"].get("Code", "?") for response in responses if "Error" in response]

    with ThreadPoolExecutor(batches["threads"]) as pool:
        seconds, errors = timed(lambda: [code for codes in pool.map(send, batches["calls"]) for code in codes])
    if errors:
        raise SystemExit(f"{len(errors)} statements did not write: {sorted(set(errors))}")
    print(seconds)


# --- the benchmark -------------------------------------------------------------------------------


def run(ctx: Context) -> Result:
    default = measure_stack(ctx, "worker", USERS)
    wide = measure_stack(ctx, "worker-wide", WIDE, {"schema": WIDE_SCHEMA_DECLARATION})
    return {**default, "wide": wide}


def measure_stack(ctx: Context, name: str, dataset: Dataset, overrides: dict[str, Any] | None = None) -> Result:
    """The worker's figures on a local dev stack (`overrides` its settings) whose schema is `dataset`'s."""
    config = stack_config(STACK, overrides)
    if config.schema != dataset.schema:
        raise RuntimeError(f"{name}: the stack's schema is {config.schema.name}, not the input's {dataset.schema.name}")
    label = f"worker ({config.schema.name})"
    with local_stack(ctx, name, stack=STACK, overrides=overrides) as stack:
        worker = DeployedWorker.of(stack)
        rows = sizes(ctx, config, worker.source)
        concurrency = worker.source.max_concurrency
        ctx.progress(f"{label}: warming {concurrency} environments")
        warm_rows = concurrency * config.rows_per_message
        warm_up = queued_job(stack, config, dataset, warm_rows, "warm-up", first=0)
        worker.invoke_all(worker.events(warm_up.messages, per_event=1))  # one chunk per environment
        runs: dict[str, list[WorkerRun]] = {case: [] for case in CASES}
        ceilings = []
        for repeat in range(ctx.repeats):
            first = warm_rows + repeat * rows  # keys no other job of the run has
            for case in CASES:  # the same keys again: a newer upload of every row
                ctx.progress(f"{label}: {rows:,} rows, {case} table, run {repeat + 1} of {ctx.repeats}")
                job = queued_job(stack, config, dataset, rows, f"run-{repeat}-{case}", first=first)
                runs[case].append(run_worker(stack, worker, job))
            ceilings.append(statement_ceiling(stack, worker, job.bodies))
    return _result(config, worker, runs, ceilings)


def _case(run_list: list[WorkerRun], ceiling_rows_per_second: float) -> Result:
    """One case's figures from its median run (by wall time)."""
    median = sorted(run_list, key=lambda run: run.seconds)[len(run_list) // 2]
    rows, chunks = median.rows, median.chunks
    statements = median.items.get("BatchExecuteStatement", 0)
    calls_per_row = sum(median.calls.values()) / rows
    cpu_us_per_row = median.worker_cpu_seconds * 1e6 / rows
    rows_per_second = rows / median.seconds
    return {
        "invocations": median.invocations,
        "cold_starts": median.cold_starts,
        "worker_seconds": round(median.seconds, 3),
        "rows_per_second": round(rows_per_second, 1),
        "ratio_to_ceiling": round(rows_per_second / ceiling_rows_per_second, 3),
        "dynamodb_calls": median.calls,
        "dynamodb_items": median.items,
        "dynamodb_calls_per_row": {op: round(n / rows, 4) for op, n in median.calls.items()},
        "dynamodb_calls_per_row_total": round(calls_per_row, 4),
        "dynamodb_calls_per_chunk": {op: round(n / chunks, 3) for op, n in median.calls.items()},
        "statements_per_row": round(statements / rows, 4),
        "statement_bytes": round(median.statement_bytes / statements) if statements else 0,
        "per_chunk": {
            "worker_cpu_ms": round(median.worker_cpu_seconds * 1000 / chunks, 3),
            "local_cpu_ms": round(median.local_cpu_seconds * 1000 / chunks, 3),
            "billed_ms": round(median.billed_ms / chunks, 3),
        },
        "worker_cpu_us_per_row": round(cpu_us_per_row, 2),
        "samples": [
            {"seconds": round(run.seconds, 3), "rows_per_second": round(run.rows / run.seconds, 1)} for run in run_list
        ],
    }


def _result(
    config: PipelineConfig, worker: DeployedWorker, runs: dict[str, list[WorkerRun]], ceilings: list[float]
) -> Result:
    any_run = runs[CASES[0]][0]
    rows, chunks = any_run.rows, any_run.chunks
    ceiling_seconds = median_of(ceilings)
    ceiling_rows_per_second = rows / ceiling_seconds
    return {
        "stack": STACK,
        "schema": config.schema.name,
        "columns": len(config.schema.columns),
        "rows": rows,
        "chunks": chunks,
        "runs": len(ceilings),
        "rows_per_message": config.rows_per_message,
        "batch_size": worker.source.batch_size,
        "concurrency": worker.source.max_concurrency,
        "writers": WRITERS,
        "max_statements": MAX_STATEMENTS,
        "memory_mb": worker.spec.memory_mb,
        "cases": {case: _case(runs[case], ceiling_rows_per_second) for case in CASES},
        "ceiling_statements": rows,
        "ceiling_threads": worker.source.max_concurrency,
        "ceiling_seconds": round(ceiling_seconds, 3),
        "ceiling_rows_per_second": round(ceiling_rows_per_second, 1),
        "ceiling_samples_rows_per_second": [round(rows / seconds, 1) for seconds in ceilings],
    }


CASE_TEXT = {
    "fresh": "fresh table (every row an INSERT)",
    "present": "every email present, older (every row an UPDATE)",
}


def render(result: Result) -> str:
    cases = result["cases"]
    intro = (
        f"The worker's code in its function host (the {result['stack']} stack: up to {result['concurrency']}"
        f" invocations at once, {result['batch_size']} messages of {result['rows_per_message']} rows each;"
        f" per invocation, its hints read by BatchGetItem when they pay (a job's first chunk in an environment,"
        " and the next ones while its emails are found stored) and its rows written by PartiQL statements,"
        f" {result['max_statements']} to a BatchExecuteStatement, {result['writers']} calls in flight) writing"
        f" {result['rows']:,} rows in {result['chunks']} chunks packed by the producer's code, into the emulator;"
        f" median of {result['runs']} runs, warm environments. Each run writes one file twice: into a table"
        " without its emails (fresh), then a newer upload of the same file (every email present, older)."
        f" The ceiling is the same BatchExecuteStatement calls, the {result['ceiling_statements']:,} rows'"
        f" UPDATE statements ({result['max_statements']} a call, built by the worker's own `statement_request`,"
        " at the versions just stored, so every statement writes), sent directly with the worker's role from"
        f" {result['ceiling_threads']} threads, one per environment, of one process of their own (as the"
        " worker's environments are), in the same run. The emulator serves one request at a time (benchmark"
        " `local_mode`), so more threads would not raise it."
    )
    rates = table(
        ["table", "rows per second", "seconds", "÷ emulator ceiling", "cold starts"],
        [
            [
                CASE_TEXT[case],
                number(cases[case]["rows_per_second"]),
                number(cases[case]["worker_seconds"]),
                ratio(cases[case]["rows_per_second"], result["ceiling_rows_per_second"]),
                cases[case]["cold_starts"],
            ]
            for case in CASES
        ]
        + [
            [
                "emulator ceiling (UPDATEs only)",
                number(result["ceiling_rows_per_second"]),
                number(result["ceiling_seconds"]),
                "",
                "",
            ]
        ],
    )
    targets = table(
        ["target", *CASES, "verdict"],
        [
            [
                f"DynamoDB requests per row ≤ {TARGET_CALLS_PER_ROW['fresh']:g} fresh,"
                f" ≤ {TARGET_CALLS_PER_ROW['present']:g} present",
                *(number(cases[case]["dynamodb_calls_per_row_total"]) for case in CASES),
                verdict(all(cases[c]["dynamodb_calls_per_row_total"] <= TARGET_CALLS_PER_ROW[c] for c in CASES)),
            ],
            [
                f"worker CPU µs per row ≤ {TARGET_CPU_US_PER_ROW:g}",
                *(number(cases[case]["worker_cpu_us_per_row"]) for case in CASES),
                verdict(all(cases[c]["worker_cpu_us_per_row"] <= TARGET_CPU_US_PER_ROW for c in CASES)),
            ],
        ],
    )
    operations = sorted({op for case in CASES for op in cases[case]["dynamodb_calls_per_row"]})
    per_row = table(
        [
            "DynamoDB operation (worker role)",
            *(f"calls per row, {case}" for case in CASES),
            *(f"per chunk of {result['rows_per_message']}, {case}" for case in CASES),
        ],
        [
            [
                op,
                *(cases[case]["dynamodb_calls_per_row"].get(op, 0) for case in CASES),
                *(cases[case]["dynamodb_calls_per_chunk"].get(op, 0) for case in CASES),
            ]
            for op in operations
        ]
        + [
            [
                "total",
                *(cases[case]["dynamodb_calls_per_row_total"] for case in CASES),
                *(round(cases[case]["dynamodb_calls_per_row_total"] * result["rows_per_message"], 3) for case in CASES),
            ]
        ],
    )
    statements = (
        "Statements per row: "
        + ", ".join(
            f"{case} {number(cases[case]['statements_per_row'])} ({cases[case]['statement_bytes']:,} bytes each)"
            for case in CASES
        )
        + "; a statement's bytes are its BatchExecuteStatement's body ÷ its statements (text, parameters, types)."
    )
    costs = table(
        ["per chunk", *(f"ms, {case}" for case in CASES), "what it is"],
        [
            [label, *(cases[case]["per_chunk"][key] for case in CASES), text]
            for key, label, text in (
                ("worker_cpu_ms", "worker CPU", "the worker's processes (/proc): its own work, no emulator"),
                ("local_cpu_ms", "local mode CPU", "this process meanwhile: the emulator serving it"),
                ("billed_ms", "billed duration", "REPORT lines: the worker's wall time, waits included"),
            )
        ],
    )
    sections = [intro, rates, targets, per_row, statements, costs]
    if "wide" in result:  # results from before issue 21 measured the default schema only
        sections.append(_wide(result))
    return "\n\n".join(sections)


def _wide(result: Result) -> str:
    wide = result["wide"]
    intro = (
        f"The same measurement on a wide schema, in the same run: the {wide['stack']} stack deployed with its"
        f" `schema` setting set to `{wide['schema']}` (`bench/inputs.py`: {wide['columns']} columns of every type,"
        f" a text key), in a stack of its own, writing {wide['rows']:,} rows in {wide['chunks']} chunks, median of"
        f" {wide['runs']} runs; its ceiling is measured as the default's, on its own stack and rows (a wide row's"
        " statement carries more attributes). The targets above apply to the default schema only; the wide"
        " schema's figures are reported, not judged."
    )
    figures = table(
        [
            "schema",
            "rows",
            "chunks",
            *(f"rows per second, {case}" for case in CASES),
            "ceiling rows per second",
            "÷ its ceiling, fresh",
            *(f"worker CPU µs per row, {case}" for case in CASES),
            *(f"DynamoDB requests per row, {case}" for case in CASES),
            "statement bytes, fresh",
        ],
        [
            [
                schema_label(measured, role),
                f"{measured['rows']:,}",
                measured["chunks"],
                *(number(measured["cases"][case]["rows_per_second"]) for case in CASES),
                number(measured["ceiling_rows_per_second"]),
                ratio(measured["cases"]["fresh"]["rows_per_second"], measured["ceiling_rows_per_second"]),
                *(number(measured["cases"][case]["worker_cpu_us_per_row"]) for case in CASES),
                *(number(measured["cases"][case]["dynamodb_calls_per_row_total"]) for case in CASES),
                f"{measured['cases']['fresh']['statement_bytes']:,}",
            ]
            for measured, role in ((result, "default"), (wide, "wide"))
        ],
    )
    return f"{intro}\n\n{figures}"


BENCHMARK = Benchmark(name="worker", title="Worker: writing chunks into DynamoDB", run=run, render=render)
