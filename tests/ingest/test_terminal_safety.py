"""What the commands print for a person is never an instruction to their terminal, and local mode's
secrets stay in files only their owner reads.

Any same-account principal who can write a users item, upload a file, send to the dead-letter queue
or answer for `pulumi` chooses bytes that `list`, `get`, `jobs`, `rejects` and `dlq peek` print. A
terminal acts on ESC sequences (clear the screen, set the title, OSC-8 links that show one text and
open another address), on C1 controls (U+009B is CSI on its own) and reorders text around bidi
overrides. Each command runs in its own process against a local stack holding such values, as a
user runs it; two run in a pty, where rich prints for a terminal (a table; the live bars of `upload
--wait`, where rich would read `[link=…]` in a file name or a job's status as markup for an OSC-8
link). An exception no command catches is reported escaped too.

The stack is started under umask 022 (files 0644 and folders 0755 by default): the modes its state
folder holds are then local mode's own, not the test runner's.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.progress import TextColumn
from rich.text import Text

from handlers.common.jobs import COMPLETE_WITH_REJECTS, QUEUED, job_key
from ingest.commands.upload import MULTIPART_THRESHOLD
from ingest.output import console, progress, status
from local.session import LocalOptions, LocalStack
from local.state import OUTPUTS_FILE
from tests.evidence import Proof
from tests.ingest.conftest import local_command, run_ingest
from tests.local.support import REPO_ROOT, LocalStackProcess, job_id_for, start_local, stop_local, wait_for
from tests.pty_command import PtyCommand

pytestmark = pytest.mark.long(seconds=120)

# What a hostile cell may hold: each is a valid name (the rules trim blanks and bound the length only).
PAYLOADS = {
    "clear screen (CSI)": "\x1b[2J\x1b[31mScreen Cleared",
    "window title (OSC 0)": "\x1b]0;owned title\x07Title Setter",
    "hyperlink (OSC 8)": "\x1b]8;;http://evil/\x1b\\Link Text\x1b]8;;\x1b\\",
    "C1 CSI": "\x9b31mC1 Red",
    "bidi override": "Bidi \u202egnp.exe\u202c Name",
    "tab, newline, DEL, NEL": "Line\nBreak\tTab\x7fDel\x85Nel",
}
# How each is shown escaped: a fragment the output must hold.
SHOWN = {
    "clear screen (CSI)": "\\x1b[2J\\x1b[31mScreen Cleared",
    "window title (OSC 0)": "\\x1b]0;owned title\\x07Title Setter",
    "hyperlink (OSC 8)": "\\x1b]8;;http://evil/\\x1b\\Link Text\\x1b]8;;\\x1b\\",
    "C1 CSI": "\\x9b31mC1 Red",
    "bidi override": "Bidi \\u202egnp.exe\\u202c Name",
    "tab, newline, DEL, NEL": "Line\\nBreak\\tTab\\x7fDel\\x85Nel",
}
# What a terminal acts on or reorders by: C0 (a newline is the output's own line break), DEL, C1,
# and the bidi embeddings, overrides and isolates (Unicode's "Trojan Source" characters).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What rich itself sends a terminal for its styles (bold headers): SGR sequences, and nothing else.
RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")
# What rich's live displays send besides: hide and show the cursor, and, to redraw, a carriage return
# then up one line and erase it.
RICH_LIVE = re.compile(r"\x1b\[\?25[lh]|\r(?=\x1b\[2K)|\x1b\[[0-9]*[AK]")
# What an OSC-8 hyperlink starts with: the text shown opens another address.
OSC_8 = "\x1b]8;"
# An S3 key may hold any UTF-8 character, controls included:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
HOSTILE_KEY_NAME = "terminal/\x1b]0;key title\x07\x9b2Jkey.csv"
# An SQS body may hold #x9, #xA, #xD, #x20–#xD7FF, … and no other character: no raw ESC, but raw C1
# and bidi controls, and ESC as JSON's \u001b in a chunk.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
RAW_BODY = "not a chunk \x9b2J\u202e end"
HOSTILE_VALUES = (
    "users named with each payload, an upload whose S3 key holds OSC 0 and C1 CSI (one row written, one"
    " rejected with such cells), a dead-lettered chunk holding them (ESC as JSON's \\u001b) and a body"
    " holding C1 and bidi controls raw"
)

PROOFS = [
    Proof(
        "SECURITY",
        "Terminal",
        "terminal escapes in what the commands print",
        injected=(
            "names that clear the screen (CSI 2J), set the window title (OSC 0), make a hyperlink (OSC 8), start"
            f" a C1 CSI (U+009B), override bidi (U+202E), and hold a tab, newline, DEL and NEL; {HOSTILE_VALUES};"
            " read with list, get, job, jobs, rejects and dlq peek as tables and lines"
        ),
        held=(
            "no C0 control but the output's own line breaks, no DEL, C1 or bidi control reaches stdout or stderr"
            " raw; each value shows escaped (\\x1b, \\x9b, \\u202e, \\t, \\n)"
        ),
        figures={"payloads": 6, "commands": 6},
        test="test_no_table_prints_a_control_character_raw",
    ),
    Proof(
        "SECURITY",
        "Terminal",
        "terminal escapes in --json",
        injected="the same payloads and values; list, get, job, jobs, rejects and dlq peek with --json",
        held=(
            "no raw control character in the document: DEL, C1 and bidi controls, which json.dumps would leave"
            " raw, are \\u escapes; each document parses to the stored values exactly"
        ),
        figures={"payloads": 6, "commands": 6},
        test="test_json_carries_every_control_escaped_and_parses_to_the_stored_values",
    ),
]
TABLES, JSON_DOCUMENTS = PROOFS


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """conftest's stack, started under umask 022 (which `local up` and its functions inherit)."""
    previous = os.umask(0o022)
    try:
        running = start_local(
            tmp_path_factory.mktemp("ingest-state"),
            "--set",
            "workerBatchingWindowSeconds=0",
            "--retry-delays",
            "1,2",
        )
    finally:
        os.umask(previous)
    yield running
    stop_local(running)


