"""One running local stack: the emulator, the program deployed onto it, and the runtime around it.

`LocalStack(options).start()` does, in order: start the emulator on 127.0.0.1; bind the API's port
(the program's stage URL must point at it while the program runs); deploy the program
(`local.deployer`); read the registry of what was declared; give the emulator the resource
policies it enforces; check that every function imports; start the function hosts, the
asynchronous invoker, the S3 notification pump, the SQS pollers and the API; and write the stack's
state folder (`outputs.json`, `logs/`), which `python -m ingest local outputs` and other tools read.
`stop()` undoes all of it, whatever point start-up reached.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pulumi

from local.apigw import ApiGateway, InvokeOutcome
from local.async_invoke import LAMBDA_RETRY_DELAYS, AsyncInvoker
from local.deployer import Deployment, Revocation, deploy
from local.emulator import Credentials, Emulator, InvokeRequest, InvokeResponse
from local.esm import QueuePoller
from local.functions import OWNER_ONLY_FILE, OWNER_ONLY_FOLDER, FunctionHost, HostClosed, InvocationResult
from local.log_shipping import LogShipper
from local.netns import refusal
from local.project import PROJECT, stack_region, stack_settings
from local.registry import FunctionSpec, NotEmulated, Registry, permits_invoke
from local.runtimes import Runtime, resolve
from local.state import OUTPUTS_FILE, STATE_ROOT, hold_stack, process_started, state_dir

# Invocations of one function at once when neither the program nor an event source says otherwise.
DEFAULT_FUNCTION_CONCURRENCY = 10

# Local mode's own log sources, beside each function's (named as the function): IAM's refusals, the
# Lambda service's (event sources, asynchronous retries, log shipping), S3's notifications, and the
# API's access log. Each is a file in the state folder's `logs/`.
IAM_LOG, LAMBDA_LOG, S3_LOG, API_LOG = "iam", "lambda", "s3", "api"
LOCAL_SOURCES = frozenset({IAM_LOG, LAMBDA_LOG, S3_LOG, API_LOG})


class StackRunning(RuntimeError):
    """The stack already runs locally (another `local up`)."""


class FunctionInitError(RuntimeError):
    """A function's code does not import: names the function, carries its traceback."""


class StartInterrupted(RuntimeError):
    """`stop()` was called while start-up ran: start-up starts nothing more and ends with this."""


class PortTaken(OSError):
    """A port asked for is in use. `setting` names the `LocalOptions` field that asked for it
    (`api_port`, `emulator_port`), for the command line to name its own option."""

    def __init__(self, message: str, port: int, setting: str) -> None:
        super().__init__(errno.EADDRINUSE, message)
        self.port = port
        self.setting = setting


@dataclass(frozen=True)
class LocalOptions:
    """How to run a stack locally."""

    stack: str = "dev"
    api_port: int = 0
    """The API's port (0: any free one)."""
    emulator_port: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Settings replacing `Pulumi.<stack>.yaml`'s (short keys), as `--set key=value`."""
    revocations: Sequence[Revocation] = ()
    state_root: Path = STATE_ROOT
    retry_delays: Sequence[float] = LAMBDA_RETRY_DELAYS
    """Delays before the asynchronous retries (Lambda's by default)."""
    transformations: Sequence[pulumi.ResourceTransformation] = ()
    """Stack transformations applied to the program's resources (`bench/naive/`: the article's design)."""
    strict: bool = False
    """Refuse to start rather than run a function on another Python than its runtime's (`RuntimeMissing`)."""
    config_file: Path | None = None
    """The stack's settings file (`--config-file`), instead of `Pulumi.<stack>.yaml` at the project's root."""


# The user's AWS settings: local mode must never pick them up, neither in its own clients nor in the
# functions' processes (which get an environment of their own, `local.functions`).
_USER_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
)


def seal_environment() -> None:
    """Cut this process off from the user's AWS configuration: no profile, keys, files or metadata.

    Every client local mode makes names the emulator's endpoint and credentials explicitly; this
    makes sure nothing else can fill in for a missing one (an offline emulator that reached a real
    queue through a user's profile is a known failure of a popular tool).
    """
    for name in _USER_AWS_VARIABLES:
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


Console = Callable[[str, str], None]
"""What shows a log line (source, text) on a terminal, after its file has it (`local.console`)."""


def every_line(out: TextIO) -> Console:
    """The console that prints every log line, its source as prefix."""

    def show(source: str, text: str) -> None:
        out.write(f"[{source}] {text}\n")
        out.flush()

    return show


