"""The query API in local mode: `GET /users/{email}` latency under load, and each handler's cold import.

(a) A dev stack with some users loaded answers a fixed number of requests from a few client threads
on 127.0.0.1 (mostly hits, one in ten a miss). The stage throttle (and the key's quota) are raised
so that the figures are the API's, not its 429s. Two references run in the same stack, with the same
threads: the function host invoked directly with the same proxy events (the gateway's overhead is
the difference), and requests the gateway refuses itself (no API key: its HTTP front alone).

(b) Each handler module imported in a fresh `python -I -S -B` of the function's runtime (its
interpreter, `infra.interpreters`) from the function's own archive, with the function's environment,
less a bare interpreter started the same way. `-B` because Lambda's task root is read-only: what a
cold start compiles is not kept. The archive as shipped holds the runtime's bytecode; the same
import from its sources alone is shown beside it.
"""

from __future__ import annotations

import csv
import math
import os
import random
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import inputs
from bench.core import Benchmark, Context, Result, largest_first, median_of, note_lines, number, table, timed, verdict
from bench.stacks import BenchStack, ingest, local_stack
from infra.interpreters import Interpreter, find_interpreter
from ingest.api import ApiClient, segment
from local.apigw import Request, Routes, proxy_event
from local.registry import FunctionSpec
from local.runtimes import sdk_folder

CLIENT_THREADS = 8
# One request in this many asks for an email nobody uploaded (a 404 answered by the function).
MISS_EVERY = 10
# The highest stage throttle and quota the configuration accepts (infra/config.py): far above
# what 8 local threads can send, so no request is refused with 429.
UNTHROTTLED = {"apiThrottleRateLimit": 10_000, "apiThrottleBurstLimit": 5_000, "apiQuotaPerDay": 10_000_000}
IMPORT_TARGET_MS = 300.0
HANDLER_PACKAGES = ("producer", "worker", "query")
USERS_ROUTE = "/users/{email}"
BOTO3_FLOOR = "import boto3; boto3.client('dynamodb')"


# --- load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """A fixed list of calls run from a pool of threads: each call's latency and outcome, and the wall time."""

    seconds: float
    latencies: list[float]
    outcomes: list[Any]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def under_load(calls: Sequence[Callable[[], Any]], threads: int) -> Load:
    """Run every call, `threads` at a time; the rate is calls over the wall time of all of them."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        seconds, timings = timed(lambda: list(pool.map(timed, calls)))
    return Load(seconds=seconds, latencies=[t for t, _ in timings], outcomes=[o for _, o in timings])


def percentile(samples: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (`share` 0.99 for p99): a value that was measured."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_summary(load: Load, expected: Sequence[Any]) -> dict[str, Any]:
    """p50/p99 in ms, requests per second, and the answers that were not the expected one."""
    return {
        "requests": len(load.latencies),
        "p50_ms": round(percentile(load.latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(load.latencies, 0.99) * 1000, 3),
        "rps": round(load.rate, 1),
        "errors": sum(got != want for got, want in zip(load.outcomes, expected, strict=True)),
        "statuses": {str(status): count for status, count in sorted(Counter(load.outcomes).items())},
    }


# --- the requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """One request of the load: an email and the status the API should answer."""

    email: str
    status: int

    @property
    def path(self) -> str:
        return f"/users/{segment(self.email)}"


def loaded_emails(path: Path) -> list[str]:
    with path.open(newline="") as rows:
        return [row["mail"] for row in csv.DictReader(rows)]


def asks(emails: Sequence[str], count: int) -> list[Ask]:
    """`count` requests over the loaded emails, every `MISS_EVERY`th for an unknown one (seeded)."""
    chooser = random.Random(inputs.SEED)
    return [
        Ask(f"nobody.{index}@example.invalid", 404) if index % MISS_EVERY == 0 else Ask(chooser.choice(emails), 200)
        for index in range(count)
    ]


def through_api(api: ApiClient, load: Sequence[Ask], threads: int) -> Load:
    return under_load([lambda ask=ask: api.get(ask.path).status for ask in load], threads)


@dataclass(frozen=True)
class DirectInvoke:
    """The query function's host called as the gateway calls it, with the proxy events it would build."""

    stack: BenchStack

    def spec_and_events(self, load: Sequence[Ask]) -> tuple[FunctionSpec, list[dict[str, Any]]]:
        local = self.stack.local
        assert local.registry is not None
        api = local.registry.apis[0]
        routes = Routes(api.methods)
        events, function_arn = [], None
        for ask in load:
            route = routes.route(ask.path, "GET")
            assert route is not None and route.resource_path == USERS_ROUTE, "the API has no GET /users/{email}"
            function_arn = route.method.function_arn
            request = Request("GET", f"/{api.stage_name}{ask.path}", (("Host", "127.0.0.1"),), b"", "127.0.0.1", 0)
            events.append(
                proxy_event(
                    api,
                    local.registry.account_id,
                    route,
                    request,
                    request_id="bench",
                    extended_request_id="bench",
                    received_at=0.0,
                    identity={},
                )
            )
        assert function_arn is not None
        return local.registry.function(function_arn), events

    def run(self, load: Sequence[Ask], threads: int) -> Load:
        spec, events = self.spec_and_events(load)
        host = self.stack.local.hosts[spec.name]
        return under_load([lambda event=event: _status(host.invoke(event)) for event in events], threads)


