"""Projection: how long a 1,000,000-row file would take on AWS, stage by stage, for dev and prod.

Nothing is measured here. The inputs are the worker benchmark's per-chunk cost and DynamoDB calls on
a fresh table (`ctx.results["worker"]["cases"]["fresh"]`: a new file's emails are new to the table),
the producer's CPU per row (`ctx.results["producer_cpu"]`, when it ran), each stack's settings as the
program reads them (`Pulumi.<stack>.yaml` through `infra.config`), and AWS's documented limits, each a
named constant below with the page it comes from.

The stages overlap (the producer sends chunks while the workers write earlier ones), so the file
takes as long as its slowest stage allows: 1,000,000 rows ÷ the lowest rows per second of any stage.
Left out, and small next to minutes: the producer's validation pass before its first chunk, the
event source mapping's ramp to its maximum concurrency, cold starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bench.core import Benchmark, Context, Result, number, table, verdict
from bench.producer_cpu import stack_config
from infra.config import PipelineConfig

ROWS = 1_000_000
STACKS = ("dev", "prod")
USERS_TABLE = "DynamoDB users table"
TARGET_STACK, TARGET_MINUTES = "dev", 5
"""Issue 18's target: the dev stack's 1M rows bound by the users table, not by its worker, in ≤ 5 minutes."""

# --- AWS's documented limits -------------------------------------------------------------------------

LAMBDA_MEMORY_URL = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
LAMBDA_MB_PER_VCPU = 1769
""""At 1,769 MB, a function has the equivalent of one vCPU": below it, a function gets that share of one."""

LAMBDA_QUOTAS_URL = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
LAMBDA_ACCOUNT_CONCURRENCY = 1000
"""Concurrent executions per Region, by default (shared by every function of the account)."""

SQS_SCALING_URL = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"
SQS_MAPPING_START_BATCHES, SQS_MAPPING_RAMP_PER_MINUTE = 5, 300
"""The mapping starts with five concurrent batches and adds up to 300 per minute (to its maximum concurrency)."""

SQS_STANDARD_URL = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html"
"""Standard queues support "a nearly unlimited number of API calls per second, per API action"."""

DYNAMODB_ON_DEMAND_URL = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html"
NEW_ON_DEMAND_TABLE_WRITES_PER_SECOND = 4000
"""A new on-demand table sustains up to 4,000 writes (and 12,000 reads) per second before it scales
(it then serves double its previous peak at once). One write request unit writes an item of up to 1 KB."""
WRITE_UNIT_BYTES = 1024

DYNAMODB_PARTITION_URL = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html"
)
PARTITION_WRITE_UNITS_PER_SECOND = 1000
"""Each partition is limited to 1,000 write units (and 3,000 read units) per second, whatever the table's."""

DYNAMODB_TRANSACTIONS_URL = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html"
TRANSACTION_WRITE_FACTOR = 2
"""A transactional write costs two underlying writes per item (prepare and commit)."""
DYNAMODB_CONDITIONAL_URL = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html"
    "#WorkingWithItems.ConditionalUpdate"
)
FAILED_CONDITION_WRITE_UNITS = 1
"""A conditional write whose condition fails still consumes write capacity (at least one unit): the job's
finish attempt fails for every chunk but the last."""
TRANSACTION_ITEMS = 2
"""The worker's progress transaction: the chunk's marker and the job's counters (handlers/worker/progress.py)."""

# --- assumptions (not limits: stated so that they can be argued with) ----------------------------------

