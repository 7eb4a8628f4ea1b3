"""Producer CPU: how fast the producer turns a CSV file into SQS message bodies, with no network.

The producer's own code runs unchanged: `handlers.producer.ingest.run_segment`, the function the
handler calls for each invocation, with both of its passes (the validation read, then parsing,
validating, packing and handing chunks to the sender). Its seam is `Services`, the clients it is
given: here an S3 that serves the file's bytes from memory and an SQS that discards what it is
sent, so the figure is the producer's CPU and nothing else. The settings (rows per message, message
budget) are the dev stack's.

The reference is `csv.reader` iterating the same bytes in the same run: the floor for a parser
written in Python. The target is a fifth of its rate (a third is the aim), since the producer reads
the file twice and does per row what the reference does not (checks, normalising, JSON).

The same run measures the producer on the wide schema too (`bench.inputs.WIDE`: 20 columns of every
type), with its reference, on fewer rows (its rows are three times as long and each costs more; the
full run stays short). The target is the default schema's only: a wide row's cost is reported beside
it, to show what the schema's width costs, not judged.
"""

from __future__ import annotations

import cProfile
import csv
import gc
import io
import pstats
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.core import Benchmark, Context, Result, cpu_timed, median_of, number, ratio, table, timed, verdict
from bench.inputs import USERS, WIDE, WIDE_SCHEMA_DECLARATION
from handlers.common.signing import JobKeys
from handlers.producer import ingest as producer_ingest
from handlers.producer.ingest import Clock, SegmentResult, Services, Settings, run_segment
from handlers.producer.job_store import VALIDATE, Checkpoint
from handlers.producer.packing import Budgets
from infra.config import PipelineConfig, load_config
from local.project import PROJECT, REPO_ROOT, stack_settings

T = TypeVar("T")

TARGET_RATIO = 0.2
"""The producer's rows per second, as a fraction of `csv.reader`'s over the same bytes (issue 18's target)."""
AIM_RATIO = 1 / 3
"""What the producer aims at beyond the target: below it, a run is profiled to say where the time goes."""
PROFILE_ENTRIES = 8
# An invocation's remaining time, as the Lambda context would give it: ample, so the segment never
# checkpoints and one call reads the whole file, as the producer does a file that fits its timeout.
REMAINING_MS = 15 * 60 * 1000
# As app.py sends: a few SendMessageBatch calls in flight on a small pool.
SEND_THREADS = 4


# --- the producer's clients, in memory ---------------------------------------------------------------


