"""Worker: how fast the worker writes chunks into DynamoDB, against the emulator's own write ceiling.

The worker runs as local mode runs it: its archive in its function host's processes, with its role's
credentials, against the in-process emulator. Its input is what the producer sends: a job created
with the producer's own `JobStore`, its CSV packed into chunks by the producer's own `run_segment`
(the messages, bodies and MAC attributes, are captured instead of sent), then marked queued, so the last chunk written
finishes the job as it would on AWS. Each batch of `workerBatchSize` messages becomes one SQS event
(`local.esm.sqs_record`, the records the event source mapping builds), and the worker's host is
invoked with them from as many threads as the mapping's maximum concurrency. Nothing else runs: the
figure is the worker's, not the producer's or the queue's.

The emulator's requests are counted by caller role, so the worker's DynamoDB calls per row and per
chunk are counted, not inferred. The CPU time of the worker's processes (read from /proc) is the
worker's own cost per chunk, the emulator's time excluded; the projection scales it to a Lambda.

The ceiling is the best any worker could do on this emulator: the same conditional PutItems (the
worker's items and `LATEST_WINS`) issued directly with the worker role's credentials from as many
threads as the worker's concurrency, in a process of their own, measured in the same run.
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

from bench.core import Benchmark, Context, Result, median_of, number, ratio, table, timed
from bench.inputs import csv_bytes
from bench.producer_cpu import REMAINING_MS, producer_settings, stack_config
from bench.stacks import BenchStack, CpuSpan, LogSpan, local_stack
from handlers.common.chunks import decode
from handlers.common.jobs import COMPLETE, job_id_for, job_key
from handlers.common.signing import SECRET_ARN_VARIABLE, JobKeys
from handlers.producer.ingest import Clock, Services, run_segment
from handlers.producer.job_store import JobStore, Upload
from handlers.worker.writes import LATEST_WINS, WRITERS, latest_rows, latest_wins_values, user_item
from infra.config import PipelineConfig
from local.esm import sqs_record
from local.functions import FunctionHost, InvocationResult
from local.project import REPO_ROOT
from local.registry import FunctionSpec, QueueEventSource

STACK = "dev"
# Where the benchmark's CSVs are put: outside the uploads prefix, so no S3 notification starts the
# producer on them (the benchmark runs the producer's code itself, into a capture).
BENCH_PREFIX = "bench/worker/"


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


def queued_job(stack: BenchStack, config: PipelineConfig, rows: int, name: str) -> QueuedJob:
    """A job of `rows` seeded rows: created, parsed into chunks and marked queued by the producer's code."""
    target, data = stack.target, csv_bytes(rows)
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
    put_bytes: int
    """The request bodies of its PutItems (an item on the wire, type tags and condition included)."""


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
        put_bytes=ours["PutItem"].body_bytes if "PutItem" in ours else 0,
    )


def put_ceiling(stack: BenchStack, worker: DeployedWorker, bodies: Sequence[str]) -> float:
    """Seconds to put the rows of `bodies` as the worker does (its items, its condition, its role),
    from as many threads as the worker's concurrency. The items carry versions already stored, so
    every condition holds and every put writes, as the worker's first delivery does.

    The threads run in a process of their own, as the worker's do: in this one they would share the
    GIL with the emulator they measure, and the ceiling would be the client's, not the emulator's.
    A plain child (`python -c`), not multiprocessing, which would re-import the caller's main module."""
    credentials = stack.emulator.assume_role(worker.spec.role_arn, "bench-worker-ceiling")
    now_ms = int(time.time() * 1000)
    puts = {
        "endpoint_url": stack.emulator.endpoint_url,
        "region": stack.target.region,
        "credentials": vars(credentials),
        "table": stack.target.outputs["usersTableName"],
        "threads": worker.source.max_concurrency,
        "requests": [
            {
                "Item": user_item(chunk, row),
                "ExpressionAttributeValues": latest_wins_values(chunk.version_of(row), now_ms),
            }
            for chunk in map(decode, bodies)
            for row in latest_rows(chunk)[0]
        ],
    }
    child = subprocess.run(
        [sys.executable, "-c", f"import {__name__} as m; m.send_puts()"],
        input=json.dumps(puts),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"worker: the ceiling's puts failed:\n{child.stderr}")
    return float(child.stdout)


def send_puts() -> None:
    """In the child: the puts read from stdin, from their threads; prints the seconds they took."""
    import boto3
    from botocore.config import Config

    puts = json.load(sys.stdin)
    session = boto3.session.Session(
        aws_access_key_id=puts["credentials"]["access_key_id"],
        aws_secret_access_key=puts["credentials"]["secret_access_key"],
        aws_session_token=puts["credentials"]["session_token"],
        region_name=puts["region"],
    )
    config = Config(retries={"mode": "standard"}, max_pool_connections=puts["threads"])
    dynamodb = session.client("dynamodb", endpoint_url=puts["endpoint_url"], config=config)

    def put(request: dict[str, Any]) -> None:
        dynamodb.put_item(TableName=puts["table"], ConditionExpression=LATEST_WINS, **request)

    with ThreadPoolExecutor(puts["threads"]) as pool:
        seconds, _ = timed(lambda: list(pool.map(put, puts["requests"])))
    print(seconds)


# --- the benchmark -------------------------------------------------------------------------------