DYNAMODB_LATENCY_MS = 10.0
"""One DynamoDB request as a Lambda in the same Region sees it: DynamoDB promises "single-digit millisecond"
latency (DYNAMODB_ON_DEMAND_URL); 10 ms rounds that up to include the network and TLS."""
ASSUMPTIONS = (
    "A core of this machine does the work of one Lambda vCPU; a function below 1,769 MB gets that fraction"
    " of it, so its CPU time per row grows by 1,769 ÷ memory.",
    f"Every DynamoDB request takes {DYNAMODB_LATENCY_MS:g} ms, a batch as long as a single write; a chunk's"
    " requests that wait on one another (its GetItem, its rounds of concurrent BatchGetItems, then of concurrent"
    " BatchExecuteStatements, its transaction, its finish attempt) add up, and its CPU time is added to them"
    " (no overlap: a slower, safer figure).",
    "A statement writes as many 1 KB write units as its bytes on the wire (statement text, parameters and"
    " types: more than the item it writes) fill, from the worker benchmark's run on a fresh table.",
    "The users table is new, or has not yet served more than a new on-demand table does (4,000 writes/s).",
)


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline and the rate its binding limit allows."""

    stage: str
    limit: str
    rows_per_second: float | None
    """None: not a limit at this scale (nearly unlimited), or not measured in this run."""
    source: str
    arithmetic: str


# --- the stages --------------------------------------------------------------------------------------


def _link(label: str, url: str) -> str:
    return f"[{label}]({url})"


def cpu_share(memory_mb: int) -> float:
    """The fraction of one vCPU a function of `memory_mb` gets (at most one: more memory buys more
    vCPUs, which a single-threaded Python loop does not use)."""
    return min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)


def producer_stage(config: PipelineConfig, producer: Result | None) -> Stage:
    limit = f"one invocation at a time per file, {config.producer.memory_mb} MB"
    if producer is None:
        return Stage("producer", limit, None, "not measured in this run (producer_cpu did not run)", "")
    share = cpu_share(config.producer.memory_mb)
    us_per_row = producer["cpu_us_per_row"] / share
    return Stage(
        "producer",
        limit,
        1e6 / us_per_row,
        f"producer_cpu (measured); {_link('Lambda memory and CPU', LAMBDA_MEMORY_URL)}",
        f"{producer['cpu_us_per_row']:.2f} µs CPU per row ÷ {share:.3f} vCPU = {us_per_row:.1f} µs per row",
    )


def queue_stage() -> Stage:
    source = _link("SQS standard queues", SQS_STANDARD_URL)
    return Stage("SQS standard queue", "nearly unlimited API calls per second", None, source, "")


def fresh_run(worker: Result) -> Result:
    """The worker benchmark's run on a table without the file's emails: a new file's first upload."""
    fresh: Result = worker["cases"]["fresh"]
    return fresh


def worker_stage(config: PipelineConfig, worker: Result) -> Stage:
    rows = config.rows_per_message
    fresh = fresh_run(worker)
    share = cpu_share(config.worker.memory_mb)
    cpu_ms = fresh["worker_cpu_us_per_row"] / 1000 * rows / share
    per_chunk = fresh["dynamodb_calls_per_chunk"]
    waits = sequential_requests(per_chunk, worker["writers"])
    chunk_ms = cpu_ms + waits * DYNAMODB_LATENCY_MS
    concurrency = min(config.worker_max_concurrency, LAMBDA_ACCOUNT_CONCURRENCY)
    return Stage(
        "worker (Lambda)",
        f"{concurrency} concurrent invocations (maximumConcurrency), {config.worker.memory_mb} MB",
        concurrency * rows / (chunk_ms / 1000),
        f"worker (measured); {_link('Lambda memory and CPU', LAMBDA_MEMORY_URL)};"
        f" {_link('Lambda quotas', LAMBDA_QUOTAS_URL)}",
        f"a chunk of {rows} rows (fresh table): {fresh['worker_cpu_us_per_row']:.0f} µs CPU per row ÷ {share:.3f}"
        f" vCPU ="
        f" {cpu_ms:.0f} ms, + {waits} requests in sequence × {DYNAMODB_LATENCY_MS:g} ms = {chunk_ms:.0f} ms;"
        f" × {concurrency} at once",
    )


BATCHES = ("BatchGetItem", "BatchExecuteStatement")
"""The worker's calls that go out `writers` at a time: its hints' reads, then its statements' calls."""


def sequential_requests(per_chunk: Mapping[str, float], writers: int) -> int:
    """Requests of one chunk (calls by operation) that wait on one another: its BatchGetItems in rounds
    of the worker's `writers` calls in flight, then its BatchExecuteStatements likewise, and its other
    calls one after the other. A fraction of a call (an average over chunks) rounds up."""
    rounds = sum(math.ceil(round(per_chunk.get(operation, 0), 6) / writers) for operation in BATCHES)
    others = sum(calls for operation, calls in per_chunk.items() if operation not in BATCHES)
    return rounds + math.ceil(round(others, 6))


