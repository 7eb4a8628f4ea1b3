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