def assert_terminal_safe(text: str, where: str) -> None:
    found = [(m.start(), repr(m.group())) for m in UNSAFE.finditer(text)]
    assert not found, f"{where}: raw control characters at {found[:10]}:\n{text[-3000:]}"


def assert_ran_safely(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}: exit {result.returncode}\n{result.stderr}"
    assert_terminal_safe(result.stdout, f"{what} stdout")
    assert_terminal_safe(result.stderr, f"{what} stderr")
    return result.stdout


def emails() -> dict[str, str]:
    return {label: f"terminal{n}@escape.example.com" for n, label in enumerate(PAYLOADS)}


@pytest.fixture(scope="module")
def planted(stack: LocalStackProcess) -> dict[str, Any]:
    """The hostile values in the stack: users written by the administrator, a file uploaded under a
    hostile key (one row written, one rejected), and two dead letters."""
    dynamodb = stack.client("dynamodb")
    for n, (label, name) in enumerate(PAYLOADS.items()):
        dynamodb.put_item(
            TableName=stack.outputs["usersTableName"],
            Item={
                "email": {"S": emails()[label]},
                "name": {"S": name},
                "phone": {"S": "+15550000000"},
                "updatedAt": {"S": "2026-01-01T00:00:00.000Z"},
                "uploadedAt": {"S": "2026-01-01T00:00:00.000Z"},
                "sourceKey": {"S": f"uploads/{name}.csv"},
                "jobId": {"S": "0" * 32},
                "row": {"N": str(n + 1)},
            },
        )
    key = stack.outputs["uploadsPrefix"] + HOSTILE_KEY_NAME
    body = (
        "name,mail,phone\n"
        f"{PAYLOADS['window title (OSC 0)']},uploaded@escape.example.com,\n"
        f"{PAYLOADS['clear screen (CSI)']},{PAYLOADS['C1 CSI']}@not-an-email,\n"
    ).encode()
    bucket = stack.outputs["bucketName"]
    version = stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    job = stack.finished_job(job_id_for(bucket, key, version))
    assert job["status"] == "COMPLETE_WITH_REJECTS", job
    sqs, dlq = stack.client("sqs"), stack.outputs["deadLetterQueueUrl"]
    chunk = {
        "jobId": PAYLOADS["window title (OSC 0)"],
        "chunk": 1,
        "rows": [{"row": 1, "email": PAYLOADS["hyperlink (OSC 8)"], "name": PAYLOADS["C1 CSI"], "phone": ""}],
    }
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(chunk))  # ASCII: ESC as \u001b
    sqs.send_message(QueueUrl=dlq, MessageBody=RAW_BODY)
    return job