def users_table_stage(config: PipelineConfig, worker: Result) -> Stage:
    fresh = fresh_run(worker)
    statements_per_row = fresh["statements_per_row"]
    units_per_statement = max(1, math.ceil(fresh["statement_bytes"] / WRITE_UNIT_BYTES))
    if config.table_billing_mode == "PAY_PER_REQUEST":
        capacity, limit = NEW_ON_DEMAND_TABLE_WRITES_PER_SECOND, "new on-demand table"
        source = _link("DynamoDB on-demand: initial throughput", DYNAMODB_ON_DEMAND_URL)
    else:
        capacity, limit, source = config.table_write_capacity, "provisioned (tableWriteCapacity)", "the stack's setting"
    return Stage(
        USERS_TABLE,
        f"{capacity:,} write units/s, {limit}",
        capacity / (statements_per_row * units_per_statement),
        source,
        f"{capacity:,} ÷ ({statements_per_row:.3f} statements per row on a fresh table × {units_per_statement}"
        f" unit{'s' if units_per_statement > 1 else ''} per statement of {fresh['statement_bytes']:,} bytes)",
    )


def job_partition_stage(config: PipelineConfig, worker: Result) -> Stage:
    """Every write of a job's progress lands on one partition key (the job id): its marker and counters."""
    per_chunk = fresh_run(worker)["dynamodb_calls_per_chunk"]
    units = (
        per_chunk.get("TransactWriteItems", 0) * TRANSACTION_ITEMS * TRANSACTION_WRITE_FACTOR
        + per_chunk.get("UpdateItem", 0) * FAILED_CONDITION_WRITE_UNITS
    )
    return Stage(
        "DynamoDB jobs table (one job's partition)",
        f"{PARTITION_WRITE_UNITS_PER_SECOND:,} write units/s per partition",
        PARTITION_WRITE_UNITS_PER_SECOND / units * config.rows_per_message,
        f"{_link('partition limits', DYNAMODB_PARTITION_URL)}; {_link('transactions', DYNAMODB_TRANSACTIONS_URL)};"
        f" {_link('conditional writes', DYNAMODB_CONDITIONAL_URL)}",
        f"{units:g} write units per chunk (a 2-item transaction × {TRANSACTION_WRITE_FACTOR}, a finish attempt):"
        f" {PARTITION_WRITE_UNITS_PER_SECOND:,} ÷ {units:g} chunks/s × {config.rows_per_message} rows",
    )


# --- the benchmark -----------------------------------------------------------------------------------


def project(config: PipelineConfig, worker: Result, producer: Result | None) -> dict[str, Any]:
    stages = [
        producer_stage(config, producer),
        queue_stage(),
        worker_stage(config, worker),
        users_table_stage(config, worker),
        job_partition_stage(config, worker),
    ]
    binding = min((s for s in stages if s.rows_per_second is not None), key=lambda s: s.rows_per_second or 0)
    assert binding.rows_per_second is not None
    return {
        "settings": {
            "rows_per_message": config.rows_per_message,
            "worker_max_concurrency": config.worker_max_concurrency,
            "worker_memory_mb": config.worker.memory_mb,
            "producer_memory_mb": config.producer.memory_mb,
            "table_billing_mode": config.table_billing_mode,
        },
        "stages": [_rounded(asdict(stage)) for stage in stages],
        "binding": binding.stage,
        "rows_per_second": round(binding.rows_per_second, 1),
        "minutes": round(ROWS / binding.rows_per_second / 60, 1),
        "ramp_seconds": round(ramp_seconds(config.worker_max_concurrency), 1),
    }


def ramp_seconds(concurrency: int) -> float:
    """How long the event source mapping takes to reach `concurrency` concurrent batches."""
    return max(0, concurrency - SQS_MAPPING_START_BATCHES) / SQS_MAPPING_RAMP_PER_MINUTE * 60


