"""End to end in local mode, ours against the article's design, and the API calls both make.

Two benchmarks share one measurement (`end_to_end` runs the stacks, `api_calls` reads its counts):
- our stack as the program deploys it, and the same stack with the producer and worker replaced by
  the article's design (`bench.naive`: one message per row, unconditional `BatchWriteItem`), each
  fed the same seeded files, timed from the upload's start to the end (our job's `finishedAt`; for
  the naive design, which has no job, the moment its queue is drained and both functions idle);
- the emulator's ceiling for the worker's writes (its conditional UPDATE statements, 25 to a PartiQL
  `BatchExecuteStatement`, with the worker's role) at the worker's concurrency, as benchmark `worker`
  measured it in the same run: the best any worker could do on this emulator.
Every request the emulator serves is counted by role, service and operation (`Emulator.calls`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import naive
from bench.core import Benchmark, Context, Result, largest_first, number, table, verdict
from bench.inputs import write_csv
from bench.profiling import sampled
from bench.stacks import BenchStack, CpuSpan, LogSpan, PipelineFunctions, ingest, local_stack
from handlers.producer.sender import SENDS_IN_FLIGHT
from handlers.worker.writes import WRITERS

DESIGNS = ("ours", "naive")
CONCURRENT_CALLS = {
    "ours": {
        "producer": {"SendMessageBatch": SENDS_IN_FLIGHT},
        "worker": {"BatchGetItem": WRITERS, "BatchExecuteStatement": WRITERS},
    },
    "naive": naive.CONCURRENT_CALLS,
}
"""Requests a function keeps in flight at once within an invocation, by operation (any other, one at a
time), from each design's own constants: how many of its calls the cost model counts as waits."""
TARGET_VS_NAIVE, AIM_VS_NAIVE, TARGET_VS_CEILING = 3.0, 5.0, 0.5
DRAIN_POLL_SECONDS = 0.25


def sizes(ctx: Context) -> list[int]:
    return ctx.pick(tiny=[200], quick=[1_000, 5_000], full=[10_000, 100_000])


# --- measuring -------------------------------------------------------------------------------------


def run_end_to_end(ctx: Context) -> Result:
    files = {rows: write_csv(ctx.work / "inputs" / f"users-{rows}.csv", rows) for rows in sizes(ctx)}
    runs: list[dict[str, Any]] = []
    for design in DESIGNS:
        transformations = [naive.transformation(naive.build_archive(ctx.work / "naive"))] if design == "naive" else []
        with local_stack(ctx, design, transformations=transformations) as stack:
            for rows, path in files.items():
                ctx.progress(f"end_to_end: {design}, {rows:,} rows")
                runs.append({"design": design, **_measure(stack, design, path, rows)})
    return {"runs": runs, "ceiling": _ceiling(ctx)}


def _ceiling(ctx: Context) -> dict[str, Any] | None:
    """The emulator's rate for the worker's writes (conditional UPDATE statements in BatchExecuteStatement
    calls of 25, the worker's role, the worker's concurrency, from a process of its own) as benchmark
    `worker` measured it in this run."""
    worker = ctx.results.get("worker")
    if worker is None:
        return None
    return {"rows_per_second": worker["ceiling_rows_per_second"], "threads": worker["ceiling_threads"]}


def _measure(stack: BenchStack, design: str, path: Path, rows: int) -> dict[str, Any]:
    functions = stack.functions
    spans = {part: LogSpan(stack.log_file(spec.name)) for part, spec in _parts(functions).items()}
    groups = {spec.name: part for part, spec in _parts(functions).items()}
    cpu = {part: CpuSpan(stack.local.hosts[spec.name]) for part, spec in _parts(functions).items()}
    stack.emulator.calls.reset()
    with sampled(path.with_suffix(f".{design}.profile"), groups) as profile:
        if design == "ours":
            seconds = ingest(stack.target, path, rows, timeout=max(600.0, rows / 20)).seconds
        else:
            seconds = _ingest_naive(stack, path, rows)
    by_role = functions.by_role_name
    calls = [
        {"caller": by_role.get(caller, caller), "service": service, "operation": operation, **vars(count)}
        for (caller, service, operation), count in sorted(stack.emulator.calls.snapshot().items())
    ]
    return {
        "rows": rows,
        "bytes": path.stat().st_size,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds, 1),
        "profile": {"seconds": profile.seconds(), "rate": profile.rate, "unavailable": profile.unavailable},
        "calls": calls,
        "functions": {
            part: {
                **vars(span.runs()),
                "memory_mb": spec.memory_mb,
                "cpu_seconds": round(cpu[part].seconds(), 3),
                "concurrent_calls": CONCURRENT_CALLS[design][part],
            }
            for (part, span), spec in zip(spans.items(), _parts(functions).values(), strict=True)
        },
    }


def _parts(functions: PipelineFunctions) -> dict[str, Any]:
    return {"producer": functions.producer, "worker": functions.worker}