def test_no_table_prints_a_control_character_raw(stack: LocalStackProcess, planted: dict[str, Any]) -> None:
    job_id = planted["jobId"]
    tables = {
        "list": local_command(stack, "list", "--all"),
        "jobs": local_command(stack, "jobs"),
        "job": local_command(stack, "job", job_id),
        "rejects": local_command(stack, "rejects", job_id),
        "dlq peek": local_command(stack, "dlq", "peek"),
        **{f"get {label}": local_command(stack, "get", emails()[label]) for label in PAYLOADS},
    }
    printed = {what: assert_ran_safely(result, what) for what, result in tables.items()}

    for label in PAYLOADS:
        assert SHOWN[label] in printed["list"], label
        assert SHOWN[label] in printed[f"get {label}"], label
    assert r"\x1b]0;key title\x07\x9b2Jkey.csv" in printed["jobs"]
    assert r"\x1b]0;key title\x07\x9b2Jkey.csv" in printed["job"]
    assert SHOWN["clear screen (CSI)"] in printed["rejects"] and r"\x9b31mC1 Red@not-an-email" in printed["rejects"]
    assert SHOWN["window title (OSC 0)"] in printed["dlq peek"]  # the chunk's job id, on the message's line
    assert SHOWN["hyperlink (OSC 8)"] in printed["dlq peek"] and SHOWN["C1 CSI"] in printed["dlq peek"]
    assert r"not a chunk \x9b2J\u202e end" in printed["dlq peek"]
    assert len(PAYLOADS) == TABLES.figures["payloads"]
    assert len({what.split()[0] for what in tables}) == TABLES.figures["commands"]


def test_json_carries_every_control_escaped_and_parses_to_the_stored_values(
    stack: LocalStackProcess, planted: dict[str, Any]
) -> None:
    job_id = planted["jobId"]
    documents = {
        what: json.loads(assert_ran_safely(local_command(stack, *args, "--json"), what))
        for what, args in {
            "list": ("list", "--all"),
            "get": ("get", emails()["C1 CSI"]),
            "jobs": ("jobs",),
            "job": ("job", job_id),
            "rejects": ("rejects", job_id),
            "dlq peek": ("dlq", "peek"),
        }.items()
    }

    names = {user["email"]: user["name"] for user in documents["list"]}
    assert all(names[emails()[label]] == PAYLOADS[label] for label in PAYLOADS)
    assert documents["get"]["name"] == PAYLOADS["C1 CSI"]
    assert documents["job"]["key"].endswith(HOSTILE_KEY_NAME)
    assert any(job["key"].endswith(HOSTILE_KEY_NAME) for job in documents["jobs"])
    assert {row["name"] for row in documents["rejects"]} == {PAYLOADS["clear screen (CSI)"]}
    letters = {letter["messageId"]: letter for letter in documents["dlq peek"]}
    assert {letter["bodyPreview"] for letter in letters.values()} == {None, RAW_BODY}
    chunk = next(letter for letter in letters.values() if letter["jobId"])
    assert chunk["jobId"] == PAYLOADS["window title (OSC 0)"]
    assert chunk["firstRows"][0]["email"] == PAYLOADS["hyperlink (OSC 8)"]
    assert len(PAYLOADS) == JSON_DOCUMENTS.figures["payloads"]
    assert len(documents) == JSON_DOCUMENTS.figures["commands"]


def test_in_a_terminal_a_table_sends_only_richs_own_styles(stack: LocalStackProcess, planted: dict[str, Any]) -> None:
    # WHEN `list` prints its table in a terminal
    terminal = _Terminal("list", "--all", *_local_flags(stack))
    received = terminal.finish()

    # THEN the terminal got rich's styles (so it printed for a terminal), and no other control
    assert terminal.process.returncode == 0, received
    assert RICH_STYLE.search(received), "no styles: the command did not print for a terminal"
    text = RICH_STYLE.sub("", received).replace("\r\n", "\n")  # the terminal driver turns \n into \r\n
    assert_terminal_safe(text, "list in a pty")
    for label in PAYLOADS:
        assert SHOWN[label] in text, label


# A job's status rewritten by whoever may write the jobs table: rich markup for a link, and an ESC.
HOSTILE_STATUS = "[link=http://evil.example/]x[/link]\x1b[2J"
# A file's name cannot hold a '/': its link is a mailto: one, left open (rich styles the rest).
HOSTILE_FILE_NAME = "\x1b]0;owned title\x07[link=mailto:owner@evil.example]click here.csv"


