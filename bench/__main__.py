"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, save the raw results, write BENCHMARKS.md.

python -m bench                 # full scale (under 20 minutes here), BENCHMARKS.md regenerated
python -m bench --quick         # smaller inputs, fewer repeats (under 3 minutes)
python -m bench --only worker   # one benchmark (and what it reads from earlier ones)
python -m bench --render bench/results/FILE.json   # BENCHMARKS.md again from saved results
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.core import Benchmark, Context, Scale, machine

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def benchmarks() -> list[Benchmark]:
    """Every benchmark, in the order they run: the cost model and the projection read the others."""
    from bench import (
        cost,
        gzip_uploads,
        list_all,
        local_mode,
        pipeline,
        producer_cpu,
        producer_memory,
        projection,
        query_api,
        worker,
    )

    return [
        producer_cpu.BENCHMARK,
        producer_memory.BENCHMARK,
        worker.BENCHMARK,
        *pipeline.BENCHMARKS,  # end to end, and the API calls counted during it
        cost.BENCHMARK,
        projection.BENCHMARK,
        query_api.BENCHMARK,
        local_mode.BENCHMARK,
        list_all.BENCHMARK,
        gzip_uploads.BENCHMARK,
    ]


def run(scale: Scale, only: list[str], work: Path) -> dict[str, Any]:
    chosen = benchmarks()
    unknown = set(only) - {b.name for b in chosen}
    if unknown:
        names = ", ".join(b.name for b in chosen)
        raise SystemExit(f"error: no benchmark named {', '.join(sorted(unknown))}; there are: {names}")
    ctx = Context(scale=scale, work=work)
    began = time.monotonic()
    for benchmark in chosen:
        if only and benchmark.name not in only:
            continue
        ctx.progress(f"{benchmark.name}: {benchmark.title}")
        started = time.monotonic()
        result = benchmark.run(ctx)
        result["seconds"] = round(time.monotonic() - started, 1)
        ctx.results[benchmark.name] = result
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": scale,
        "repeats": ctx.repeats,
        "machine": machine(),
        "seconds": round(time.monotonic() - began, 1),
        "benchmarks": ctx.results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats (under 3 minutes)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the tests' smoke run
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run this benchmark only")
    parser.add_argument("--render", type=Path, metavar="RESULTS", help="write BENCHMARKS.md from saved results")
    parser.add_argument("--report", type=Path, default=report.REPORT, help=argparse.SUPPRESS)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.render:
        results = json.loads(options.render.read_text())
        report.write(results, benchmarks(), options.render, options.report)
        return 0
    scale: Scale = "tiny" if options.tiny else "quick" if options.quick else "full"
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        results = run(scale, options.only, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    options.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = options.results_dir / f"{stamp}-{scale}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"results: {path}", file=sys.stderr)
    if scale != "tiny" and not options.only:
        # BENCHMARKS.md shows complete full-scale runs only; a quick run's report sits beside its results.
        written = options.report if scale == "full" else path.with_suffix(".md")
        report.write(results, benchmarks(), path, written)
        print(f"report: {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