def _status(result: Any) -> Any:
    """The proxy response's status code, or the error type of a failed invocation."""
    if result.error is not None:
        return result.error.get("errorType", "error")
    return result.payload["statusCode"]


def unauthenticated(stack: BenchStack) -> ApiClient:
    """A client without key or signature: the gateway answers 403 itself, never calling the function."""
    return ApiClient(stack.target.outputs["apiUrl"], api_key=None, signer=None, label="bench (no key)")


def measure_api(ctx: Context, stack: BenchStack, emails: Sequence[str]) -> dict[str, Any]:
    count = ctx.pick(tiny=20, quick=400, full=2000)
    load = asks(emails, count)
    warm_up = asks(emails, 2 * CLIENT_THREADS)  # every function process started before timing
    api = stack.target.api()
    direct = DirectInvoke(stack)
    through_api(api, warm_up, CLIENT_THREADS)
    ctx.progress(f"query_api: {count} requests through the API, {CLIENT_THREADS} threads")
    via_api = latency_summary(through_api(api, load, CLIENT_THREADS), [a.status for a in load])
    ctx.progress("query_api: the same through the function host alone")
    direct.run(warm_up, CLIENT_THREADS)
    via_host = latency_summary(direct.run(load, CLIENT_THREADS), [a.status for a in load])
    ctx.progress("query_api: the same refused by the gateway (no key)")
    via_gateway = latency_summary(through_api(unauthenticated(stack), load, CLIENT_THREADS), [403] * len(load))
    return {
        "threads": CLIENT_THREADS,
        "requests": count,
        "miss_every": MISS_EVERY,
        "throttle": UNTHROTTLED,
        "api": via_api,
        "function_host": via_host,
        "gateway_refusal": via_gateway,
        "gateway_overhead_p50_ms": round(via_api["p50_ms"] - via_host["p50_ms"], 3),
    }


# --- cold imports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProbe:
    """A function's archive unpacked as Lambda's task root, imported in fresh isolated interpreters of its
    runtime. `shipped`: the archive as deployed, its bytecode included; otherwise its sources alone."""

    spec: FunctionSpec
    task_root: Path
    runtime_dir: Path
    endpoint_url: str
    interpreter: Interpreter
    shipped: bool

    def environment(self) -> dict[str, str]:
        """The function's variables and what boto3 reads at import on Lambda; dummy keys (nothing is called)."""
        region = self.spec.arn.split(":")[3]
        return {
            **{key: str(value) for key, value in self.spec.environment.items()},
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "BENCHIMPORT000000000",
            "AWS_SECRET_ACCESS_KEY": "bench-import-only",
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "TZ": ":UTC",
        }

    def seconds(self, statement: str) -> float:
        """Wall time of one fresh interpreter running `statement` after putting the task root on sys.path."""
        seconds, _ = timed(lambda: self._run(statement))
        return seconds

    def import_profile(self) -> dict[str, float]:
        """Milliseconds of the handler's import spent in each top-level package's own modules (`-X
        importtime`, self times summed), largest first: where a cold start's import goes."""
        stderr = self._run(f"import {self.module}", flags=("-X", "importtime"))
        by_package: dict[str, float] = {}
        for line in stderr.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) != 3 or not fields[0].strip().isdigit():
                continue  # the header line, or anything else the interpreter wrote
            package = fields[2].strip().split(".")[0]
            package = "the standard library" if package in sys.stdlib_module_names else package
            by_package[package] = by_package.get(package, 0.0) + int(fields[0]) / 1000
        return dict(largest_first(by_package))

    def _run(self, statement: str, *, flags: tuple[str, ...] = ()) -> str:
        """Run `statement` in one fresh interpreter after putting the task root on sys.path; its stderr."""
        self._check_bytecode()
        # -B, as on Lambda: its task root is read-only, so nothing a run compiles is kept for the next.
        code = f"import sys; sys.path[:0] = [{str(self.task_root)!r}, {str(self.runtime_dir)!r}]; {statement}"
        command = [str(self.interpreter.executable), "-I", "-S", "-B", *flags, "-c", code]
        done = subprocess.run(command, env=self.environment(), cwd=self.runtime_dir, capture_output=True)
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"{self.spec.name}: import failed:\n{stderr[-2000:]}")
        return stderr

    def median_ms(self, statement: str, repeats: int) -> float:
        return median_of(self.seconds(statement) for _ in range(repeats)) * 1000

    def _check_bytecode(self) -> None:
        """The task root holds the runtime's bytecode exactly when it stands for the shipped archive: `-B`
        only stops the interpreter from writing bytecode, and a file left there would be read."""
        found = next(self.task_root.rglob(f"*.{self.interpreter.cache_tag}.pyc"), None) is not None
        if found != self.shipped:
            held = "holds bytecode" if found else f"holds no {self.interpreter.cache_tag} bytecode"
            kind = "the shipped archive" if self.shipped else "sources alone"
            raise RuntimeError(f"{self.spec.name}: the task root {held}, so an import would not measure {kind}")

    @property
    def module(self) -> str:
        return self.spec.handler.rpartition(".")[0]


