"""Cost per million rows on AWS: a model fed by what `end_to_end` counted (calls, bytes, CPU time).

Prices are us-east-1, arm64, on-demand, without free tiers; each is a named constant citing its page.
The figures scale the largest file of the run to 1,000,000 rows. What the model assumes:
- DynamoDB items under 1 KB (one write unit per PutItem/UpdateItem; a transactional write of two
  items costs 2 × 2 units), reads strongly consistent under 4 KB (one read unit per GetItem);
  `BatchWriteItem` costs one unit per item it carries. A `BatchExecuteStatement` costs one write unit
  per statement, whether it wrote or its condition failed: "If a conditional write fails … it still
  consumes write capacity" (DYNAMODB_CONDITIONAL_URL), and a DuplicateItem INSERT is counted the same
  way (the emulator counts every statement sent, so a throttled one that is retried is counted twice: a
  figure a little high, never low). `BatchGetItem`'s keys are eventually consistent reads of items under
  4 KB: half a read unit each (DYNAMODB_READ_CONSISTENCY_URL).
- SQS receives that return messages are counted as the delete batches that follow them (the
  emulator also counts the event source's empty polls, which run for as long as the local run
  lasts; on AWS an idle mapping's polls cost a fixed amount per month, not per row).
- Lambda durations are modelled, not taken from the local REPORT lines: locally each function process
  has a whole core and every call waits on the emulator's lock, neither of which holds on AWS. A
  function's duration is its CPU time measured here (its processes, /proc) stretched by the share of a
  vCPU its memory buys (`projection.cpu_share`: 1,769 MB is one vCPU), plus its calls to AWS as waits
  of `projection.DYNAMODB_LATENCY_MS` each, those it keeps in flight together counted once per round
  (`concurrent_calls`, from each design's constants). The event source mapping's receives and deletes
  and the shipping of logs are Lambda's own calls, not the function's, and are not waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.core import Benchmark, Context, Result, largest_first, number, table, verdict
from bench.pipeline import in_design_order
from bench.projection import DYNAMODB_LATENCY_MS, cpu_share

# https://aws.amazon.com/dynamodb/pricing/on-demand/ (us-east-1, since the November 2024 price cut)
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
DYNAMODB_CONDITIONAL_URL = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html"
    "#WorkingWithItems.ConditionalUpdate"
)
DYNAMODB_READ_CONSISTENCY_URL = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html"
)
EVENTUALLY_CONSISTENT_READ_UNITS = 0.5
"""An eventually consistent read of an item up to 4 KB costs half a read unit."""
# https://aws.amazon.com/sqs/pricing/ (standard queue; "each 64 KB chunk of a payload is billed as 1 request")
SQS_REQUEST = 0.40 / 1e6
# https://aws.amazon.com/lambda/pricing/ (arm64, first 7.5 billion GB-seconds a month)
LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND_ARM = 0.0000133334
# https://aws.amazon.com/s3/pricing/ (S3 Standard requests)
S3_PUT_REQUEST = 0.005 / 1000
S3_GET_REQUEST = 0.0004 / 1000
# https://aws.amazon.com/cloudwatch/pricing/ (Logs, Standard log class, data ingested)
LOGS_INGESTED_GB = 0.50

ROWS = 1_000_000
TARGET_VS_FLOOR = 1.12
# The lines of the estimate, in the report's order.
S3_PUTS = "S3 PUT requests (upload, reports)"
S3_GETS = "S3 GET requests"
SQS_REQUESTS = "SQS requests (sends in 64 KiB units, receives, deletes)"
LAMBDA_REQUESTS = "Lambda requests"
LAMBDA_GB_SECONDS = "Lambda GB-seconds"
DYNAMODB_WRITES = "DynamoDB write units"
DYNAMODB_READS = "DynamoDB read units"
LOGS_GB = "CloudWatch Logs GB ingested"
LINES = (S3_PUTS, S3_GETS, SQS_REQUESTS, LAMBDA_REQUESTS, LAMBDA_GB_SECONDS, DYNAMODB_WRITES, DYNAMODB_READS, LOGS_GB)
_WRITE_UNITS = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1, "TransactWriteItems": 4}
_SQS_SENDS = ("SendMessage", "SendMessageBatch")
_NOT_THE_FUNCTIONS = {("sqs", "ReceiveMessage"), ("sqs", "DeleteMessage"), ("sqs", "DeleteMessageBatch")}
"""Calls made with a function's role by Lambda itself (the event source mapping), not by its code."""


