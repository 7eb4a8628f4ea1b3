"""Producer memory: the peak resident memory of the producer's process, for files from small to large.

The producer streams its file from S3 (`handlers.producer.csv_stream`), so its peak should not
grow with the file. Measured where Lambda measures "Max Memory Used": the peak RSS (`VmHWM`) of the
function's own process, here a local stack's producer process reading from the emulator's S3 over
HTTP. Each size runs in a stack of its own, so each is a fresh process and no peak carries over.

The worker is kept from consuming: the program's event source mapping is deployed disabled (a
stack transformation), so the chunks wait on the queue and the job stops at `QUEUED`, the status
the producer gives a job once every chunk is on the queue.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pulumi

from bench.core import Benchmark, Context, Result, number, table, verdict
from bench.inputs import write_csv
from bench.stacks import BenchStack, local_stack
from handlers.common.jobs import FAILED, PARSING, QUEUED
from ingest.api import segment, unexpected
from ingest.commands.upload import put
from local.functions import FunctionHost
from local.registry import EVENT_SOURCE_MAPPING

TARGET_GROWTH = 1.2
"""The largest files' peak, at most this many times the smallest's."""
POLL_SECONDS = 0.5
# Time allowed for the producer to queue a file: start-up, plus a rate well below what it does here.
BASE_TIMEOUT_SECONDS, TIMEOUT_ROWS_PER_SECOND = 120.0, 2_000


def without_worker() -> pulumi.ResourceTransformation:
    """Deploy the program's queue event source mappings disabled: nothing consumes the queue."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == EVENT_SOURCE_MAPPING:
            return pulumi.ResourceTransformationResult({**args.props, "enabled": False}, args.opts)
        return None

    return transform


def producer_host(stack: BenchStack) -> FunctionHost:
    """The host of the function the uploads bucket notifies of new objects (the producer)."""
    notifications = stack.target.client("s3").get_bucket_notification_configuration(
        Bucket=stack.target.outputs["bucketName"]
    )
    arns = {entry["LambdaFunctionArn"] for entry in notifications.get("LambdaFunctionConfigurations", [])}
    if len(arns) != 1:
        raise RuntimeError(f"producer_memory: expected the bucket to notify one function, found {sorted(arns)}")
    assert stack.local.registry is not None, "a started stack has its registry"
    return stack.local.hosts[stack.local.registry.function(arns.pop()).name]


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident memory (`VmHWM`, what Lambda reports as "Max Memory Used"), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"producer_memory: no VmHWM in /proc/{pid}/status")