def _unpack(archive: Path, task_root: Path, *, bytecode: bool) -> Path:
    with zipfile.ZipFile(archive) as unpacked:
        names = [name for name in unpacked.namelist() if bytecode or not name.endswith(".pyc")]
        unpacked.extractall(task_root, members=names)
    return task_root


def probes(ctx: Context, stack: BenchStack) -> dict[str, tuple[ImportProbe, ImportProbe]]:
    """Per handler package, a probe of its shipped archive and one of its sources alone, beside the SDK
    its runtime provides (`local.runtimes`, the SDK functions run with locally, compiled by that runtime)."""
    local = stack.local
    assert local.registry is not None
    root = ctx.work / "query_api-imports"
    found = {}
    for spec in local.registry.functions.values():
        if spec.package not in HANDLER_PACKAGES or spec.package in found:
            continue
        interpreter = find_interpreter(spec.runtime)
        found[spec.package] = tuple(
            ImportProbe(
                spec,
                _unpack(spec.archive, root / spec.package / kind, bytecode=shipped),
                sdk_folder(spec.runtime),
                stack.emulator.endpoint_url,
                interpreter,
                shipped,
            )
            for kind, shipped in (("shipped", True), ("sources", False))
        )
    return found  # type: ignore[return-value]


def measure_imports(ctx: Context, stack: BenchStack) -> dict[str, Any]:
    found = probes(ctx, stack)
    repeats = ctx.repeats
    any_probe = next(iter(found.values()))[0]
    bare_ms = any_probe.median_ms("pass", repeats)
    handlers = {}
    for package in HANDLER_PACKAGES:
        shipped, sources = found[package]
        ctx.progress(
            f"query_api: importing {shipped.module} in {repeats} fresh interpreters ({shipped.interpreter.runtime})"
        )
        statement = f"import {shipped.module}"
        shipped_ms = shipped.median_ms(statement, repeats) - bare_ms
        sources_ms = sources.median_ms(statement, repeats) - bare_ms
        handlers[package] = {
            "module": shipped.module,
            "import_ms": round(shipped_ms, 1),
            "import_sources_ms": round(sources_ms, 1),
            "met": shipped_ms < IMPORT_TARGET_MS,
            "profile_ms": {package: round(ms, 1) for package, ms in list(shipped.import_profile().items())[:6]},
        }
    # The reference: what any handler that talks to DynamoDB pays before its own code, the runtime's
    # boto3 imported and one client made (the handlers make theirs at import, as Lambda advises).
    floor_ms = any_probe.median_ms(BOTO3_FLOOR, repeats) - bare_ms
    return {
        "repeats": repeats,
        "interpreter": f"{any_probe.interpreter.runtime} (CPython {any_probe.interpreter.version_text})",
        "bare_interpreter_ms": round(bare_ms, 1),
        "boto3_client_ms": round(floor_ms, 1),
        "target_ms": IMPORT_TARGET_MS,
        **handlers,
    }


# --- the benchmark ---------------------------------------------------------------------------------