class _MemoryS3:
    """GetObject of one object held in memory, from the range's start; report parts are read and dropped."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def get_object(self, *, Range: str, **_object: Any) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        body = io.BytesIO(self._data)  # shares the bytes: no copy
        body.seek(int(Range.removeprefix("bytes=").split("-")[0]))
        return {"Body": body}

    def put_object(self, *, Body: Any, **_object: Any) -> dict[str, Any]:  # noqa: N803
        while Body.read(64 * 1024):
            pass
        return {}


class _SinkSqs:
    """SendMessageBatch that accepts every entry and keeps only the counts (called from the send pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages = 0
        self.body_bytes = 0

    def send_message_batch(self, *, Entries: list[dict[str, str]], **_queue: Any) -> dict[str, Any]:  # noqa: N803
        size = sum(len(entry["MessageBody"]) for entry in Entries)
        with self._lock:
            self.messages += len(Entries)
            self.body_bytes += size
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


@dataclass(frozen=True)
class _Pass:
    """One run of the producer over the file."""

    segment: SegmentResult
    messages: int
    body_bytes: int


def stack_config(stack: str = "dev", overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """The stack's validated settings, as the program reads them from `Pulumi.<stack>.yaml`, with
    `overrides` (short keys) in place of its own, as `local_stack(overrides=…)` deploys it."""
    raw = stack_settings(stack) | {f"{PROJECT}:{key}": value for key, value in (overrides or {}).items()}
    return load_config(lambda key: raw.get(f"{PROJECT}:{key}"))


def producer_settings(config: PipelineConfig) -> Settings:
    """What the producer's environment would hold (infra/producer.py), with the sinks' names."""
    return Settings(
        queue_url="sink",
        upload_bucket="memory",
        reports_prefix=config.reports_prefix,
        rows_per_message=config.rows_per_message,
        budgets=Budgets.for_queue(config.max_message_bytes),
        max_upload_bytes=config.max_upload_bytes,
        schema=config.schema,
    )


def new_job(size: int) -> dict[str, Any]:
    """A job record as the producer finds it after creating it (`JobStore.create`)."""
    return {
        "jobId": "0" * 32,
        "bucket": "memory",
        "key": "uploads/users.csv",
        "versionId": "1",
        "objectSize": size,
        "uploadedAtMs": 1_764_300_000_000,
        "sequencer": "",
        "checkpoint": Checkpoint(VALIDATE, 0, 0, 0, 0, 0).to_item(),
    }


def produce(data: bytes, settings: Settings, executor: ThreadPoolExecutor) -> _Pass:
    """The whole file through `run_segment`, as one invocation with time to spare would run it."""
    sqs = _SinkSqs()
    # A stack's secret as the program draws it (64 characters): the key is derived once per job.
    services = Services(_MemoryS3(data), sqs, executor, JobKeys(lambda: "s" * 64))
    segment = run_segment(new_job(len(data)), services, settings, Clock(lambda: REMAINING_MS))
    return _Pass(segment, sqs.messages, sqs.body_bytes)


def csv_reader_rows(data: bytes) -> int:
    """The reference: every record of the file through `csv.reader`, doing nothing with it."""
    return sum(1 for _record in csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")))


@dataclass(frozen=True)
class _Timing:
    seconds: float
    cpu_seconds: float


def measure(work: Callable[[], T], repeats: int) -> tuple[_Timing, T]:
    """Median wall and CPU seconds of `repeats` runs of `work` (each from a collected heap), and its last value."""
    walls, cpus, values = [], [], []
    for _ in range(repeats):
        gc.collect()
        cpu, (wall, value) = cpu_timed(lambda: timed(work))
        walls.append(wall)
        cpus.append(cpu)
        values.append(value)
    return _Timing(median_of(walls), median_of(cpus)), values[-1]


@dataclass(frozen=True)
class Profile:
    """Where one profiled run of `work` spent its time (cProfile: the calling thread only)."""

    stats: pstats.Stats

    @classmethod
    def of(cls, work: Callable[[], Any]) -> Profile:
        profile = cProfile.Profile()
        profile.runcall(work)
        return cls(pstats.Stats(profile))

    def top(self, count: int = PROFILE_ENTRIES) -> list[dict[str, Any]]:
        """The `count` functions with the most time of their own."""
        entries = self.stats.stats  # {(file, line, name): (primitive calls, calls, own, cumulative, callers)}
        ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:count]
        return [
            {"function": _where(*where), "calls": calls, "tottime_s": round(own, 4), "cumtime_s": round(total, 4)}
            for where, (_primitive, calls, own, total, _callers) in ranked
        ]

    def cumulative(self, function: Callable[..., Any]) -> float:
        """Seconds spent in `function` and what it called."""
        code = function.__code__
        return self.stats.stats[(code.co_filename, code.co_firstlineno, code.co_name)][3]


def _where(file: str, line: int, name: str) -> str:
    path = Path(file)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name
    return f"{name} ({shown}:{line})" if line else name


# --- the benchmark -------------------------------------------------------------------------------------


def run(ctx: Context) -> Result:
    rows = ctx.pick(tiny=2_000, quick=100_000, full=1_000_000)
    # A wide row is about 200 bytes and 20 cells: 200,000 of them hold more cells than the default's
    # million rows, and keep the full run's share of this case near half a minute.
    wide_rows = ctx.pick(tiny=1_000, quick=20_000, full=200_000)
    wide_settings = producer_settings(stack_config(overrides={"schema": WIDE_SCHEMA_DECLARATION}))
    with ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="send") as executor:
        default = _judged(ctx, rows, producer_settings(stack_config()), executor)
        # After the default's file is gone: one input in memory at a time.
        wide = measure_schema(ctx, WIDE.csv_bytes(wide_rows), wide_rows, wide_settings, executor)
    return {**default, "wide": wide}


def _judged(ctx: Context, rows: int, settings: Settings, executor: ThreadPoolExecutor) -> Result:
    """The default schema's figures, judged against the target, and profiled below the aim."""
    data = USERS.csv_bytes(rows)
    figures = measure_schema(ctx, data, rows, settings, executor)
    profile: dict[str, Any] = {}
    if figures["ratio"] < AIM_RATIO:
        ctx.progress("producer_cpu: below the aim; profiling one more run to say why")
        profile = explain(Profile.of(lambda: produce(data, settings, executor)), rows)
    return {
        **figures,
        "target_ratio": round(TARGET_RATIO, 4),
        "met": figures["ratio"] >= TARGET_RATIO,
        "profile": profile,
    }


def measure_schema(ctx: Context, data: bytes, rows: int, settings: Settings, executor: ThreadPoolExecutor) -> Result:
    """The producer's and csv.reader's figures over `data`, a file of `rows` rows of `settings.schema`
    (a `bench.inputs` dataset's: every row valid)."""
    schema = settings.schema
    ctx.progress(
        f"producer_cpu: {schema.name}, {rows:,} rows of {len(schema.columns)} columns ({len(data) / 2**20:.1f} MiB),"
        f" {ctx.repeats} runs each"
    )
    producer, last = measure(lambda: produce(data, settings, executor), ctx.repeats)
    reference, read = measure(lambda: csv_reader_rows(data), ctx.repeats)
    if not last.segment.finished or last.segment.checkpoint.rows_valid != rows or read != rows + 1:
        valid = last.segment.checkpoint.rows_valid
        raise RuntimeError(f"producer_cpu: {valid} of {rows} rows valid, csv.reader read {read}: broken input")
    # Judged on CPU time: a single-threaded parser's rate on an idle machine, whatever else runs here.
    rows_per_second, reference_rows_per_second = rows / producer.cpu_seconds, rows / reference.cpu_seconds
    return {
        "schema": schema.name,
        "columns": len(schema.columns),
        "rows": rows,
        "bytes": len(data),
        "runs": ctx.repeats,
        "rows_per_message": settings.rows_per_message,
        "messages": last.messages,
        "message_bytes": last.body_bytes,
        "rows_per_second": round(rows_per_second),
        "cpu_us_per_row": round(producer.cpu_seconds / rows * 1e6, 3),
        "wall_seconds": round(producer.seconds, 4),
        "csv_reader_rows_per_second": round(reference_rows_per_second),
        "csv_reader_cpu_us_per_row": round(reference.cpu_seconds / rows * 1e6, 3),
        "csv_reader_wall_seconds": round(reference.seconds, 4),
        "ratio": round(rows_per_second / reference_rows_per_second, 4),
    }


def explain(profile: Profile, rows: int) -> dict[str, Any]:
    """What a missed target is made of: calls per row, each pass's share, the costliest functions."""
    whole = profile.cumulative(run_segment)
    return {
        "calls_per_row": round(profile.stats.total_calls / rows, 1),
        # The two passes of `run_segment` (private to the producer, named here only to be measured).
        "validation_share": round(profile.cumulative(producer_ingest._validate) / whole, 3),
        "ingest_share": round(profile.cumulative(producer_ingest._ingest) / whole, 3),
        "top": profile.top(),
    }


def render(result: Result) -> str:
    lines = [
        f"The producer's code (`run_segment`: a validation pass, then parse, validate and pack into message"
        f" bodies) over a {result['rows']:,}-row CSV of {result['bytes'] / 2**20:.1f} MiB, in memory, SQS"
        f" replaced by a sink: {result['messages']:,} messages of {result['rows_per_message']} rows."
        f" Reference: `csv.reader` iterating the same bytes in the same run. Medians of {result['runs']} runs;"
        " rates are per CPU second (`time.process_time`), so other load on the machine does not move them.",
        "",
        table(
            ["measure", "producer", "csv.reader", "ratio", "target", "verdict"],
            [
                [
                    "rows per CPU second",
                    number(result["rows_per_second"]),
                    number(result["csv_reader_rows_per_second"]),
                    ratio(result["rows_per_second"], result["csv_reader_rows_per_second"]),
                    f"≥ {TARGET_RATIO:g}× (aim {AIM_RATIO:.2f}×)",
                    verdict(result["ratio"] >= TARGET_RATIO),
                ],
                [
                    "CPU µs per row",
                    number(result["cpu_us_per_row"]),
                    number(result["csv_reader_cpu_us_per_row"]),
                    ratio(result["cpu_us_per_row"], result["csv_reader_cpu_us_per_row"]),
                    "",
                    "",
                ],
                [
                    "wall seconds",
                    number(result["wall_seconds"]),
                    number(result["csv_reader_wall_seconds"]),
                    ratio(result["wall_seconds"], result["csv_reader_wall_seconds"]),
                    "",
                    "",
                ],
            ],
        ),
    ]
    if result["profile"]:
        lines += ["", _missed(result)]
    if "wide" in result:  # results from before issue 21 measured the default schema only
        lines += ["", _wide(result)]
    return "\n".join(lines)


def _wide(result: Result) -> str:
    wide = result["wide"]
    return "\n".join(
        [
            f"The same measurement on a wide schema, in the same run: `{wide['schema']}`, {wide['columns']} columns"
            " of every type (`bench/inputs.py`: a text key, optional columns left empty in some rows, cells to"
            f" normalise), {wide['rows']:,} rows of {wide['bytes'] / 2**20:.1f} MiB (fewer rows than the default's:"
            f" each is {_row_bytes(wide) / _row_bytes(result):.1f}× as long, and the run stays short) in"
            f" {wide['messages']:,} messages. The target above applies to the default schema only; the wide"
            " schema's figures are reported, not judged.",
            "",
            table(
                [
                    "schema",
                    "rows",
                    "bytes per row",
                    "rows per CPU second",
                    "CPU µs per row",
                    "CPU µs per cell",
                    "csv.reader CPU µs per row",
                    "÷ csv.reader's rate",
                ],
                [
                    [
                        schema_label(figures, role),
                        f"{figures['rows']:,}",
                        number(_row_bytes(figures)),
                        number(figures["rows_per_second"]),
                        number(figures["cpu_us_per_row"]),
                        number(figures["cpu_us_per_row"] / figures["columns"]),
                        number(figures["csv_reader_cpu_us_per_row"]),
                        f"{figures['ratio']:.2f}×",
                    ]
                    for figures, role in ((result, "default"), (wide, "wide"))
                ],
            ),
        ]
    )


def schema_label(figures: Result, role: str) -> str:
    """How the tables name a schema's row: `users (default), 3 columns`."""
    return f"{figures['schema']} ({role}), {figures['columns']} columns"


def _row_bytes(figures: Result) -> float:
    return figures["bytes"] / figures["rows"]


def _missed(result: Result) -> str:
    profile = result["profile"]
    return "\n".join(
        [
            f"**{'Aim' if result['ratio'] >= TARGET_RATIO else 'Target'} missed**: the producer runs at"
            f" {result['ratio']:.2f}× csv.reader's rate, not the {AIM_RATIO:.2f}× aimed at. One profiled run makes"
            f" {profile['calls_per_row']:,} Python"
            f" function calls per row, where csv.reader makes about one; the validation pass takes"
            f" {profile['validation_share']:.0%} of it and the ingest pass (parse again, validate, pack, encode)"
            f" {profile['ingest_share']:.0%}. The functions with the most time of their own"
            " (cProfile, which slows every call alike):",
            "",
            table(
                ["function", "calls", "own s", "cumulative s"],
                [[p["function"], f"{p['calls']:,}", p["tottime_s"], p["cumtime_s"]] for p in profile["top"]],
            ),
        ]
    )


BENCHMARK = Benchmark(name="producer_cpu", title="Producer CPU: parse, validate and pack", run=run, render=render)