class LogSink:
    """Function and runtime log lines: kept per source in files, every one, and handed to a console."""

    def __init__(self, folder: Path, console: Console) -> None:
        self._folder = folder
        self._console = console
        self._lock = threading.Lock()
        self._files: dict[str, TextIO] = {}
        self._closed = False
        folder.mkdir(mode=OWNER_ONLY_FOLDER, parents=True, exist_ok=True)

    def line(self, source: str, text: str) -> None:
        with self._lock:
            if self._closed:  # a late line from a thread still winding down
                return
            handle = self._files.get(source)
            if handle is None:
                handle = self._files[source] = _owner_only_log(self._folder / f"{source}.log")
            handle.write(text + "\n")
            handle.flush()
            self._console(source, text)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for handle in self._files.values():
                handle.close()
            self._files.clear()


def _owner_only_log(path: Path) -> TextIO:
    """A log file to append to, readable by its owner only: its lines name jobs and the keys of
    uploads. The mode is given when the file is created (a chmod after would leave a moment when
    anyone could open it)."""
    return open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, OWNER_ONLY_FILE), "a", encoding="utf-8")


@dataclass
class Started:
    """What start-up reports."""

    outputs: dict[str, Any]
    created: list[tuple[str, str]]
    not_emulated: list[tuple[str, str, str]]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    """One line each: what runs otherwise than on AWS (a runtime's interpreter missing)."""