def run(ctx: Context) -> Result:
    users = ctx.pick(tiny=50, quick=500, full=5_000)
    load_before = os.getloadavg()[0]
    csv_path = inputs.write_csv(ctx.work / f"query-api-users-{users}.csv", users)
    with local_stack(ctx, "query_api", overrides=UNTHROTTLED) as stack:
        ctx.progress(f"query_api: loading {users} users")
        ingest(stack.target, csv_path, users, timeout=600)
        latency = {"users": users, **measure_api(ctx, stack, loaded_emails(csv_path))}
        imports = measure_imports(ctx, stack)
    return {"latency": latency, "imports": imports, "load_average_1m": round(load_before, 2)}


def render(result: Result) -> str:
    latency, imports = result["latency"], result["imports"]
    rows = [
        ("API: gateway + query function", latency["api"]),
        ("function host alone (same events)", latency["function_host"]),
        ("gateway alone (refused: no API key)", latency["gateway_refusal"]),
    ]
    load_table = table(
        ["path", "p50 ms", "p99 ms", "requests/s", "requests", "errors", "statuses"],
        [
            (name, s["p50_ms"], s["p99_ms"], s["rps"], s["requests"], s["errors"], _statuses(s["statuses"]))
            for name, s in rows
        ],
    )
    import_table = table(
        ["handler", "module", "import ms (as shipped)", "import ms (sources alone)", "target"],
        [
            (
                package,
                f"`{imports[package]['module']}`",
                imports[package]["import_ms"],
                imports[package]["import_sources_ms"],
                f"< {number(imports['target_ms'])} ms: {verdict(imports[package]['met'])}",
            )
            for package in HANDLER_PACKAGES
        ],
    )
    notes = [
        f"`GET /users/{{email}}` on 127.0.0.1: {latency['requests']} requests from {latency['threads']} client"
        f" threads against a dev stack holding {latency['users']} users; one request in {latency['miss_every']}"
        " asks for an unknown email (404 is its expected answer). Errors: answers other than the expected one.",
        f"The stage throttle is raised to {latency['throttle']['apiThrottleRateLimit']} rps (burst"
        f" {latency['throttle']['apiThrottleBurstLimit']}) and the key's quota to"
        f" {latency['throttle']['apiQuotaPerDay']}/day, so no 429 measures the dev stack's 20 rps throttle.",
        "Each client request opens a new connection (urllib), as `python -m ingest` does. 1-minute load"
        f" average {number(result['load_average_1m'])} when the benchmark began.",
        "Function host alone: the same proxy events handed to the query function's host directly (its warm"
        " processes, the same threads). The gateway's own cost is the difference:"
        f" {number(latency['gateway_overhead_p50_ms'])} ms at p50.",
        "Gateway alone: the same requests without the API key, refused with 403 by the gateway before any"
        " function is called: the HTTP server, routing and key check only.",
    ]
    import_notes = [
        f"Each handler module imported in a fresh `python -I -S -B` of the function's runtime"
        f" ({imports['interpreter']}) from its function's unpacked archive, with the function's environment;"
        f" median of {imports['repeats']}, less a bare interpreter started the same way"
        f" ({number(imports['bare_interpreter_ms'])} ms). `-B`: Lambda's task root is read-only, so a cold start"
        " keeps nothing it compiles.",
        "As shipped: the archive as deployed, with the bytecode the runtime's interpreter compiled into it"
        " (`infra/bytecode.py`). Sources alone: the same archive without it, so the handler and the bundled"
        " libraries are compiled at import, as every cold start did before.",
    ]
    profiles = [
        (package, _largest(imports[package]["profile_ms"]))
        for package in HANDLER_PACKAGES
        if imports[package].get("profile_ms")
    ]
    where = (
        "Where a shipped import's time goes (`-X importtime`, one run per handler; the time of each package's"
        " own modules, so `handlers` includes making the boto3 clients at import, which loads botocore's service"
        " models):\n\n" + table(["handler", "largest shares, ms"], profiles)
        if profiles
        else ""
    )
    if "boto3_client_ms" in imports:
        import_notes.append(
            f"Reference, same interpreter and environment: `{BOTO3_FLOOR}` (the runtime's boto3, bytecode"
            f" cached) takes {number(imports['boto3_client_ms'])} ms — what every handler pays before its own"
            " code, since each makes its clients at import."
        )
    return "\n\n".join(
        [
            "### Latency under load\n",
            load_table,
            note_lines(notes),
            "### Cold start: handler import\n",
            import_table,
            note_lines(import_notes),
            *([where] if where else []),
        ]
    )


def _largest(milliseconds: dict[str, float]) -> str:
    return ", ".join(f"{package} {number(ms)}" for package, ms in largest_first(milliseconds))


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in statuses.items())


BENCHMARK = Benchmark(name="query_api", title="Query API: latency and cold start", run=run, render=render)