def wait_until_queued(stack: BenchStack, job_id: str, timeout: float) -> dict[str, Any]:
    """Poll `GET /jobs/{id}` until the producer is done with the job (`QUEUED`: every chunk on the queue)."""
    api, deadline = stack.target.api(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.get(f"/jobs/{segment(job_id)}")
        if response.status == 200 and response.body["status"] == FAILED:
            raise RuntimeError(f"producer_memory: job {job_id} failed: {response.body.get('error')}")
        if response.status == 200 and response.body["status"] != PARSING:
            return dict(response.body)
        if response.status not in (200, 404):  # 404: the producer has not created the job yet
            raise unexpected(response, "GET /jobs/{jobId}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"producer_memory: job {job_id} still parsing after {timeout:.0f} s")


def wait_until_idle(host: FunctionHost, timeout: float = 60.0) -> None:
    """Until the invocation that queued the job has returned (its process idle, still alive)."""
    deadline = time.monotonic() + timeout
    while host.busy and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)


def _seconds_between(began: str, ended: str) -> float:
    return (datetime.fromisoformat(ended) - datetime.fromisoformat(began)).total_seconds()


@dataclass(frozen=True)
class Measured:
    """One file through a fresh producer."""

    rows: int
    bytes: int
    peak_rss_mib: float
    """The highest peak among the producer's processes (a long file may continue in another)."""
    idle_rss_mib: float
    """The same process's peak before the upload: the runtime and the handler's imports (its init)."""
    processes: int
    chunks: int
    seconds: float
    """From the job's creation to every chunk queued (the job's own times)."""


def measure(ctx: Context, rows: int) -> Measured:
    """Upload a `rows`-row file to a stack of its own and read its producer's peak once it is queued."""
    ctx.progress(f"producer_memory: writing {rows:,} rows")
    path = write_csv(ctx.work / f"producer-memory-{rows}.csv", rows)
    size = path.stat().st_size
    with local_stack(ctx, f"producer-memory-{rows}", transformations=[without_worker()]) as stack:
        host = producer_host(stack)
        idle = max(peak_rss_mib(pid) for pid in host.pids)
        ctx.progress(f"producer_memory: uploading {size / 2**20:.1f} MiB")
        uploaded = put(stack.target, path, stack.target.outputs["uploadsPrefix"] + path.name, progress=False)
        path.unlink()  # the emulator holds its own copy
        ctx.progress("producer_memory: waiting for the producer to queue every chunk")
        job = wait_until_queued(stack, uploaded.job_id, BASE_TIMEOUT_SECONDS + rows / TIMEOUT_ROWS_PER_SECOND)
        wait_until_idle(host)
        peaks = [peak_rss_mib(pid) for pid in host.pids]
    if job["status"] != QUEUED:  # a worker that consumed would have moved it on (and its memory is not ours)
        raise RuntimeError(f"producer_memory: job {job['status']}, not {QUEUED}: was the worker disabled?")
    if job["rowsValid"] != rows:
        raise RuntimeError(f"producer_memory: {job['rowsValid']} of {rows} rows valid; the input is broken")
    measured = Measured(
        rows=rows,
        bytes=size,
        peak_rss_mib=round(max(peaks), 1),
        idle_rss_mib=round(idle, 1),
        processes=len(peaks),
        chunks=int(job["chunksTotal"]),
        seconds=round(_seconds_between(job["startedAt"], job["queuedAt"]), 2),
    )
    ctx.progress(f"producer_memory: {rows:,} rows: peak {measured.peak_rss_mib} MiB in {measured.seconds} s")
    return measured


def run(ctx: Context) -> Result:
    sizes = ctx.pick(tiny=(500, 1_000, 2_000), quick=(20_000, 100_000, 200_000), full=(100_000, 1_000_000, 5_000_000))
    measured = [measure(ctx, rows) for rows in sizes]
    smallest = measured[0].peak_rss_mib
    ratios = [round(m.peak_rss_mib / smallest, 3) for m in measured]
    return {
        "sizes": [{**asdict(m), "ratio": r} for m, r in zip(measured, ratios, strict=True)],
        "target_ratio": TARGET_GROWTH,
        "met": all(r <= TARGET_GROWTH for r in ratios),
    }


def render(result: Result) -> str:
    sizes, target = result["sizes"], result["target_ratio"]
    reference = sizes[0]
    rows = [
        [
            f"{size['rows']:,}",
            number(size["bytes"] / 2**20),
            number(size["peak_rss_mib"]),
            number(reference["peak_rss_mib"]),
            f"{size['ratio']:.2f}×",
            "reference" if size is reference else f"≤ {target:.1f}×",
            "" if size is reference else verdict(size["ratio"] <= target),
            number(size["idle_rss_mib"]),
            number(size["seconds"]),
        ]
        for size in sizes
    ]
    return "\n".join(
        [
            "Peak resident memory (`VmHWM`, Lambda's \"Max Memory Used\") of the producer function's process,"
            " streaming each file from the emulator's S3 in a local dev stack whose worker is disabled"
            " (the job stops at `QUEUED`). One run per size, each in a fresh stack and process; the"
            f" reference is the smallest file's peak. Target: flat, every size within {target:.1f}× of it.",
            "",
            table(
                [
                    "rows",
                    "file MiB",
                    "peak RSS MiB",
                    "reference MiB",
                    "ratio",
                    "target",
                    "verdict",
                    "after init MiB",
                    "producer s",
                ],
                rows,
            ),
            "",
            "`after init`: the same process's peak before the upload (runtime and imports), so the file's own"
            " share is the difference. `producer s`: from the job's creation to its last chunk queued.",
        ]
    )


BENCHMARK = Benchmark(name="producer_memory", title="Producer memory: peak RSS by file size", run=run, render=render)