def test_following_an_upload_in_a_terminal_shows_markup_as_text_and_makes_no_link(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # GIVEN a file named with markup, large enough to go up in parts behind a transfer bar (one valid
    # row, then one record too long to read), and the worker held so that its job waits QUEUED. It goes
    # up under a plain key: local mode's CreateMultipartUpload fails (500) on a key holding ESC or BEL.
    path = tmp_path / HOSTILE_FILE_NAME
    with path.open("wb") as file:
        file.write(b"name,mail\nLink Person,link.person@escape.example.com\n")
        file.write(b"x" * MULTIPART_THRESHOLD + b"\n")
    dynamodb, table = stack.client("dynamodb"), stack.outputs["jobsTableName"]
    stack.hold_receives("worker")
    # WHEN `upload --wait` follows it in a terminal while its status is rewritten into markup
    terminal = _Terminal("upload", str(path), "--key", "terminal/bars.csv", "--wait", *_local_flags(stack))
    try:
        try:
            job_id = wait_for(lambda: _job_id_in(terminal.text()), 120, "the upload's job id")
            wait_for(lambda: (stack.job(job_id) or {}).get("status") == QUEUED, 120, f"job {job_id} queued")
            _set_status(dynamodb, table, job_id, QUEUED, HOSTILE_STATUS)
            wait_for(lambda: "http://evil.example/" in terminal.text(), 60, "the rewritten status on the bar")
            _set_status(dynamodb, table, job_id, HOSTILE_STATUS, QUEUED)
        finally:
            stack.clear_faults()
    finally:
        received = terminal.finish()

    # THEN no link reached the terminal, only rich's own controls did, and the markup shows as text
    assert terminal.process.returncode == 0, received
    assert OSC_8 not in received, received
    assert RICH_STYLE.search(received), "no styles: the command did not print for a terminal"
    text = RICH_LIVE.sub("", RICH_STYLE.sub("", received)).replace("\r\n", "\n")
    assert_terminal_safe(text, "upload --wait in a pty")
    transfer_bar = "uploading \\x1b]0;owned title\\x07[link=mailto:owner@evil.example]click here.csv"
    assert transfer_bar in text
    assert f"job {job_id[:8]} [link=http://evil.example/]x[/link]\\x1b[2J" in text  # the job's bar
    assert f"Job {job_id}: {COMPLETE_WITH_REJECTS}" in text


def _local_flags(stack: LocalStackProcess) -> tuple[str, ...]:
    return ("--local", "--stack", stack.stack, "--state-dir", str(stack.state_root))


def _job_id_in(text: str) -> str | None:
    found = re.search(r"job ([0-9a-f]{32})", text)
    return found.group(1) if found else None


def _set_status(dynamodb: Any, table: str, job_id: str, was: str, now: str) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={name: {"S": value} for name, value in job_key(job_id).items()},
        UpdateExpression="SET #status = :now",
        ConditionExpression="#status = :was",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":now": {"S": now}, ":was": {"S": was}},
    )


class _Terminal(PtyCommand):
    """`python -m ingest ARGS` in a pseudo-terminal 1000 columns wide, as a user's."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NO_COLOR"))}
        env.update(TERM="xterm-256color", COLUMNS="1000")
        super().__init__([sys.executable, "-m", "ingest", *args], env, columns=1000)

    def finish(self, timeout: float = 300, *, interrupt: bool = False) -> str:
        return super().finish(timeout, interrupt=interrupt)


class _Screen(io.StringIO):
    """What a terminal receives."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> _Screen:
    """A terminal rich prints colour and live displays for (what these variables would change it)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    return _Screen()


def test_a_status_line_and_a_progress_bar_show_markup_as_written(screen: _Screen) -> None:
    # GIVEN a live display of each kind a command builds, whose text is a stack's
    bar = progress("{task.description}", stream=screen)
    # WHEN each shows it, and the status line is given it again
    bar.start()
    bar.add_task(HOSTILE_STATUS, total=None)
    bar.stop()
    with status(HOSTILE_STATUS, screen) as line:
        line.update(HOSTILE_STATUS)

    # THEN it was printed for a terminal (styled), made no link, and shows as written
    received = screen.getvalue()
    assert RICH_STYLE.search(received), "no styles: not printed for a terminal"
    assert OSC_8 not in received, received
    assert received.count("[link=http://evil.example/]x[/link]\\x1b[2J") >= 2, received


def test_a_link_in_any_renderable_never_reaches_the_terminal(screen: _Screen) -> None:
    # A renderable a future command makes with markup of a stack's: the console keeps its styles, no link.
    console(screen).print(Text.from_markup("[link=http://evil.example/]x[/link] [bold]bold[/bold]"))

    received = screen.getvalue()
    assert RICH_STYLE.search(received), "no styles: not printed for a terminal"
    assert OSC_8 not in received, received
    assert RICH_STYLE.sub("", received) == "x bold\n"


def test_a_progress_display_refuses_a_column_that_reads_markup() -> None:
    with pytest.raises(TypeError, match="TextColumn"):
        progress(TextColumn("{task.description}"), stream=io.StringIO())


# A failure no command catches, in the real command (`python -m ingest`): finding the stack raises an
# exception whose message holds a value of the stack's, as a library's error may.
UNCAUGHT = r"""
import runpy
import ingest.targets

