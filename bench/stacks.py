"""A local stack in the benchmark's own process (`local.session.LocalStack`), and uploads followed to their end.

In-process so that a benchmark can read the emulator's call counts and the function hosts' processes;
function logs go to a file in the run's scratch folder, not the console.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pulumi

from bench.core import Context
from ingest.commands.upload import put, wait_for_job
from ingest.targets import Target, local_target
from local.functions import FunctionHost
from local.registry import FunctionSpec, Registry
from local.session import LocalOptions, LocalStack, Started


@dataclass
class BenchStack:
    local: LocalStack
    started: Started
    target: Target

    @property
    def emulator(self) -> Any:
        assert self.local.emulator is not None
        return self.local.emulator

    @property
    def functions(self) -> PipelineFunctions:
        assert self.local.registry is not None
        return PipelineFunctions.of(self.local.registry, self.target.outputs["queueUrl"])

    def log_file(self, function_name: str) -> Path:
        """Where the function's log lines (its own and Lambda's START/END/REPORT) are kept."""
        return self.local.state / "logs" / f"{function_name}.log"


@dataclass(frozen=True)
class PipelineFunctions:
    """The pipeline's functions, found by their place in the deployed wiring (never by name)."""

    producer: FunctionSpec
    """The function S3 may invoke (the bucket notification's target)."""
    worker: FunctionSpec
    """The function the queue's event source mapping feeds."""
    query: FunctionSpec
    """The function API Gateway may invoke."""

    @classmethod
    def of(cls, registry: Registry, queue_url: str) -> PipelineFunctions:
        by_principal = {p.principal: registry.function(p.function_name) for p in registry.permissions}
        queue_arn = next(arn for arn, url in registry.queue_urls.items() if url == queue_url)
        (source,) = [s for s in registry.queue_sources if s.queue_arn == queue_arn]
        return cls(
            producer=by_principal["s3.amazonaws.com"],
            worker=registry.function(source.function_arn),
            query=by_principal["apigateway.amazonaws.com"],
        )

    @property
    def by_role_name(self) -> dict[str, str]:
        """Role name (as the emulator's call counts name callers) → which function it runs."""
        return {spec.role_arn.rsplit("/", 1)[-1]: part for part, spec in self._parts().items()}

    def _parts(self) -> dict[str, FunctionSpec]:
        return {"producer": self.producer, "worker": self.worker, "query": self.query}


@dataclass(frozen=True)
class FunctionRuns:
    """What Lambda's REPORT lines of one function say about a span of its log."""

    invocations: int
    billed_ms: int
    max_memory_mb: int
    log_bytes: int
    """Every byte the function's log received (its lines and Lambda's), as CloudWatch Logs ingests them."""

    @classmethod
    def from_log(cls, text: str) -> FunctionRuns:
        reports = [line for line in text.splitlines() if line.startswith("REPORT RequestId:")]
        return cls(
            invocations=len(reports),
            billed_ms=sum(int(_report_field(line, "Billed Duration")) for line in reports),
            max_memory_mb=max((int(_report_field(line, "Max Memory Used")) for line in reports), default=0),
            log_bytes=len(text.encode()),
        )


def _report_field(line: str, name: str) -> str:
    """`Billed Duration: 12 ms` → "12"."""
    for field_ in line.split("\t"):
        key, _, value = field_.partition(": ")
        if key == name:
            return value.split()[0]
    raise ValueError(f"REPORT line without {name}")


class LogSpan:
    """The log lines a function wrote from now on (`runs()`), for the REPORT lines of one measurement."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._start = path.stat().st_size if path.exists() else 0

    def runs(self) -> FunctionRuns:
        if not self._path.exists():
            return FunctionRuns(0, 0, 0, 0)
        with self._path.open("rb") as log:
            log.seek(self._start)
            return FunctionRuns.from_log(log.read().decode("utf-8", errors="replace"))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of /proc/<pid>/stat (fields 14 and 15; the name in parentheses may hold spaces)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # exited since the host listed it
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuSpan:
    """CPU seconds a function host's processes spent from now on (`seconds()`): those alive now and
    those started since. A process that exits in between takes its share with it: a benchmark that
    reads this keeps its functions within their timeouts."""

    def __init__(self, host: FunctionHost) -> None:
        self._host = host
        self._start = {pid: process_cpu_seconds(pid) for pid in host.pids}

    def seconds(self) -> float:
        return sum(process_cpu_seconds(pid) - self._start.get(pid, 0.0) for pid in self._host.pids)


@contextmanager
def local_stack(
    ctx: Context,
    name: str,
    *,
    stack: str = "dev",
    overrides: Mapping[str, Any] | None = None,
    transformations: Sequence[pulumi.ResourceTransformation] = (),
) -> Iterator[BenchStack]:
    """`stack` running locally under the name `name` (its own state folder), stopped on leaving."""
    state_root = ctx.work / "stacks" / name
    with (ctx.work / f"{name}.console.txt").open("w") as console:
        local = LocalStack(
            LocalOptions(
                stack=stack,
                api_port=0,
                state_root=state_root,
                overrides=dict(overrides or {}),
                transformations=transformations,
            ),
            console,
        )
        try:
            started = local.start()
            ctx.progress(f"{name}: local stack {stack} ready in {started.seconds:.1f} s")
            yield BenchStack(local=local, started=started, target=local_target(stack, state_root))
        finally:
            local.stop()


@dataclass(frozen=True)
class Ingested:
    rows: int
    job: dict[str, Any]
    seconds: float
    """From the upload's start to the job's end (the job's own finishedAt, not our polling)."""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def ingest(target: Target, path: Path, rows: int, *, timeout: float) -> Ingested:
    """Upload `path` under the uploads prefix and wait for its job to end COMPLETE."""
    began = time.time()
    uploaded = put(target, path, target.outputs["uploadsPrefix"] + path.name, progress=False)
    with open(os.devnull, "w") as quiet:
        job = wait_for_job(target, uploaded.job_id, timeout=timeout, progress=False, out=quiet)
    if job["status"] != "COMPLETE":
        raise RuntimeError(f"{path.name}: job {uploaded.job_id} ended {job['status']}, not COMPLETE")
    finished = datetime.fromisoformat(job["finishedAt"].replace("Z", "+00:00")).timestamp()
    return Ingested(rows=rows, job=job, seconds=finished - began)
