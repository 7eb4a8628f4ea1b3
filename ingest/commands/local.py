"""`ingest local`: run a stack on this machine, and read the outputs of one running.

    python -m ingest local up [--stack dev] [--config-file PATH] [--port N] [--set key=value ...]
                              [--revoke ROLE=SID ...] [--logs [NAMES]]
    python -m ingest local outputs [--stack dev] [--json | --env] [--show-secrets]

`local up` deploys the stack's own program onto the emulator and runs it until Ctrl-C or SIGTERM
(`local.session`); `local outputs` prints the outputs of a stack running locally. The engine lives
in `local/`; this module is only the command line over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import signal
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from handlers.common.schema import DEFAULT_SCHEMA
from infra.config import ConfigError
from ingest.interrupts import EXIT_INTERRUPTED, INTERRUPTED, interrupt, wait_for_interrupt
from ingest.job_lines import JobSummary
from ingest.output import command
from ingest.targets import add_config_file_option, config_file_words, schema_of, stack_of, stack_words, state_dir_words
from local.project import stack_of_file
from local.state import STATE_ROOT, running_outputs

if TYPE_CHECKING:
    from local.session import LocalOptions, LocalStack, Started

# The engine (`local.session`: moto, Pulumi) is imported by the commands that run a stack, when they
# run: every other command of `python -m ingest` starts without it.

# Exit codes: 2 for what the user can fix (bad option, setting, stack, port), 1 when a stack is not running.
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 1

DEFAULT_STACK = "dev"
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class UpCommand:
    """`local up` as the user started it, for hints that start it again with something changed: the
    line they print is the user's own command (`python -m ingest local up …`, or `make up …` with
    make's variables when `make up` ran it), with that change, to copy as it is."""

    stack: str = DEFAULT_STACK
    port: int = DEFAULT_PORT
    emulator_port: int = 0
    sets: tuple[str, ...] = ()
    revokes: tuple[str, ...] = ()
    retry_delays: tuple[float, ...] | None = None
    logs: tuple[str, ...] = ()
    state_root: Path = STATE_ROOT
    from_make: bool = False
    strict: bool = False
    config_file: Path | None = None

    @classmethod
    def of(cls, options: argparse.Namespace, stack: str) -> UpCommand:
        """The command `options` are of, which start `stack` (`--stack`, or the one `--config-file` names)."""
        return cls(
            stack=stack,
            port=options.port,
            emulator_port=options.emulator_port,
            sets=tuple(options.set),
            revokes=tuple(options.revoke),
            retry_delays=options.retry_delays,
            logs=tuple(options.logs),
            state_root=options.state_dir,
            from_make=options.from_make,
            strict=options.strict,
            config_file=options.config_file,
        )

    def line(self, **changes: Any) -> str:
        """This command with `changes` (fields of this class), as one line to paste in this directory;
        a field changed is on it even where its value is the default."""
        changed = dataclasses.replace(self, **changes)
        return changed._make_line(set(changes)) if self.from_make else changed._line(set(changes))

    def _options(self) -> list[str]:
        """The options `make up` passes as ARGS (the Makefile's own variables aside)."""
        words = [w for item in self.sets for w in ("--set", item)]
        words += [w for item in self.revokes for w in ("--revoke", item)]
        if self.retry_delays is not None:
            words += ["--retry-delays", ",".join(f"{delay:g}" for delay in self.retry_delays)]
        if self.strict:
            words.append("--strict")
        return words + state_dir_words(self.state_root)

    def _line(self, explicit: set[str]) -> str:
        words = ["local", "up", "--stack", self.stack, *config_file_words(self.config_file), "--port", str(self.port)]
        if self.emulator_port or "emulator_port" in explicit:
            words += ["--emulator-port", str(self.emulator_port)]
        if self.logs:
            words += ["--logs", ",".join(self.logs)]
        return command(*words, *self._options())

    def _make_line(self, explicit: set[str]) -> str:
        """`make up` with the variables that differ from the Makefile's defaults (the same as the
        command's) or were changed; ARGS carries the other options."""
        words = ["make", "up"]
        if self.config_file is not None:
            words.append(f"CONFIG={shlex.quote(str(self.config_file))}")
        named = stack_of_file(self.config_file) if self.config_file is not None else DEFAULT_STACK
        if self.stack != named or "stack" in explicit:
            words.append(f"STACK={shlex.quote(self.stack)}")
        if self.port != DEFAULT_PORT or "port" in explicit:
            words.append(f"PORT={self.port}")
        if self.emulator_port or "emulator_port" in explicit:
            words.append(f"EMULATOR_PORT={self.emulator_port}")
        if self.logs:
            words.append(f"LOGS={shlex.quote(','.join(self.logs))}")
        if self._options():
            words.append(f"ARGS={shlex.quote(shlex.join(self._options()))}")
        return " ".join(words)