def deployed_target(stack, config_file=None):
    raise RuntimeError("the stack answered \x1b]0;owned title\x07\x9b2J\u202e")

ingest.targets.deployed_target = deployed_target
runpy.run_module("ingest", run_name="__main__", alter_sys=True)
"""
# The same value in a thread's exception, raised once the command has returned.
UNCAUGHT_IN_A_THREAD = r"""
import runpy, sys, threading, time
import ingest.targets
from ingest.output import TerminalSafe

def fail_later():
    while isinstance(sys.stderr, TerminalSafe):  # until the command has given stderr back
        time.sleep(0.01)
    raise RuntimeError("the stack answered \x1b]0;owned title\x07\x9b2J\u202e")

def deployed_target(stack, config_file=None):
    threading.Thread(target=fail_later, name="late").start()
    raise ingest.targets.TargetError("no such stack")

ingest.targets.deployed_target = deployed_target
runpy.run_module("ingest", run_name="__main__", alter_sys=True)
"""
UNCAUGHT_SHOWN = "RuntimeError: the stack answered \\x1b]0;owned title\\x07\\x9b2J\\u202e\n"


def _run_python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_failure_no_command_caught_is_reported_escaped() -> None:
    result = _run_python(UNCAUGHT, "list", "--stack", "dev")

    assert result.returncode == 1, result.stderr  # Python's exit code for an uncaught exception
    assert result.stderr.startswith("Traceback (most recent call last):\n"), result.stderr
    assert_terminal_safe(result.stderr, "the uncaught exception's report")
    assert result.stderr.endswith(UNCAUGHT_SHOWN), result.stderr


def test_a_threads_failure_after_the_command_returned_is_reported_escaped() -> None:
    result = _run_python(UNCAUGHT_IN_A_THREAD, "list", "--stack", "dev")

    assert result.returncode == 2, result.stderr  # the command's own exit code
    assert result.stderr.startswith("error: no such stack\nException in thread late:\nTraceback"), result.stderr
    assert_terminal_safe(result.stderr, "the thread's exception report")
    assert result.stderr.endswith(UNCAUGHT_SHOWN), result.stderr


def test_an_error_line_from_the_stacks_tools_is_shown_escaped(tmp_path: Path) -> None:
    # `pulumi stack output` failing: its last line (from the backend) goes into the error line.
    stub = tmp_path / "pulumi"
    stub.write_text("#!/bin/sh\nprintf 'error: \\033]0;owned title\\007\\302\\233 2J gone\\n' >&2\nexit 255\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env.get('PATH', '')}"

    result = run_ingest("list", "--stack", "dev", env=env)

    assert result.returncode == 2
    assert_terminal_safe(result.stderr, "the error line")
    assert result.stderr == (
        "error: `pulumi stack output --stack dev` failed: error: \\x1b]0;owned title\\x07\\x9b 2J gone\n"
    )


# --- local mode's secrets ---------------------------------------------------------------------------


def test_the_start_up_banner_holds_no_secret_and_the_command_that_shows_them(stack: LocalStackProcess) -> None:
    banner = stack.console_text()
    secrets = [stack.outputs["apiKey"], stack.outputs["awsSecretAccessKey"]]
    shown = next(line.strip() for line in banner.splitlines() if "local outputs" in line and "--show-secrets" in line)

    assert not [secret for secret in secrets if secret in banner]
    # The line names this stack and its state folder, as the user started it (tests use their own folder).
    assert f"--stack {stack.stack}" in shown and f"--state-dir {shlex.quote(str(stack.state_root))}" in shown
    ran = subprocess.run(shlex.split(shown), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert f"apiKey: {stack.outputs['apiKey']}" in ran.stdout.splitlines()
    assert f"awsSecretAccessKey: {stack.outputs['awsSecretAccessKey']}" in ran.stdout.splitlines()


def test_the_banners_env_line_exports_the_secrets(stack: LocalStackProcess) -> None:
    banner = stack.console_text()
    line = next(line.strip() for line in banner.splitlines() if "local outputs" in line and "--env" in line)
    command = re.fullmatch(r'eval "\$\((.*)\)"', line)
    assert command, line

    ran = subprocess.run(shlex.split(command.group(1)), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert ran.returncode == 0, ran.stderr
    assert f"export INGEST_API_KEY={stack.outputs['apiKey']}" in ran.stdout.splitlines()


def test_only_the_owner_reads_a_file_of_the_state_folder_that_holds_a_secret(
    stack: LocalStackProcess, planted: dict[str, Any]
) -> None:
    # GIVEN a stack started under umask 022 that has run (`planted`: a file ingested, every function ran)
    secrets = [stack.outputs["apiKey"].encode(), stack.outputs["awsSecretAccessKey"].encode()]
    holding: list[tuple[str, int]] = []
    modes: dict[str, tuple[int, int]] = {}  # every file and folder: its mode, and its owner's alone
    for folder, subfolders, files in os.walk(stack.state):  # links (the runtime's libraries) are not followed
        for name in [*subfolders, *files]:
            path = Path(folder) / name
            try:
                if path.is_symlink():
                    continue
                mode, owners = stat.S_IMODE(path.stat().st_mode), 0o700 if path.is_dir() else 0o600
                modes[str(path.relative_to(stack.state))] = (mode, owners)
                content = path.read_bytes() if path.is_file() else b""
            except FileNotFoundError:  # a function's scratch file, gone since the walk listed it
                continue
            if any(secret in content for secret in secrets):
                holding.append((str(path.relative_to(stack.state)), mode))

    # THEN the secrets are in outputs.json alone, and nothing in the folder is another user's to read:
    # the folder and every folder in it 0700, every file 0600 (the logs name jobs and uploads' keys)
    assert holding == [(OUTPUTS_FILE, 0o600)]
    assert stat.S_IMODE(stack.state.stat().st_mode) == 0o700
    assert any(name.startswith("logs/") and name.endswith(".log") for name in modes), sorted(modes)[:20]
    wider = {name: oct(mode) for name, (mode, owners) in modes.items() if mode != owners}
    assert not wider, f"{len(wider)} of {len(modes)} wider than their owner's: {sorted(wider.items())[:20]}"


def test_outputs_json_never_exists_with_wider_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a umask that takes nothing away: a file created with the default mode would be 0666
    local = LocalStack(LocalOptions(stack="dev", state_root=tmp_path), io.StringIO())
    local.state.mkdir(parents=True)
    created: list[tuple[str, int]] = []  # (path, mode of the file the moment it was created)
    widened: list[tuple[str, int]] = []  # a file's mode just before a chmod, when wider than 0600
    real_open, real_chmod = os.open, os.chmod

    def watched_open(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, *args, **kwargs)
        if flags & os.O_CREAT:
            created.append((os.fspath(path), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    def watched_chmod(path: Any, mode: int, *args: Any, **kwargs: Any) -> None:
        before = stat.S_IMODE(os.stat(path).st_mode)
        if before & ~0o600:
            widened.append((os.fspath(path), before))
        real_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", watched_open)
    monkeypatch.setattr(os, "chmod", watched_chmod)
    previous = os.umask(0)
    try:
        # WHEN start-up writes the state file
        local._write_state({"apiKey": "key-value", "awsSecretAccessKey": "secret-value"}, {"apiKey"})
    finally:
        os.umask(previous)

    # THEN it was created 0600 and never had wider bits; what is left is the file itself
    written = local.state / OUTPUTS_FILE
    assert not widened, widened
    assert created and all(mode == 0o600 for _, mode in created), created
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert json.loads(written.read_text())["outputs"]["apiKey"] == "key-value"
    assert sorted(path.name for path in local.state.iterdir()) == [OUTPUTS_FILE]