def _ingest_naive(stack: BenchStack, path: Path, rows: int) -> float:
    """Upload, then wait until the producer has run, the queue is empty and both functions idle."""
    producer_log = LogSpan(stack.log_file(stack.functions.producer.name))
    began = time.time()
    with path.open("rb") as body:
        stack.target.client("s3").put_object(
            Bucket=stack.target.outputs["bucketName"], Key=stack.target.outputs["uploadsPrefix"] + path.name, Body=body
        )
    drained = _wait(lambda: producer_log.runs().invocations > 0 and _idle(stack), timeout=max(600.0, rows / 10))
    pages = stack.target.client("dynamodb").get_paginator("scan")
    written = sum(
        page["Count"] for page in pages.paginate(TableName=stack.target.outputs["usersTableName"], Select="COUNT")
    )
    if written < rows:
        raise RuntimeError(f"naive design: {written} of {rows} rows in the table after the queue drained")
    return drained - began


def _idle(stack: BenchStack) -> bool:
    functions = stack.functions
    if stack.local.hosts[functions.producer.name].busy or stack.local.hosts[functions.worker.name].busy:
        return False
    attributes = stack.target.client("sqs").get_queue_attributes(
        QueueUrl=stack.target.outputs["queueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return not any(int(value) for value in attributes.values())


def _wait(condition: Callable[[], bool], *, timeout: float) -> float:
    """The wall-clock time (epoch seconds) at which `condition()` first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout:g} s")
        time.sleep(DRAIN_POLL_SECONDS)
    return time.time()


# --- the API calls ---------------------------------------------------------------------------------


def run_api_calls(ctx: Context) -> Result:
    """Calls per 1,000 rows, by function, service and operation, from `end_to_end`'s counts."""
    measured = ctx.results.get("end_to_end")
    if measured is None:
        raise SystemExit("api_calls reads end_to_end's counts: run it too (--only end_to_end --only api_calls)")
    largest = max(run["rows"] for run in measured["runs"])
    per_design = {}
    for run in measured["runs"]:
        if run["rows"] != largest:
            continue
        per_design[run["design"]] = {
            "rows": run["rows"],
            "per_1000_rows": [
                {**call, "per_1000_rows": round(call["calls"] * 1000 / run["rows"], 3)}
                for call in run["calls"]
                if call["caller"] in ("producer", "worker")
            ],
        }
    return {"rows": largest, "designs": per_design}


def sqs_sends_per_row(calls: list[dict[str, Any]]) -> float:
    return sum(c["per_1000_rows"] for c in calls if c["operation"] in ("SendMessage", "SendMessageBatch")) / 1000


# --- the report ------------------------------------------------------------------------------------


def render_end_to_end(result: Result) -> str:
    runs, ceiling = result["runs"], result["ceiling"]
    by_key = {(run["design"], run["rows"]): run for run in runs}
    lines = []
    for rows in sorted({run["rows"] for run in runs}):
        ours, theirs = by_key[("ours", rows)], by_key[("naive", rows)]
        vs_naive = ours["rows_per_second"] / theirs["rows_per_second"]
        if ceiling:
            vs_ceiling = ours["rows_per_second"] / ceiling["rows_per_second"]
            against_ceiling = f"{vs_ceiling:.2f}× ({verdict(vs_ceiling >= TARGET_VS_CEILING)})"
        else:
            against_ceiling = "not measured in this run"
        lines.append(
            [
                f"{rows:,}",
                f"{number(ours['rows_per_second'])} rows/s ({number(ours['seconds'])} s)",
                f"{number(theirs['rows_per_second'])} rows/s ({number(theirs['seconds'])} s)",
                f"{vs_naive:.2f}× ({verdict(vs_naive >= TARGET_VS_NAIVE)}; aim {AIM_VS_NAIVE:g}×)",
                against_ceiling,
            ]
        )
    ceiling_text = (
        f" The ceiling is benchmark `worker`'s: {number(ceiling['rows_per_second'])} rows/s written by conditional"
        f" UPDATE statements, 25 to a BatchExecuteStatement, from {ceiling['threads']} threads with the worker's"
        " role, in a process of their own."
        if ceiling
        else " Benchmark `worker` did not run, so there is no ceiling to compare with."
    )
    return "\n\n".join(
        [
            "From the upload's start to the job's end (`finishedAt`), one run per size. The naive design is the"
            " article's (`bench/naive/`), deployed by the same program with its producer and worker swapped by a"
            " stack transformation; it has no job, so its end is when its queue is drained (polled every"
            f" {DRAIN_POLL_SECONDS:g} s)." + ceiling_text,
            table(
                [
                    "rows",
                    "ours",
                    "naive (article)",
                    f"ours ÷ naive (target ≥ {TARGET_VS_NAIVE:g}×)",
                    f"ours ÷ ceiling (target ≥ {TARGET_VS_CEILING:g})",
                ],
                lines,
            ),
            _requests_paragraph(runs),
            render_profiles(runs),
        ]
    )


def _requests_paragraph(runs: list[dict[str, Any]]) -> str:
    """The emulator's load in each design's largest run, and what it says about the comparison: every
    comparative word chosen by the figures."""
    largest = max(run["rows"] for run in runs)
    served, speed = {}, {}
    for run in (r for r in runs if r["rows"] == largest):
        requests = sum(c["calls"] for c in run["calls"])
        served[run["design"]] = (requests / run["rows"], requests / run["seconds"])
        speed[run["design"]] = run["rows_per_second"]
    if set(served) != set(DESIGNS):
        return ""
    (ours_per_row, ours_rate), (naive_per_row, naive_rate) = served["ours"], served["naive"]
    fewer = ours_per_row < naive_per_row
    requests = (
        f"{naive_per_row / ours_per_row:.1f}× fewer requests per row than the article's"
        if fewer
        else f"{ours_per_row / naive_per_row:.1f}× as many requests per row as the article's"
    )
    faster = speed["ours"] / speed["naive"]
    outcome = (
        f"and here ours is faster, {faster:.2f}× the article's rate"
        if faster > 1
        else f"and here ours is slower, {faster:.2f}× the article's rate"
    )
    return (
        f"Under the pipeline's load ({largest:,} rows) the emulator served {number(ours_rate)} requests/s for"
        f" ours and {number(naive_rate)} for the article's design, one at a time behind its lock. Ours sends"
        f" {ours_per_row:.3f} requests per row: the stored versions of a chunk's emails read 100 to a"
        " BatchGetItem, then its rows written by conditional PartiQL statements (INSERT if absent, UPDATE if"
        " older, so that the latest upload wins) 25 to a BatchExecuteStatement, and a few calls per chunk for"
        f" the job; the article's sends {naive_per_row:.3f} (ten rows to a BatchWriteItem that overwrites"
        " whatever is stored, and SQS traffic batched ten messages at a time). Ours makes"
        f" {requests}, {outcome}. On AWS, DynamoDB serves requests in parallel and the binding limits are those"
        " of benchmark `projection`."
    )


def render_profiles(runs: list[dict[str, Any]]) -> str:
    """CPU seconds by process and kind of code, for each design's largest run."""
    largest = max(run["rows"] for run in runs)
    sections = []
    for run in (r for r in runs if r["rows"] == largest):
        profile = run["profile"]
        if profile["unavailable"]:
            sections.append(f"**{run['design']}**: no profile ({profile['unavailable']}).")
            continue
        lines = [
            [group, kind, seconds, f"{seconds / run['seconds']:.0%}"]
            for group, kinds in largest_first(profile["seconds"], key=lambda kinds: sum(kinds.values()))
            for kind, seconds in largest_first(kinds)[:6]
        ]
        sections.append(
            f"**{run['design']}**, {run['rows']:,} rows in {number(run['seconds'])} s:\n\n"
            + table(["process", "code on the CPU", "CPU s", "of the wall time"], lines)
        )
    return (
        "Where the time goes: py-spy sampled this process (the emulator and local mode's threads) and the"
        " functions' processes during each design's largest run, counting only the thread holding each"
        " process's GIL (`bench/profiling.py`); the six largest kinds of code per process.\n\n" + "\n\n".join(sections)
    )


def in_design_order(designs: dict[str, Any]) -> list[str]:
    """The designs of a result in `DESIGNS` order (ours first), whatever order the results were saved in."""
    return [design for design in DESIGNS if design in designs]


def render_api_calls(result: Result) -> str:
    sections = [f"Counted at the emulator for the {result['rows']:,}-row file, per 1,000 rows."]
    for design in in_design_order(result["designs"]):
        measured = result["designs"][design]
        calls = measured["per_1000_rows"]
        sections.append(
            f"**{design}**\n\n"
            + table(
                ["function", "service", "operation", "calls per 1,000 rows", "64 KiB units per 1,000 rows"],
                [
                    [
                        c["caller"],
                        c["service"],
                        c["operation"],
                        c["per_1000_rows"],
                        round(c["units_64k"] * 1000 / measured["rows"], 3),
                    ]
                    for c in calls
                ],
            )
        )
    ours = result["designs"].get("ours")
    if ours:
        sends = sqs_sends_per_row(ours["per_1000_rows"])
        statements = (
            sum(
                c["items"] * 1000 / ours["rows"]
                for c in ours["per_1000_rows"]
                if c["operation"] == "BatchExecuteStatement" and c["caller"] == "worker"
            )
            / 1000
        )
        sections.append(
            table(
                ["target", "measured", "verdict"],
                [
                    [
                        "at most one SQS send call per 2,000 rows",
                        f"one per {1 / sends:,.0f} rows" if sends else "none",
                        verdict(0 < sends <= 1 / 2000),
                    ],
                    [
                        "at most one write statement per row (users table)",
                        f"{statements:.3f} statements per row (BatchExecuteStatement)",
                        verdict(0 < statements <= 1.0),
                    ],
                ],
            )
        )
    return "\n\n".join(sections)


BENCHMARKS = [
    Benchmark(
        "end_to_end", "End to end in local mode: ours against the article's design", run_end_to_end, render_end_to_end
    ),
    Benchmark("api_calls", "API calls per 1,000 rows", run_api_calls, render_api_calls),
]