def start_errors() -> tuple[type[Exception], ...]:
    """What stops start-up with a message for the user (a setting, a stack, a port, the code, something
    of the program local mode does not emulate): exit 2."""
    from local.deployer import DeployError
    from local.registry import NotEmulated
    from local.runtimes import RuntimeMissing, RuntimeUnavailable
    from local.session import FunctionInitError, StackRunning

    return (
        ConfigError, FileNotFoundError, StackRunning, DeployError, FunctionInitError, NotEmulated, OSError,
        RuntimeMissing, RuntimeUnavailable,
    )  # fmt: skip


def pairs(items: list[str], option: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"{option} {item!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


def _delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, comma-separated (e.g. 60,120)") from None
    if not delays or any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds >= 0, comma-separated (e.g. 60,120)")
    return delays


# The ports a socket can bind: 0 (any free one) to 65535 (https://docs.python.org/3/library/socket.html
# checks the same: "bind(): port must be 0-65535").
_LAST_PORT = 65535


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= _LAST_PORT:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 0 (any free one) to {_LAST_PORT}")
    return port


def _words(text: str) -> tuple[str, ...]:
    words = tuple(word.strip() for word in text.split(","))
    if not all(words):
        raise argparse.ArgumentTypeError(f"{text!r}: expected names, comma-separated (e.g. worker,producer)")
    return words


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest local up` and `ingest local outputs`."""
    local = commands.add_parser("local", help="run a stack on this machine, on an AWS emulator").add_subparsers(
        dest="local_command", required=True
    )
    up = local.add_parser(
        "up",
        help="deploy the stack's program onto the emulator and run it until Ctrl-C",
        description="Deploy the stack's own program onto an AWS emulator on 127.0.0.1 and run it until Ctrl-C.",
        epilog="example: python -m ingest local up --stack dev --port 8080",
    )
    up.add_argument(
        "--stack",
        help="the stack whose Pulumi.<stack>.yaml to use (default: dev, or the one --config-file names)",
    )
    add_config_file_option(up)
    up.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="the API's port on 127.0.0.1 (default 8080; 0: any free)"
    )
    up.add_argument("--emulator-port", type=_port, default=0, help="the emulator's port (default: any free)")
    up.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a stack setting")
    up.add_argument(
        "--revoke",
        action="append",
        default=[],
        metavar="ROLE=SID",
        help="deploy without one statement of a role's policy (e.g. worker=WriteUsers), to see what fails",
    )
    up.add_argument(
        "--retry-delays",
        type=_delays,
        default=None,
        metavar="S,S",
        help="seconds before each asynchronous retry (default: Lambda's 60,120)",
    )
    up.add_argument(
        "--logs",
        type=_words,
        nargs="?",
        const=("all",),
        default=(),
        metavar="NAMES",
        help="show every log line as it comes (alone), or those of the functions and sources whose names hold one"
        " of NAMES (e.g. worker,producer); by default each job's start and end and every warning and error."
        " Every line is in .local/<stack>/logs/ either way",
    )
    up.add_argument(
        "--strict",
        action="store_true",
        help="refuse to start when a function's runtime (e.g. python3.13) is not installed here, rather than"
        " run it on this Python",
    )
    # Set by `make up`: its hints then name make's variables (PORT=N), which is what the user typed.
    up.add_argument("--from-make", action="store_true", help=argparse.SUPPRESS)
    up.add_argument("--state-dir", type=Path, default=STATE_ROOT, help=argparse.SUPPRESS)
    up.set_defaults(run=_run_up)
    outputs = local.add_parser(
        "outputs",
        help="print the outputs of a stack running locally",
        description="Print the outputs of a stack running locally, with the emulator's endpoint and admin keys.",
        epilog='example: eval "$(python -m ingest local outputs --env)"',
    )
    outputs.add_argument("--stack", default="dev", help="the stack (default: dev)")
    outputs.add_argument("--json", action="store_true", help="one JSON object, secrets shown")
    outputs.add_argument("--show-secrets", action="store_true", help="show secret outputs in the text form")
    outputs.add_argument(
        "--env",
        action="store_true",
        help='shell lines (eval "$(…)"): unset the shell\'s AWS session token and profile, export the'
        " emulator's AWS_* settings and each output as INGEST_<NAME>, and define `aws` to pass"
        " --endpoint-url $AWS_ENDPOINT_URL (aws-cli v1 sends sqs commands to AWS otherwise)",
    )
    outputs.add_argument("--state-dir", type=Path, default=STATE_ROOT, help=argparse.SUPPRESS)
    outputs.set_defaults(run=_run_outputs)


def _run_up(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    from local.async_invoke import LAMBDA_RETRY_DELAYS
    from local.deployer import Revocation
    from local.session import LocalOptions

    try:
        revocations = tuple(Revocation.parse(text) for text in options.revoke)
    except ValueError as error:
        parser.error(str(error))
    try:
        stack = stack_of(options)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    local_options = LocalOptions(
        stack=stack,
        api_port=options.port,
        emulator_port=options.emulator_port,
        overrides=pairs(options.set, "--set", parser),
        revocations=revocations,
        state_root=options.state_dir,
        retry_delays=options.retry_delays or LAMBDA_RETRY_DELAYS,
        strict=options.strict,
        config_file=options.config_file,
    )
    code = up(local_options, out, UpCommand.of(options, stack))
    # Everything this command started is stopped. Leave at once: the interpreter's own shutdown
    # would join the Pulumi engine's idle threads (seconds) and flush streams whose locks a
    # daemon thread frozen mid-write may hold (a hang that ignores Ctrl-C).
    out.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_outputs(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return show_outputs(
        options.stack,
        options.state_dir,
        form="json" if options.json else "env" if options.env else "text",
        show_secrets=options.show_secrets,
        out=out,
    )


def start_interruptibly(stack: LocalStack) -> Started:
    """`stack.start()`, with Ctrl-C and SIGTERM heard at any point of it: start-up runs on a thread of
    its own while this one, the main thread, waits for it or for a signal.

    Python runs a signal's handler in the main thread, and the handler's KeyboardInterrupt is raised
    wherever that thread is. Start-up runs the Pulumi engine, whose asyncio loop drops a callback the
    interrupt lands in (one that hands an RPC's result back to a registration, which then waits for
    ever) and which, having caught the interrupt, waits for every registration before raising it
    again: a `local up` that never ended (issue 19). Here the interrupt lands in this wait; the caller
    then calls `stack.stop()`, and start-up, still running on its thread, adds nothing more
    (`LocalStack.start`) and is left behind when the command leaves."""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def start() -> None:
        try:
            outcome["started"] = stack.start()
        except BaseException as error:  # raised again in the main thread
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=start, name="start-up", daemon=True).start()
    wait_for_interrupt(done)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["started"]


def owner_only_from_now() -> None:
    """What this process and the functions it runs create from now on is its user's alone (umask
    077): it runs a local stack, whose state folder holds secrets, logs and code a function writes.
    `LocalStack` gives the folders and files it names their modes itself; the umask covers what
    others create in them (the archives `zipfile` unpacks, bytecode, a function's scratch files)."""
    from local.functions import OWNER_ONLY_UMASK

    os.umask(OWNER_ONLY_UMASK)


def up(options: LocalOptions, out: TextIO, command: UpCommand | None = None) -> int:
    """Start the stack, print what is running, serve until Ctrl-C or SIGTERM; stop everything.
    `command` is how the user started it, for the hints (and what of the logs to show)."""
    from local.console import Console, source_matcher
    from local.session import LocalStack

    command = command or UpCommand(
        stack=options.stack, port=options.api_port, state_root=options.state_root, config_file=options.config_file
    )
    owner_only_from_now()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    console = Console(out, full=source_matcher(command.logs), summary=JobSummary())
    stack = LocalStack(options, out, console)
    started = None
    # On stderr, so that stdout stays what start-up prints; from here on Ctrl-C stops cleanly.
    print(f"local mode: starting stack {options.stack!r} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        started = start_interruptibly(stack)
        running = running_outputs(options.stack, options.state_root)  # the state file start() just wrote
        secrets = running.secrets if running else frozenset(started.outputs)
        out.write(render_started(options, started, secrets, command, stack.state / "logs"))
        out.flush()
        wait_for_interrupt()
    except KeyboardInterrupt:
        # Ready once its outputs are written (what users and tools wait for), even if Ctrl-C came before
        # start-up had handed back what it started.
        ready = started is not None or stack.published
        print(
            "\nlocal mode: stopping" if ready else "\nlocal mode: interrupted during start-up; stopping",
            file=sys.stderr,
        )
        return 0 if ready else EXIT_INTERRUPTED
    except Exception as error:
        if INTERRUPTED.came:  # the interrupt surfaced as another error: it is still an interrupt
            print("\nlocal mode: interrupted during start-up; stopping", file=sys.stderr)
            return EXIT_INTERRUPTED
        if not isinstance(error, start_errors()):
            raise
        print(f"error: {start_error(error, command)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        # A second Ctrl-C or SIGTERM while stopping must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_within(stack, STOP_TIMEOUT_SECONDS)
    return 0


def start_error(error: Exception, command: UpCommand) -> str:
    """What stopped start-up, for the user: a port in use says which setting to change and how, as a
    command to copy; an OSError says its own words, without Python's `[Errno N]`."""
    from local.session import PortTaken

    if isinstance(error, PortTaken):
        field = {"api_port": "port", "emulator_port": "emulator_port"}[error.setting]
        return f"{error.strerror}; start it on another port (0: any free one): {command.line(**{field: 0})}"
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error)


# How long stopping may take before the command leaves anyway, saying so (a part that does not stop
# must not keep the terminal or a service manager waiting).
STOP_TIMEOUT_SECONDS = 20.0


def stop_within(stack: LocalStack, seconds: float) -> None:
    """Stop the stack; if that takes longer than `seconds`, say so and return."""
    stopping = threading.Thread(target=stack.stop, name="stop", daemon=True)
    stopping.start()
    stopping.join(seconds)
    if stopping.is_alive():
        print(f"local mode: stopping took over {seconds:g} s; leaving without waiting further", file=sys.stderr)


def render_started(
    options: LocalOptions, started: Started, secrets: frozenset[str], command: UpCommand, logs: Path
) -> str:
    """What start-up prints: endpoints, resources, what is not emulated, outputs, first commands, what
    to try next, and what of the log lines (in `logs`) follows.

    The `secrets` outputs (the API keys, the local administrator's secret key) show as `[secret]`: a
    terminal's scrollback, a service manager's journal or a CI log keeps what start-up prints, and
    anyone who reads those would hold the keys. The line that shows them is printed instead."""
    outputs = started.outputs
    by_type: dict[str, list[str]] = defaultdict(list)
    for type_, name in started.created:
        by_type[type_].append(name)
    lines = [
        f"csv-ingest {options.stack}: running locally, ready in {started.seconds:.1f} s",
        f"Emulator: {outputs['awsEndpointUrl']} (region {outputs['awsRegion']})",
        *(f"Warning: {line}" for line in started.warnings),
        "",
        f"Created in the emulator ({len(started.created)}):",
        *(f"  {len(names):3d}  {type_}: {', '.join(names)}" for type_, names in sorted(by_type.items())),
    ]
    if started.not_emulated:
        lines += ["", f"Not emulated ({len(started.not_emulated)}):"]
        lines += [f"  {type_}  {name}: {why}" for type_, name, why in started.not_emulated]
    lines += ["", "Outputs:"]
    lines += [f"  {key}: {'[secret]' if key in secrets else _shown(value)}" for key, value in sorted(outputs.items())]
    lines += [
        "Secrets are not printed here; to show them, in another terminal:",
        f"  {outputs_command(options, '--show-secrets')}",
        "",
        *_first_commands(options, outputs),
        "",
        *_next_commands(command, outputs),
        "",
        _what_follows(command, logs),
        "",
    ]
    return "\n".join(lines)


# What `--revoke` shows best: the worker's writes refused (its chunks then fail into the DLQ).
_REVOCATION_EXAMPLE = "worker=WriteUsers"


def _next_commands(command: UpCommand, outputs: dict[str, Any]) -> list[str]:
    """Restarts worth trying: a setting changed (the API's other authentication), a permission taken
    away, each this command with one option more."""
    other_auth = "apiAuth=iam" if outputs.get("apiKey") else "apiAuth=apiKey"
    return [
        "Next, Ctrl-C and start again with a setting changed, or without a permission to see what fails:",
        f"  {command.line(sets=(*command.sets, other_auth))}",
        f"  {command.line(revokes=(*command.revokes, _REVOCATION_EXAMPLE))}",
    ]


def _what_follows(command: UpCommand, logs: Path) -> str:
    """The line before the log lines: which follow, where all of them are, how to see them all."""
    folder = _relative(logs)
    if "all" in command.logs:
        return f"Log lines follow (also in {folder}/). Ctrl-C stops everything."
    every = f"every line here: {command.line(logs=('all',))}"
    if command.logs:
        named = ", ".join(command.logs)
        return (
            f"The log lines of {named} follow, with each job's start and end and every warning and error;"
            f" all of them are in {folder}/ ({every}). Ctrl-C stops everything."
        )
    return (
        f"Each job's start and end and every warning and error follow; every log line is in {folder}/"
        f" ({every}). Ctrl-C stops everything."
    )


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def outputs_command(options: LocalOptions, form: str) -> str:
    """`local outputs FORM` for the stack `options` started, as a line to paste in this directory: this
    interpreter, the stack, and the state folder when it is not the default one."""
    return command("local", "outputs", *stack_words(options.stack, options.state_root), form)


def _first_commands(options: LocalOptions, outputs: dict[str, Any]) -> list[str]:
    """The README's first lines, for this stack: load its settings, upload a file, query the API."""
    prefix = outputs.get("uploadsPrefix", "uploads/")
    collection = schema_of(outputs, f"local stack {options.stack}").name
    sample = _sample(collection, options.config_file)
    if outputs.get("apiKey"):
        auth = '-H "x-api-key: $INGEST_API_KEY"'
    else:  # IAM mode: curl signs with the local administrator's keys
        auth = '--aws-sigv4 "aws:amz:$AWS_REGION:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"'
    return [
        "Try, in another terminal:",
        f'  eval "$({outputs_command(options, "--env")})"',
        f'  aws s3 cp {sample} "s3://$INGEST_BUCKET_NAME/{prefix}{collection}.csv"',
        f'  curl {auth} "$INGEST_API_URL/{collection}?limit=5"',
    ]


def _sample(collection: str, config_file: Path | None) -> str:
    """A file to upload first: the users sample for the default schema; `<collection>.csv` beside the
    stack file, as `examples/` keeps them (`examples/products/products.csv`); else a file of the
    user's named so."""
    if collection == DEFAULT_SCHEMA.name:
        return "tests/data/users.csv"
    beside = config_file.parent / f"{collection}.csv" if config_file is not None else None
    return str(beside) if beside is not None and beside.is_file() else f"{collection}.csv"


# What the AWS SDKs and CLI read, for each output of the emulator's.
# (boto3 and the aws CLI read AWS_DEFAULT_REGION; other SDKs AWS_REGION.)
_AWS_ENVIRONMENT = {
    "awsEndpointUrl": ("AWS_ENDPOINT_URL",),
    "awsRegion": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "awsAccessKeyId": ("AWS_ACCESS_KEY_ID",),
    "awsSecretAccessKey": ("AWS_SECRET_ACCESS_KEY",),
}


# What else a shell may hold of the user's own AWS identity: with the emulator's keys exported, a session
# token left set would go with every request to the emulator (a real credential, sent to a local process),
# and a profile would be what tools that prefer it over keys use.
_AWS_SETTINGS_TO_DROP = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


# The shell's `aws` passes AWS_ENDPOINT_URL as --endpoint-url, which every AWS CLI reads first
# ("To override any endpoint settings or environment variables for a single command, use the
# --endpoint-url command line option", https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-endpoints.html
# and https://docs.aws.amazon.com/cli/v1/userguide/cli-configure-endpoints.html). The variable alone is not
# enough: aws-cli v1 (1.46 still) sets sqs, emr, rds, docdb, neptune and health commands' endpoint to
# AWS's own (https://eu-west-1.queue.amazonaws.com) unless --endpoint-url is on the command line
# (awscli/customizations/overridesslcommonname.py; https://github.com/aws/aws-cli/issues/8737), and
# aws-cli v2 reads AWS_ENDPOINT_URL only from 2.13.0 (Debian 12 packages 2.9.19). With the variable
# unset, the function fails rather than reaching AWS.
_AWS_CLI_FUNCTION = 'aws() { command aws --endpoint-url "${AWS_ENDPOINT_URL:?}" "$@"; }'


def environment_lines(outputs: dict[str, Any]) -> list[str]:
    """Shell lines: unset the user's own session token and profile, then export the AWS settings that
    reach the emulator, and every output as INGEST_<NAME>, and make the shell's `aws` send every
    command to the emulator (`_AWS_CLI_FUNCTION`)."""
    lines = [f"unset {' '.join(_AWS_SETTINGS_TO_DROP)}"]
    for key, value in sorted(outputs.items()):
        names = _AWS_ENVIRONMENT.get(key) or ("INGEST_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper(),)
        lines += [f"export {name}={shlex.quote(_shown(value))}" for name in names]
    return [*lines, _AWS_CLI_FUNCTION]


def show_outputs(stack: str, state_root: Path, *, form: str, show_secrets: bool, out: TextIO) -> int:
    running = running_outputs(stack, state_root)
    if running is None:
        print(
            f"error: stack {stack!r} is not running locally"
            f" (start it with: {command('local', 'up', *stack_words(stack, state_root))})",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNING
    if form == "json":
        out.write(json.dumps(running.outputs, indent=2) + "\n")
        return 0
    if form == "env":
        out.write("\n".join(environment_lines(running.outputs)) + "\n")
        return 0
    for key, value in sorted(running.outputs.items()):
        shown = "[secret]" if key in running.secrets and not show_secrets else _shown(value)
        out.write(f"{key}: {shown}\n")
    return 0
