"""`list --all` in local mode: a full listing of the users, as a user exports them.

A dev stack, as `make up` starts it, is loaded with users through the pipeline; then `python -m
ingest list --all` runs in a process of its own, as a user runs it, its output piped: `--json` (the
export, written user by user) and the table. The query function's invocations during each run (its
log's REPORT lines) are the pages it took. The reference runs in the same stack: the same users
read as the command read them before, in pages of 100 (`ApiClient.pages`), in this process.

A page costs a request, a function invocation and a scan whatever it holds, and pages come one after
another (each starts where the last one's `nextToken` says), so a listing's time is its number of
pages: the command asks for the largest pages the API serves (`ingest.api.LISTING_PAGE`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import inputs
from bench.core import Benchmark, Context, Result, median_of, note_lines, number, ratio, table, timed, verdict
from bench.stacks import BenchStack, LogSpan, ingest, local_stack
from ingest.api import LISTING_PAGE, MAX_PAGE

REPO_ROOT = Path(__file__).resolve().parents[1]
# Issue 19: a listing of 43,000 users took 5 min 42 s (0.8 s a page of 100); "seconds per 10,000".
TARGET_SECONDS_PER_10K = 10.0
PER = 10_000
FORMS = {"json": ("--json",), "table": ()}


def listing(stack: BenchStack, *args: str) -> dict[str, Any]:
    """`python -m ingest list --all ARGS --local` in its own process, stdout piped: its wall time, the
    users it printed, the pages it read (the query function's invocations meanwhile)."""
    state_root = stack.local.options.state_root
    command = [sys.executable, "-m", "ingest", "list", "--all", *args, "--local", "--state-dir", str(state_root)]
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    log = LogSpan(stack.log_file(stack.functions.query.name))
    seconds, done = timed(
        lambda: subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False)
    )
    if done.returncode != 0:
        raise RuntimeError(f"list --all {' '.join(args)}: exit {done.returncode}: {done.stderr[-2000:]}")
    users = _users_printed(done.stdout, as_json=bool(args))
    return {"seconds": seconds, "users": users, "pages": log.runs().invocations}


def _users_printed(stdout: str, *, as_json: bool) -> int:
    if as_json:
        return len(json.loads(stdout))
    # The table: a header, its rule, a line per user, and the count.
    return len(stdout.splitlines()) - 3


def reference(stack: BenchStack) -> dict[str, Any]:
    """The same users in pages of `MAX_PAGE`, as the command read them before."""
    api = stack.target.api()
    log = LogSpan(stack.log_file(stack.functions.query.name))
    seconds, users = timed(lambda: sum(1 for _ in api.all_items("/users", MAX_PAGE)))
    return {"seconds": seconds, "users": users, "pages": log.runs().invocations}


def summarised(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run's figures, and the seconds per `PER` users they make."""
    seconds = median_of(run["seconds"] for run in runs)
    users, pages = runs[0]["users"], runs[0]["pages"]
    per = seconds * PER / users if users else 0.0
    return {
        "runs": len(runs),
        "seconds": round(seconds, 3),
        "users": users,
        "pages": pages,
        "users_per_page": round(users / pages, 1) if pages else 0.0,
        "seconds_per_10k": round(per, 2),
        "met": per <= TARGET_SECONDS_PER_10K,
    }


def run(ctx: Context) -> Result:
    users = ctx.pick(tiny=300, quick=3_000, full=10_000)
    load_before = os.getloadavg()[0]
    csv_path = inputs.write_csv(ctx.work / f"list-all-users-{users}.csv", users)
    with local_stack(ctx, "list_all") as stack:
        ctx.progress(f"list_all: loading {users:,} users")
        ingest(stack.target, csv_path, users, timeout=600)
        forms = {}
        for form, args in FORMS.items():
            repeats = ctx.repeats if form == "json" else 1
            ctx.progress(f"list_all: list --all {' '.join(args)} ({repeats}×)")
            forms[form] = summarised([listing(stack, *args) for _ in range(repeats)])
            if forms[form]["users"] != users:
                raise RuntimeError(f"list --all ({form}) printed {forms[form]['users']} users of {users}")
        ctx.progress(f"list_all: the reference, pages of {MAX_PAGE}")
        before = summarised([reference(stack)])
    return {
        "users": users,
        "listing_page": LISTING_PAGE,
        "target_seconds_per_10k": TARGET_SECONDS_PER_10K,
        "forms": forms,
        "reference": before,
        "load_average_1m": round(load_before, 2),
    }


def render(result: Result) -> str:
    forms, before = result["forms"], result["reference"]
    rows = [
        (f"`list --all --json`, {number(forms['json']['users'])} users", forms["json"]),
        ("`list --all` (the table)", forms["table"]),
        (f"reference: pages of {MAX_PAGE}, as before", before),
    ]
    target = f"≤ {number(result['target_seconds_per_10k'])} s"
    measured = table(
        ["listing", "requests", "users a request", "seconds", "seconds per 10,000 users", f"target {target}", "runs"],
        [
            (
                name,
                figures["pages"],
                figures["users_per_page"],
                figures["seconds"],
                figures["seconds_per_10k"],
                verdict(figures["met"]) if name != rows[-1][0] else "—",
                figures["runs"],
            )
            for name, figures in rows
        ],
    )
    notes = [
        f"A dev stack in local mode, as `make up` starts it, holding {number(result['users'])} users loaded through"
        " the pipeline; each listing runs `python -m ingest list --all` in a process of its own (interpreter"
        " start included), stdout piped. Seconds: the median of the runs.",
        f"Requests: the query function's invocations during the run, one a page (and one more for the"
        f" empty page after a last full one). The command asks for pages of {result['listing_page']} and, from"
        f" an API that refuses them (it serves no more than {MAX_PAGE}), for pages of {MAX_PAGE}: the users a"
        " request say which it got.",
        f"The reference reads the same users in pages of {MAX_PAGE} from this process (no interpreter to"
        " start), as the command did before: the JSON listing's time per user is"
        f" {ratio(forms['json']['seconds_per_10k'], before['seconds_per_10k'])} the reference's.",
        f"1-minute load average {number(result['load_average_1m'])} when the benchmark began: every figure"
        " here is a wall time on a shared machine.",
    ]
    return "\n\n".join([measured, note_lines(notes)])


BENCHMARK = Benchmark(name="list_all", title="A full listing: `list --all`", run=run, render=render)