class LocalStack:
    """A stack deployed onto the emulator and running; `stop()` ends everything it started."""

    def __init__(self, options: LocalOptions, out: TextIO, console: Console | None = None) -> None:
        """Log lines go to the state folder's `logs/` and to `console` (default: every line on `out`)."""
        self.options = options
        self.console = console or every_line(out)
        self.state = state_dir(options.state_root, options.stack)
        self.emulator: Emulator | None = None
        self.registry: Registry | None = None
        self.gateways: dict[str, ApiGateway] = {}
        self.hosts: dict[str, FunctionHost] = {}
        self.invoker: AsyncInvoker | None = None
        self.pollers: list[QueuePoller] = []
        self.shipper: LogShipper | None = None
        self.logs: LogSink | None = None
        self._credentials: dict[str, Credentials] = {}
        self.warnings: list[str] = []
        self._api_urls: dict[str, str] = {}
        self._spare_gateway: ApiGateway | None = None
        self._stopping = threading.Event()
        self._parts = threading.Lock()
        """Held while start-up adds a part `stop()` must end, and by `stop()` as it begins (`_adding`)."""
        self._pump: threading.Thread | None = None
        self._lock: int | None = None
        self.published = False
        """Its outputs are written: the stack is ready for users and tools (`outputs.json`)."""
        """The stack's lock (`local.state.hold_stack`) once held: the state folder is this process's."""

    # --- start-up ---------------------------------------------------------------------------------

    def start(self) -> Started:
        """Start everything, in order. `stop()` may be called from another thread at any point of it:
        start-up then adds nothing more and ends with `StartInterrupted`."""
        began = time.monotonic()
        options = self.options
        seal_environment()
        # The stack first: its name names the lock and the folder claimed (`dev/`, `..` must never).
        settings = stack_settings(options.stack, options.config_file)  # fails naming the stacks there are
        with self._adding():
            self._claim_state_dir()
            self.logs = LogSink(self.state / "logs", self.console)
        region = stack_region(options.stack, {**settings, **options.overrides}, options.config_file)
        with self._adding():
            self.emulator = Emulator(region)
            self.emulator.log = lambda line: self._log(IAM_LOG, line)
            with _port_named(options.emulator_port, "emulator_port", "the emulator"):
                self.emulator.start(options.emulator_port)
            # `--port` is checked before the program runs: a port in use fails start-up at once.
            with _port_named(options.api_port, "api_port", "the API"):
                self._spare_gateway = self._bound_gateway(options.api_port)
        deployment = deploy(
            options.stack,
            self.emulator,
            self._api_base_url,
            overrides=options.overrides,
            revocations=options.revocations,
            transformations=options.transformations,
            config_file=options.config_file,
        )
        registry = self.registry = Registry.from_plan(deployment.plan, region, self.emulator.account_id)
        self.emulator.resource_policies.update(registry.resource_policies)
        self._start_functions(registry)
        self._start_event_sources(registry)
        self._start_apis(registry)
        outputs = self._outputs(deployment)
        with self._adding():  # not after stop() removed it: a state file says the stack runs
            self._write_state(outputs, deployment.plan.secret_outputs)
            self.published = True
        created = [(r.type, r.name) for r in deployment.plan.resources if r.custom]
        emulated = {(t, n) for t, n, _ in deployment.not_emulated}
        return Started(
            outputs=outputs,
            created=[c for c in created if c not in emulated],
            not_emulated=deployment.not_emulated,
            seconds=time.monotonic() - began,
            warnings=list(self.warnings),
        )

    @contextlib.contextmanager
    def _adding(self) -> Iterator[None]:
        """Around adding a part `stop()` must end (a folder claimed, a port, a thread, a process host):
        either `stop()` finds it, or, once `stop()` has begun, it is not added (`StartInterrupted`)."""
        with self._parts:
            if self._stopping.is_set():
                raise StartInterrupted(f"stack {self.options.stack!r}: stopped during start-up")
            yield

    def _claim_state_dir(self) -> None:
        """Hold the stack's lock, then empty its state folder. Refused, it touches nothing: the state
        folder is another process's, running or starting."""
        lock = hold_stack(self.options.state_root, self.options.stack)
        if lock is None:
            raise StackRunning(
                f"stack {self.options.stack!r} already runs locally (state in {self.state});"
                " stop it first (Ctrl-C in its terminal)"
            )
        self._lock = lock
        if self.state.exists():
            shutil.rmtree(self.state)
        # Another user of this machine must not list or open what it will hold: the outputs (the API
        # keys, the administrator's keys), the logs, the functions' code and scratch files.
        self.state.mkdir(mode=OWNER_ONLY_FOLDER, parents=True)

    def _bound_gateway(self, port: int) -> ApiGateway:
        """An API Gateway listening on 127.0.0.1:`port`, answering 503 until its API is set."""
        assert self.emulator is not None
        gateway = ApiGateway(
            None,
            region=self.emulator.region,
            account_id=self.emulator.account_id,
            invoke=self._invoke_for_api,
            permissions=[],
            iam_authorizer=self.emulator.authorize_signed,
            log=lambda line: self._log(API_LOG, line),
        )
        gateway.bind(port)
        return gateway

    def _api_base_url(self, api_id: str) -> str:
        """The local URL of a REST API the program is creating: the first on `--port`, bound before deploying."""
        with self._adding():
            if api_id not in self.gateways:
                gateway = self._spare_gateway or self._bound_gateway(0)
                self._spare_gateway = None
                self.gateways[api_id] = gateway
                self._api_urls[api_id] = f"http://127.0.0.1:{gateway.port}"
            return self._api_urls[api_id]

    def _credentials_of(self, spec: FunctionSpec) -> Credentials:
        """Fresh STS credentials of the function's own role, issued by the emulator."""
        assert self.emulator is not None
        credentials = self.emulator.assume_role(spec.role_arn, session_name=spec.name)
        self._credentials[spec.name] = credentials
        return credentials

    def _role_client(self, spec: FunctionSpec, service: str) -> Any:
        """A client acting with the function's role, as Lambda's own pollers and destinations do."""
        assert self.emulator is not None
        credentials = self._credentials.get(spec.name) or self._credentials_of(spec)
        return self.emulator.client(service, credentials)

    def _start_functions(self, registry: Registry) -> None:
        assert self.emulator is not None
        work = self.state / "functions"
        faults = self.emulator.faults
        by_source = {s.function_arn: s.max_concurrency for s in registry.queue_sources}
        runtimes = self._runtimes(registry)
        for spec in registry.functions.values():
            concurrency = spec.reserved_concurrency or by_source.get(spec.arn) or DEFAULT_FUNCTION_CONCURRENCY
            with self._adding():
                self.hosts[spec.name] = FunctionHost(
                    spec,
                    credentials=lambda spec=spec: self._credentials_of(spec),
                    endpoint_url=self.emulator.endpoint_url,
                    region=registry.region,
                    log=self._function_line,
                    work_dir=work / spec.name,
                    max_concurrency=concurrency,
                    kills=lambda spec=spec: faults.kill_order(spec.name),
                    runtime=runtimes[spec.runtime],
                )
        with self._adding():
            self.shipper = LogShipper(
                lambda spec: self._role_client(spec, "logs"), lambda line: self._log(LAMBDA_LOG, line)
            )
        self._check_imports()
        with self._adding():
            self.invoker = AsyncInvoker(
                registry.async_configs,
                self._invoke,
                self._send_record,
                log=lambda line: self._log(LAMBDA_LOG, line),
                retry_delays=self.options.retry_delays,
            )
        self.emulator.on_invoke = self._on_invoke_api_call

    def _runtimes(self, registry: Registry) -> dict[str, Runtime]:
        """Each declared runtime's interpreter and SDK, once; a missing interpreter is one warning line
        (or, under `--strict`, `RuntimeMissing`)."""
        runtimes = {}
        for name in sorted({spec.runtime for spec in registry.functions.values()}):
            runtime = runtimes[name] = resolve(name, strict=self.options.strict)
            if runtime.fallback is not None:  # printed once, with what start-up prints
                self.warnings.append(runtime.fallback)
        network = refusal()  # functions' own connections are still checked; processes they start are not
        if network is not None and registry.functions:
            self.warnings.append(network)
        return runtimes

    def _check_imports(self) -> None:
        """Each function's init phase, once, so that code that does not import stops start-up, named."""
        failures = []
        threads = []
        for name, host in self.hosts.items():

            def warm(name: str = name, host: FunctionHost = host) -> None:
                try:
                    error = host.warm()
                except HostClosed:  # stop() closed it: start-up ends below
                    return
                if error is not None:
                    failures.append((name, error))

            thread = threading.Thread(target=warm, name=f"warm-{name}")
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        if self._stopping.is_set():  # what failed was killed by stop()
            raise StartInterrupted(f"stack {self.options.stack!r}: stopped during start-up")
        if failures:
            text = "\n".join(f"function {name} does not import:\n{error}" for name, error in failures)
            raise FunctionInitError(text)

    def _start_event_sources(self, registry: Registry) -> None:
        assert self.emulator is not None
        faults = self.emulator.faults
        with self._adding():
            self._pump = threading.Thread(target=self._pump_s3_events, name="s3-notifications", daemon=True)
            self._pump.start()
        for source in registry.queue_sources:
            spec = registry.function(source.function_arn)
            poller = QueuePoller(
                source,
                spec,
                sqs=self._role_client(spec, "sqs"),
                queue_url=registry.queue_urls[source.queue_arn],
                region=registry.region,
                invoke=lambda spec, event: self._invoke(spec, event, None),
                log=lambda line: self._log(LAMBDA_LOG, line),
                deliveries=lambda spec=spec: faults.delivery("sqs", spec.name),
            )
            with self._adding():
                poller.start()
                self.pollers.append(poller)

    def _start_apis(self, registry: Registry) -> None:
        for api in registry.apis:
            gateway = self.gateways[api.id]
            gateway.set_permissions(registry.permissions)
            gateway.set_api(api)
            with self._adding():
                gateway.start()

    # --- the runtime's wiring -------------------------------------------------------------------

    def _log(self, source: str, line: str) -> None:
        if self.logs is not None:
            self.logs.line(source, line)

    def _function_line(self, function_name: str, line: str) -> None:
        """A function's log line: on the console and in its file, and in its CloudWatch log group."""
        self._log(function_name, line)
        if self.shipper is not None and self.registry is not None:
            self.shipper.add(self.registry.functions[function_name], line)

    def _invoke(self, spec: FunctionSpec, event: Any, request_id: str | None) -> InvocationResult:
        return self.hosts[spec.name].invoke(event, request_id=request_id)

    def _invoke_for_api(self, function_arn: str, event: dict[str, Any]) -> InvokeOutcome:
        assert self.registry is not None
        result = self._invoke(self.registry.function(function_arn), event, None)
        return InvokeOutcome(payload=result.payload, error=result.error)

    def _send_record(self, spec: FunctionSpec, destination: str, record: str) -> None:
        assert self.registry is not None
        if not destination.startswith("arn:aws:sqs:"):
            raise NotEmulated(f"local mode sends invocation records to SQS queues only, not {destination}")
        self._role_client(spec, "sqs").send_message(QueueUrl=self.registry.queue_urls[destination], MessageBody=record)

    def _on_invoke_api_call(self, request: InvokeRequest) -> InvokeResponse:
        """Lambda's Invoke API (e.g. the producer continuing a long file with InvocationType=Event)."""
        assert self.registry is not None and self.invoker is not None
        try:
            spec = self.registry.function(request.function_name)
        except LookupError as error:
            body = {"Type": "User", "message": str(error)}
            return InvokeResponse(status=404, payload=json.dumps(body).encode())
        event = json.loads(request.payload or b"{}")
        if request.invocation_type == "DryRun":
            return InvokeResponse(status=204, payload=b"")
        if request.invocation_type == "Event":
            self.invoker.submit(spec, event)
            return InvokeResponse(status=202, payload=b"")
        result = self._invoke(spec, event, None)
        if result.error is not None:
            return InvokeResponse(status=200, payload=json.dumps(result.error).encode(), function_error="Unhandled")
        return InvokeResponse(status=200, payload=json.dumps(result.payload).encode())

    def _pump_s3_events(self) -> None:
        """S3 notifications → asynchronous invocations, where the function's resource policy allows S3."""
        assert self.emulator is not None and self.registry is not None and self.invoker is not None
        while not self._stopping.is_set():
            try:
                function_arn, event = self.emulator.s3_events.get(timeout=0.2)
            except Exception:  # queue.Empty
                continue
            try:
                spec = self.registry.function(function_arn)
            except LookupError as error:
                self._log(S3_LOG, f"notification for an unknown function dropped: {error}")
                continue
            bucket = event["Records"][0]["s3"]["bucket"]["arn"]
            if not permits_invoke(
                self.registry.permissions, spec.name, "s3.amazonaws.com", bucket, self.emulator.account_id
            ):
                denied = f"{spec.name}: S3 may not invoke it (no lambda:InvokeFunction permission for {bucket})"
                self._log(S3_LOG, denied)
                continue
            self.invoker.submit(spec, event)
            order = self.emulator.faults.delivery("s3", spec.name)
            if order is not None:  # S3 delivers at least once: the same event again, as a new invocation
                self.invoker.submit(spec, event, delay_seconds=order.delay_seconds)
                order.applied(1)

    # --- outputs and state ----------------------------------------------------------------------

    def _outputs(self, deployment: Deployment) -> dict[str, Any]:
        assert self.emulator is not None
        admin = self.emulator.admin
        return {
            **deployment.plan.outputs,
            "awsEndpointUrl": self.emulator.endpoint_url,
            "awsRegion": self.emulator.region,
            "awsAccessKeyId": admin.access_key_id,
            "awsSecretAccessKey": admin.secret_access_key,
        }

    def _write_state(self, outputs: dict[str, Any], secrets: set[str]) -> None:
        state = {
            "pid": os.getpid(),
            "pidStarted": process_started(os.getpid()),
            "stack": self.options.stack,
            "project": PROJECT,
            "outputs": outputs,
            "secretOutputs": sorted(secrets | {"awsSecretAccessKey"}),
        }
        # It holds the API keys and the local administrator's keys: it is created readable by its owner
        # only (a file written first and chmod-ed after is readable by anyone for that moment), never
        # over a file or link already there (O_EXCL), then renamed over the last one, which is atomic
        # (https://docs.python.org/3/library/os.html#os.replace).
        temporary = self.state / f".{OUTPUTS_FILE}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(json.dumps(state, indent=2))
            os.replace(temporary, self.state / OUTPUTS_FILE)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    # --- shutdown -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe at any point of start-up, also while
        `start()` runs on another thread (it adds nothing once this has begun)."""
        with self._parts:
            self._stopping.set()
        if self._lock is not None:  # a start refused leaves the state of the stack that runs alone
            (self.state / OUTPUTS_FILE).unlink(missing_ok=True)
        for gateway in [*self.gateways.values(), *filter(None, [self._spare_gateway])]:
            _quietly(gateway.stop)
        for poller in self.pollers:
            poller.stop()
        if self.invoker is not None:
            _quietly(self.invoker.stop)
        for host in self.hosts.values():
            _quietly(host.close)
        if self.shipper is not None:
            _quietly(self.shipper.stop)
        for poller in self.pollers:
            poller.join(2)
        if self.emulator is not None:
            _quietly(self.emulator.stop)
        if self.logs is not None:
            self.logs.close()
        if self._lock is not None:
            os.close(self._lock)  # the last step: another start may now take the stack
            self._lock = None


@contextlib.contextmanager
def _port_named(port: int, setting: str, what: str) -> Iterator[None]:
    """A port in use, said as such (`PortTaken`, naming the setting that asked for it), not as the
    socket's `[Errno 98] Address already in use`."""
    try:
        yield
    except OSError as error:
        if error.errno != errno.EADDRINUSE or isinstance(error, PortTaken):
            raise
        raise PortTaken(f"port {port} on 127.0.0.1 is in use: {what} cannot listen there", port, setting) from error


def _quietly(step: Callable[[], None]) -> None:
    """Run one shutdown step; a part that fails to stop must not keep the others running."""
    try:
        step()
    except Exception as error:
        print(f"local mode: {step.__qualname__} failed while stopping: {error!r}", file=sys.stderr)