def run(ctx: Context) -> Result:
    config = stack_config(STACK)
    with local_stack(ctx, "worker", stack=STACK) as stack:
        worker = DeployedWorker.of(stack)
        rows = sizes(ctx, config, worker.source)
        concurrency = worker.source.max_concurrency
        ctx.progress(f"worker: warming {concurrency} environments")
        warm_up = queued_job(stack, config, concurrency * config.rows_per_message, "warm-up")
        worker.invoke_all(worker.events(warm_up.messages, per_event=1))  # one chunk per environment
        runs, ceilings = [], []
        for repeat in range(ctx.repeats):
            ctx.progress(f"worker: {rows:,} rows, run {repeat + 1} of {ctx.repeats}")
            job = queued_job(stack, config, rows, f"run-{repeat}")
            runs.append(run_worker(stack, worker, job))
            ceilings.append(put_ceiling(stack, worker, job.bodies))
    return _result(config, worker, runs, ceilings)


def _result(config: PipelineConfig, worker: DeployedWorker, runs: list[WorkerRun], ceilings: list[float]) -> Result:
    median = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    rows, chunks = median.rows, median.chunks
    puts = median.calls.get("PutItem", 0)
    ceiling_seconds = median_of(ceilings)
    rows_per_second = rows / median.seconds
    ceiling_rows_per_second = puts / ceiling_seconds
    return {
        "stack": STACK,
        "rows": rows,
        "chunks": chunks,
        "runs": len(runs),
        "rows_per_message": config.rows_per_message,
        "batch_size": worker.source.batch_size,
        "concurrency": worker.source.max_concurrency,
        "writers": WRITERS,
        "memory_mb": worker.spec.memory_mb,
        "invocations": median.invocations,
        "cold_starts": median.cold_starts,
        "worker_seconds": round(median.seconds, 3),
        "rows_per_second": round(rows_per_second, 1),
        "dynamodb_calls": median.calls,
        "dynamodb_calls_per_row": {op: round(n / rows, 4) for op, n in median.calls.items()},
        "dynamodb_calls_per_chunk": {op: round(n / chunks, 3) for op, n in median.calls.items()},
        "put_request_bytes": round(median.put_bytes / puts) if puts else 0,
        "ceiling_puts": puts,
        "ceiling_threads": worker.source.max_concurrency,
        "ceiling_seconds": round(ceiling_seconds, 3),
        "ceiling_rows_per_second": round(ceiling_rows_per_second, 1),
        "ratio_to_ceiling": round(rows_per_second / ceiling_rows_per_second, 3),
        "per_chunk": {
            "worker_cpu_ms": round(median.worker_cpu_seconds * 1000 / chunks, 3),
            "local_cpu_ms": round(median.local_cpu_seconds * 1000 / chunks, 3),
            "billed_ms": round(median.billed_ms / chunks, 3),
        },
        "worker_cpu_us_per_row": round(median.worker_cpu_seconds * 1e6 / rows, 2),
        "samples": [
            {"seconds": round(run.seconds, 3), "rows_per_second": round(run.rows / run.seconds, 1)} for run in runs
        ],
        "ceiling_samples_rows_per_second": [round(puts / seconds, 1) for seconds in ceilings],
    }


def render(result: Result) -> str:
    calls = result["dynamodb_calls_per_row"]
    per_chunk = result["per_chunk"]
    intro = (
        f"The worker's code in its function host (the {result['stack']} stack: up to {result['concurrency']}"
        f" invocations at once, {result['batch_size']} messages of {result['rows_per_message']} rows each,"
        f" {result['writers']} concurrent PutItems per invocation) writing {result['rows']:,} rows in"
        f" {result['chunks']} chunks ({result['invocations']} invocations) packed"
        f" by the producer's code, into the emulator; median of {result['runs']} runs, warm environments"
        f" ({result['cold_starts']} cold starts in the median run). The ceiling is the same"
        f" {result['ceiling_puts']:,} conditional PutItems (the worker's items and condition) sent directly with the"
        f" worker's role from {result['ceiling_threads']} threads, one per environment, of one process of their own"
        " (as the worker's environments are), in the same run. The emulator serves one request at a time"
        " (benchmark `local_mode`: 5 threads put at about the rate of 1), so more threads would not raise it."
    )
    rates = table(
        ["measure", "worker", "emulator ceiling", "ratio"],
        [
            [
                "rows per second",
                number(result["rows_per_second"]),
                number(result["ceiling_rows_per_second"]),
                ratio(result["rows_per_second"], result["ceiling_rows_per_second"]),
            ],
            ["seconds", number(result["worker_seconds"]), number(result["ceiling_seconds"]), ""],
        ],
    )
    operations = table(
        ["DynamoDB operation (worker role)", "calls per row", f"calls per chunk of {result['rows_per_message']}"],
        [[op, calls[op], result["dynamodb_calls_per_chunk"][op]] for op in sorted(calls)],
    )
    costs = table(
        ["per chunk", "ms", "what it is"],
        [
            ["worker CPU", per_chunk["worker_cpu_ms"], "the worker's processes (/proc): its own work, no emulator"],
            ["local mode CPU", per_chunk["local_cpu_ms"], "this process meanwhile: the emulator serving it"],
            ["billed duration", per_chunk["billed_ms"], "REPORT lines: the worker's wall time, waits included"],
        ],
    )
    put_size = f"A PutItem request (item, condition and types, as sent) is {result['put_request_bytes']:,} bytes."
    return "\n\n".join([intro, rates, operations, put_size, costs])


BENCHMARK = Benchmark(name="worker", title="Worker: writing chunks into DynamoDB", run=run, render=render)