def _rounded(stage: dict[str, Any]) -> dict[str, Any]:
    rate = stage["rows_per_second"]
    return {**stage, "rows_per_second": None if rate is None else round(rate, 1)}


def run(ctx: Context) -> Result:
    worker = ctx.results.get("worker")
    if worker is None:
        raise SystemExit("projection reads the worker's results: run it too (--only worker --only projection)")
    producer = ctx.results.get("producer_cpu")
    return {
        "rows": ROWS,
        "producer_measured": producer is not None,
        "latency_ms": DYNAMODB_LATENCY_MS,
        "assumptions": list(ASSUMPTIONS),
        "statement_bytes": fresh_run(worker)["statement_bytes"],
        "target": {"stack": TARGET_STACK, "minutes": TARGET_MINUTES},
        "stacks": {stack: project(stack_config(stack), worker, producer) for stack in STACKS},
    }


def render(result: Result) -> str:
    sections = [
        _verdict_line(result),
        f"No measurement of its own: the worker's and producer's figures measured above, each stack's settings,"
        f" and AWS's documented limits. For {result['rows']:,} rows, the slowest stage sets the time (the stages"
        " overlap); it is in bold.",
    ]
    for stack, projected in result["stacks"].items():
        sections.append(_stack_section(stack, projected))
    sections.append(
        "Assumptions:\n\n"
        + "\n".join(f"- {text}" for text in result["assumptions"])
        + f"\n- The worker's statements measured {result['statement_bytes']:,} bytes each on a fresh table"
        " (a BatchExecuteStatement's body ÷ its statements)."
    )
    if not result["producer_measured"]:
        sections.append("The producer's rate is **not measured in this run** (producer_cpu did not run).")
    return "\n\n".join(sections)


def _verdict_line(result: Result) -> str:
    """The target: the stack's 1M rows bound by the users table (not by the worker), within the minutes."""
    target = result["target"]
    projected = result["stacks"][target["stack"]]
    met = projected["binding"] == USERS_TABLE and projected["minutes"] <= target["minutes"]
    return table(
        ["target", "projected", "verdict"],
        [
            [
                f"{target['stack']} stack, {result['rows']:,} rows: bound by the users table, ≤ {target['minutes']:g}"
                " minutes",
                f"{projected['minutes']:g} minutes, bound by {projected['binding']}",
                verdict(met),
            ]
        ],
    )


def _stack_section(stack: str, projected: Mapping[str, Any]) -> str:
    rows = []
    for stage in projected["stages"]:
        rate = stage["rows_per_second"]
        shown = number(rate) if rate is not None else "not measured" if stage["stage"] == "producer" else "—"
        cells = [stage["stage"], stage["limit"], shown, stage["source"]]
        if stage["stage"] == projected["binding"]:
            cells = [f"**{cell}**" for cell in cells]
        rows.append(cells)
    arithmetic = "\n".join(f"- {s['stage']}: {s['arithmetic']}" for s in projected["stages"] if s["arithmetic"])
    settings = projected["settings"]
    return "\n\n".join(
        [
            f"**{stack}** ({settings['rows_per_message']} rows per message, worker {settings['worker_memory_mb']} MB"
            f" × {settings['worker_max_concurrency']}, producer {settings['producer_memory_mb']} MB): "
            f"**{projected['minutes']:g} minutes**, bound by {projected['binding']} at"
            f" {number(projected['rows_per_second'])} rows/s.",
            table(["stage", "limit", "rows/s it allows", "source"], rows),
            arithmetic + f"\n- {_ramp_text(settings['worker_max_concurrency'], projected['ramp_seconds'])}",
        ]
    )


def _ramp_text(concurrency: int, seconds: float) -> str:
    scaling = _link("SQS event source scaling", SQS_SCALING_URL)
    if not seconds:
        return f"the event source mapping starts at {SQS_MAPPING_START_BATCHES} concurrent batches ({scaling})."
    return f"the event source mapping reaches {concurrency} batches at once {seconds:g} s in ({scaling}): not counted."


BENCHMARK = Benchmark(name="projection", title="Projected time for 1M rows on AWS", run=run, render=render)