def estimate(run: Mapping[str, Any]) -> dict[str, Any]:
    """Quantities and dollars per million rows for one measured run."""
    scale = ROWS / run["rows"]
    calls = [c for c in run["calls"] if c["caller"] in ("producer", "worker", "admin")]

    def count(service: str, *operations: str, field: str = "calls") -> float:
        return sum(c[field] for c in calls if c["service"] == service and c["operation"] in operations) * scale

    functions = run["functions"].values()
    seconds = {part: lambda_seconds(part, f, calls) for part, f in run["functions"].items()}
    write_units = sum(count("dynamodb", op) * units for op, units in _WRITE_UNITS.items())
    write_units += count("dynamodb", "BatchWriteItem", "BatchExecuteStatement", field="items")
    read_units = count("dynamodb", "GetItem") + EVENTUALLY_CONSISTENT_READ_UNITS * count(
        "dynamodb", "BatchGetItem", field="items"
    )
    quantities = {
        S3_PUTS: (
            count("s3", "PutObject", "UploadPart", "CreateMultipartUpload"),
            S3_PUT_REQUEST,
        ),
        S3_GETS: (count("s3", "GetObject", "HeadObject"), S3_GET_REQUEST),
        SQS_REQUESTS: (
            count("sqs", *_SQS_SENDS, field="units_64k") + 2 * count("sqs", "DeleteMessageBatch", "DeleteMessage"),
            SQS_REQUEST,
        ),
        LAMBDA_REQUESTS: (sum(f["invocations"] for f in functions) * scale, LAMBDA_REQUEST),
        LAMBDA_GB_SECONDS: (
            sum(seconds[part] * f["memory_mb"] / 1024 for part, f in run["functions"].items()) * scale,
            LAMBDA_GB_SECOND_ARM,
        ),
        DYNAMODB_WRITES: (write_units, DYNAMODB_WRITE_UNIT),
        DYNAMODB_READS: (read_units, DYNAMODB_READ_UNIT),
        LOGS_GB: (sum(f["log_bytes"] for f in functions) * scale / 1e9, LOGS_INGESTED_GB),
    }
    lines = {
        name: {"quantity": quantity, "dollars": quantity * price} for name, (quantity, price) in quantities.items()
    }
    return {
        "lines": lines,
        "lambda": {
            part: {
                "memory_mb": f["memory_mb"],
                "cpu_seconds": f["cpu_seconds"] * scale,
                "aws_seconds": seconds[part] * scale,
            }
            for part, f in run["functions"].items()
        },
        "dollars": sum(line["dollars"] for line in lines.values()),
        "log_bytes_per_row": sum(f["log_bytes"] for f in functions) / run["rows"],
    }


def lambda_seconds(part: str, function: Mapping[str, Any], calls: list[Mapping[str, Any]]) -> float:
    """A function's run time on AWS for what it did in the measured run: its CPU time at the share of
    a vCPU its memory buys, plus its own calls to AWS, waited for one round at a time."""
    rounds = sum(
        call["calls"] / function["concurrent_calls"].get(call["operation"], 1)
        for call in calls
        if call["caller"] == part
        and call["service"] != "logs"
        and (call["service"], call["operation"]) not in _NOT_THE_FUNCTIONS
    )
    return function["cpu_seconds"] / cpu_share(function["memory_mb"]) + rounds * DYNAMODB_LATENCY_MS / 1000


def run_cost(ctx: Context) -> Result:
    measured = ctx.results.get("end_to_end")
    if measured is None:
        raise SystemExit("cost reads end_to_end's counts: run it too (--only end_to_end --only cost)")
    largest = max(run["rows"] for run in measured["runs"])
    designs = {run["design"]: estimate(run) for run in measured["runs"] if run["rows"] == largest}
    return {"rows_measured": largest, "floor_dollars": ROWS * DYNAMODB_WRITE_UNIT, "designs": designs}


def render_cost(result: Result) -> str:
    designs, floor = result["designs"], result["floor_dollars"]
    names = in_design_order(designs)
    lines = [
        [
            name,
            *(
                f"{number(designs[d]['lines'][name]['quantity'])} → ${designs[d]['lines'][name]['dollars']:.4f}"
                for d in names
            ),
        ]
        for name in LINES
    ]
    lines.append(["**total per million rows**", *(f"**${designs[d]['dollars']:.4f}**" for d in names)])
    lines.append(
        [
            f"÷ floor (DynamoDB writes alone, ${floor:.3f})",
            *(f"{designs[d]['dollars'] / floor:.2f}×" for d in names),
        ]
    )
    ours = designs.get("ours")
    summary = []
    if ours:
        met = ours["dollars"] / floor <= TARGET_VS_FLOOR
        summary.append(f"Target: ours within {TARGET_VS_FLOOR:g}× of the floor — {verdict(met)}.")
        summary.append(f"Above the floor (ours): {_overheads(ours, floor)}.")
        if "naive" in designs:
            summary.append(f"The article's design costs {designs['naive']['dollars'] / ours['dollars']:.2f}× ours.")
        summary.append(f"Logged per row (ours): {ours['log_bytes_per_row']:.1f} bytes.")
    durations = [
        [design, part, f["memory_mb"], number(f["cpu_seconds"]), number(f["aws_seconds"])]
        for design in names
        for part, f in designs[design].get("lambda", {}).items()
    ]
    return "\n\n".join(
        [
            f"Scaled from the {result['rows_measured']:,}-row run of benchmark `end_to_end` to 1,000,000 rows;"
            " us-east-1, arm64, on-demand, no free tier. Each price is a constant in `bench/cost.py` citing"
            " its AWS pricing page; the assumptions are in that module's docstring.",
            table(["per million rows", *names], lines),
            " ".join(summary),
            "Lambda's run time is modelled from the CPU time measured here, not taken from the local REPORT"
            " lines (locally a function has a whole core and waits on the emulator): CPU seconds ÷ the share"
            f" of a vCPU the memory buys (1,769 MB is one), plus {DYNAMODB_LATENCY_MS:g} ms for each round of"
            " the function's own calls to AWS.",
            table(["design", "function", "memory MB", "CPU s here", "run time s on AWS (model)"], durations),
        ]
    )


def _overheads(design: dict[str, Any], floor: float) -> str:
    """Each line's dollars beyond the floor, as a share of it, largest first (the users table's one
    write unit per row is the floor itself)."""
    extra = {name: line["dollars"] for name, line in design["lines"].items()}
    extra[DYNAMODB_WRITES] -= floor
    shown = [f"{name} +{dollars / floor:.1%}" for name, dollars in largest_first(extra)]
    return ", ".join(shown[:4])


BENCHMARK = Benchmark("cost", "Cost per million rows on AWS", run_cost, render_cost)
