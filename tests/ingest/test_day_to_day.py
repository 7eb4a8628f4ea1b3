"""Day-to-day defects of the everyday commands (issue 19), each through the real command in its own
process: output piped into a reader that stops early, hints copied and run as printed, mistakes on
the command line, the rejects table, and the live bar of `upload --wait` in an 80-column terminal."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from rich.cells import cell_len

from ingest import api, output
from ingest.output import console
from tests.ingest.conftest import COMMAND_TIMEOUT_SECONDS, local_command, local_flags, run_ingest, user_shell, write_csv
from tests.local.support import REPO_ROOT, LocalStackProcess
from tests.pty_command import PtyCommand, ctrl_c_as_in_a_terminal

pytestmark = pytest.mark.long(seconds=90)

# What a shell reports for a command a closed pipe ended (128 + SIGPIPE), as for `cat` or `grep`.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
# The pipe's capacity, made small (F_SETPIPE_SZ) so that the command still has output to write once
# its reader is gone; its output must be far larger than this, its stdout buffer and what was read.
PIPE_BYTES = 4096
LARGE_OUTPUT_BYTES = 48 * 1024
CROWD = 600
# What rich sends a terminal for styles, and to move the cursor of a live display up a line.
RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")
CURSOR_UP = "\x1b[1A"
# A line of a live display: what rich writes once it has hidden the cursor or erased the line, up to
# the next line break or control.
LIVE_FRAME = re.compile(r"(?:\x1b\[\?25l|\x1b\[2K)([^\r\n\x1b]*)")


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not one JSON line:\n{result.stdout}\nstderr:\n{result.stderr}"
    return json.loads(lines[0])


def run_hint(hint: str) -> subprocess.CompletedProcess[str]:
    """A hint pasted into a user's shell in this checkout: no virtual environment active, a user's
    AWS settings in the environment."""
    return subprocess.run(
        ["bash", "-c", hint],
        cwd=REPO_ROOT,
        env=user_shell(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


@pytest.fixture(scope="module")
def crowd(stack: LocalStackProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A file of `CROWD` users and as many rows rejected (a mail that is no email), waited for."""
    rows = [f"Crowd Member {n},crowd{n:04d}@crowd.example.com,+4470001{n:05d}" for n in range(CROWD)]
    rows += [f"Not Mailed {n},not-an-email-{n},+4470002{n:05d}" for n in range(CROWD)]
    path = write_csv(tmp_path_factory.mktemp("crowd") / "crowd.csv", ["name,mail,phone", *rows])
    result = local_command(stack, "upload", str(path), "--wait", "--json")
    assert result.returncode == 0, result.stderr
    job = last_json(result)
    assert (job["rowsWritten"], job["rowsRejected"]) == (CROWD, CROWD), job
    return job


# --- item 4: a reader that stops early ---------------------------------------------------------------


def _read_a_little_then_close(stack: LocalStackProcess, *args: str) -> tuple[bytes, int, str]:
    """`python -m ingest ARGS … | head -2`: two lines (or, of a one-line JSON document, its first
    kilobyte) read from a real pipe, whose read end is then closed while the command still writes;
    what was read, the command's exit code and its stderr."""
    reader, writer = os.pipe()
    fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest", *args, *local_flags(stack)],
            cwd=REPO_ROOT,
            env=user_shell(),
            stdout=writer,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(writer)
    read = b""
    try:
        while read.count(b"\n") < 2 and len(read) < 1024:
            chunk = os.read(reader, 1024 - len(read))
            if not chunk:
                break
            read += chunk
    finally:
        os.close(reader)
    try:
        _, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return read, process.returncode, stderr.decode(errors="replace")


@pytest.mark.parametrize(
    ("command", "first_line"),
    [
        (("list", "--all"), b"email "),
        (("list", "--all", "--json"), b"[{"),
        (("rejects", "JOB"), b"row "),
    ],
    ids=["list --all", "list --all --json", "rejects"],
)
def test_output_piped_into_a_reader_that_stops_early_ends_quietly(
    stack: LocalStackProcess, crowd: dict[str, Any], command: tuple[str, ...], first_line: bytes
) -> None:
    # GIVEN a command whose output is far more than the pipe, its buffer and the reader take
    args = tuple(crowd["jobId"] if word == "JOB" else word for word in command)
    whole = local_command(stack, *args)
    assert whole.returncode == 0, whole.stderr
    assert len(whole.stdout.encode()) > LARGE_OUTPUT_BYTES, "too little output to outlive its reader"

    # WHEN its reader stops after two lines (or a kilobyte), as `head -2` (or `head -c 1K`) does
    read, code, stderr = _read_a_little_then_close(stack, *args)

    # THEN it read what the command printed first, and the command ended quietly, as `cat` would
    assert read.startswith(first_line), read
    assert stderr == ""
    assert code == EXIT_BROKEN_PIPE


# --- item 5: hints that work when copied ---------------------------------------------------------------


def test_the_hint_after_a_wait_that_ran_out_of_time_runs_as_copied(stack: LocalStackProcess, tmp_path: Path) -> None:
    rows = [f"Slow {n},slow{n}@hint.example.com," for n in range(300)]
    path = write_csv(tmp_path / "slow-hint.csv", ["name,mail,phone", *rows])

    waited = local_command(stack, "upload", str(path), "--wait", "--timeout", "0.001")

    assert waited.returncode == 3, waited.stderr
    found = re.fullmatch(
        r"error: job ([0-9a-f]{32}) did not end within 0.001 s \(status: [^)]*\); follow it with `([^`]+)`\n",
        waited.stderr,
    )
    assert found, waited.stderr
    job_id, hint = found.groups()
    followed = run_hint(hint)
    assert followed.returncode == 0, f"{hint}\n{followed.stderr}"
    assert ["jobId", job_id] in [line.split() for line in followed.stdout.splitlines()]


def test_the_hints_of_an_upload_and_its_summary_run_as_copied(stack: LocalStackProcess, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "hinted.csv", ["name,mail,phone", "Hinted,hinted@hint.example.com,", "Bad,nope,"])

    uploaded = local_command(stack, "upload", str(path))
    waited = local_command(stack, "upload", str(path), "--key", "hinted-again.csv", "--wait")

    assert uploaded.returncode == 0, uploaded.stderr
    follow = re.search(r"^Follow it: (.+)$", uploaded.stdout, re.M)
    assert follow, uploaded.stdout
    followed = run_hint(follow.group(1))
    assert followed.returncode == 0, f"{follow.group(1)}\n{followed.stderr}"
    assert waited.returncode == 0, waited.stderr
    rejects = re.search(r"^  rejects report: s3://\S+ \((.+)\)$", waited.stdout, re.M)
    assert rejects, waited.stdout
    listed = run_hint(rejects.group(1))
    assert listed.returncode == 0, f"{rejects.group(1)}\n{listed.stderr}"
    assert "mail is not a valid email address" in listed.stdout


def test_the_hint_after_an_interrupted_wait_runs_as_copied(stack: LocalStackProcess, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "interrupted.csv", ["name,mail", "Held,held@hint.example.com"])
    stack.hold_receives("worker")  # the job waits, QUEUED, until the faults are cleared
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest", "upload", str(path), "--wait", *local_flags(stack)],
            cwd=REPO_ROOT,
            env=user_shell(),
            preexec_fn=ctrl_c_as_in_a_terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline()  # "Uploaded …: job ID", printed once the wait begins
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    finally:
        stack.clear_faults()

    assert process.returncode == 130, first + stdout + stderr
    found = re.fullmatch(r"error: stopped waiting; job ([0-9a-f]{32}) goes on: `([^`]+)`\n", stderr)
    assert found, stderr
    job_id, hint = found.groups()
    followed = run_hint(hint)
    assert followed.returncode == 0, f"{hint}\n{followed.stderr}"
    assert ["jobId", job_id] in [line.split() for line in followed.stdout.splitlines()]


# --- item 6: mistakes on the command line ------------------------------------------------------------


def _fifo(folder: Path) -> Path:
    path = folder / "named-pipe.csv"
    os.mkfifo(path)
    return path


MISTAKES = {
    "no command": lambda folder: [],
    "an unknown command": lambda folder: ["lsit"],
    "an unknown option": lambda folder: ["list", "--colour", "--local"],
    "a limit out of range": lambda folder: ["list", "--limit", "0"],
    "a limit that is no number": lambda folder: ["jobs", "--limit", "ten"],
    "two options that exclude each other": lambda folder: ["list", "--all", "--limit", "5"],
    "a missing argument": lambda folder: ["upload"],
    "a timeout that is no duration": lambda folder: ["upload", "users.csv", "--timeout", "-1"],
    "a count that is no number": lambda folder: ["dlq", "peek", "--max", "0"],
    "a missing file": lambda folder: ["upload", str(folder / "no-such.csv"), "--local"],
    "a directory": lambda folder: ["upload", str(folder), "--local"],
    "a named pipe": lambda folder: ["upload", str(_fifo(folder)), "--local"],
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_on_the_command_line_is_one_line_and_exit_2(mistake: str, tmp_path: Path) -> None:
    args = MISTAKES[mistake](tmp_path)

    result = run_ingest(*_with_state_dir(args, tmp_path), timeout=60)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def _with_state_dir(args: list[str], folder: Path) -> list[str]:
    """`args`, with an empty state folder when they name a local stack: no running stack is reached."""
    return [*args, "--state-dir", str(folder / "no-stack")] if "--local" in args else args


def test_a_directory_given_to_upload_is_reported_as_a_directory(tmp_path: Path) -> None:
    result = run_ingest("upload", str(tmp_path), "--local", "--state-dir", str(tmp_path / "no-stack"), timeout=60)

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path}: is a directory"), result.stderr
    assert "no such file" not in result.stderr


@pytest.mark.parametrize(
    ("mistake", "usage"),
    [
        ("an unknown command", "python -m ingest [-h] COMMAND"),
        ("an unknown option", "python -m ingest list [-h]"),
        ("a limit out of range", "python -m ingest list [-h]"),
        ("a count that is no number", "python -m ingest dlq peek [-h]"),
    ],
)
def test_the_help_a_mistake_points_to_runs_as_copied(mistake: str, usage: str, tmp_path: Path) -> None:
    result = run_ingest(*_with_state_dir(MISTAKES[mistake](tmp_path), tmp_path), timeout=60)

    found = re.search(r"\(see `([^`]+)`\)$", result.stderr.rstrip("\n"))
    assert found, result.stderr
    helped = run_hint(found.group(1))
    assert helped.returncode == 0, f"{found.group(1)}\n{helped.stderr}"
    assert helped.stdout.startswith(f"usage: {usage}"), helped.stdout


# --- item 7: a full listing in pages as large as the API allows --------------------------------------


class _OlderApi(BaseHTTPRequestHandler):
    """`GET /users` of an API whose pages hold at most 100 users (as before larger pages): 300 users."""

    USERS: ClassVar[list[dict[str, str]]] = [{"email": f"user{n:03d}@older.example.com"} for n in range(300)]
    asked: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        limit = int(query["limit"][0])
        self.asked.append(limit)
        if limit > 100:
            self._answer(400, {"message": "limit must be a whole number from 1 to 100"})
            return
        start = int(query.get("startKey", ["0"])[0])
        items = self.USERS[start : start + limit]
        following = start + limit if start + limit < len(self.USERS) else None
        self._answer(200, {"items": items, "count": len(items), "nextToken": following and str(following)})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def older_api() -> Iterator[str]:
    _OlderApi.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OlderApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_full_listing_of_an_api_with_smaller_pages_asks_for_pages_it_serves(older_api: str) -> None:
    client = api.ApiClient(older_api, api_key="key", signer=None, label="an older stack")

    listed = [user["email"] for user in client.all_items("/users")]

    assert listed == [user["email"] for user in _OlderApi.USERS]
    assert _OlderApi.asked == [api.LISTING_PAGE, 100, 100, 100]


# --- item 9: the rejects table, a FAILED summary, the live bar ----------------------------------------


def test_rejects_shows_the_cells_as_uploaded_and_the_report_keeps_its_spreadsheet_escape(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    path = tmp_path / "formulas.csv"
    path.write_text(
        "name,mail,phone\n"
        "Plus Phone,not-an-email,+15550000007\n"
        '"=HYPERLINK(""http://evil.example/"")",nope@,\n'
        "'Quoted Name,also-not,\n"
        '"\t-2 Tabbed",still-not,\n',
        encoding="utf-8",
    )
    job = last_json(local_command(stack, "upload", str(path), "--wait", "--json"))

    shown = local_command(stack, "rejects", job["jobId"])
    listed = last_json(local_command(stack, "rejects", job["jobId"], "--json"))

    assert [(row["name"], row["phone"]) for row in listed] == [
        ("Plus Phone", "+15550000007"),
        ('=HYPERLINK("http://evil.example/")', ""),
        ("'Quoted Name", ""),
        ("\t-2 Tabbed", ""),
    ]
    assert shown.returncode == 0, shown.stderr
    assert " +15550000007" in shown.stdout and "'+15550000007" not in shown.stdout
    assert ' =HYPERLINK("http://evil.example/")' in shown.stdout
    assert " 'Quoted Name" in shown.stdout
    assert " \\t-2 Tabbed" in shown.stdout and "\t" not in shown.stdout  # still safe on a terminal
    bucket, prefix = job["rejectsReport"].removeprefix("s3://").split("/", 1)
    s3 = stack.client("s3")
    (key,) = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    report = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert ",'+15550000007" in report and "'=HYPERLINK" in report and "'\t-2 Tabbed" in report


class _Terminal(PtyCommand):
    """`python -m ingest ARGS` in a pseudo-terminal `columns` wide."""

    def __init__(self, columns: int, *args: str) -> None:
        env = {k: v for k, v in user_shell().items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        super().__init__([sys.executable, "-m", "ingest", *args], env, columns=columns)

    def finish(self, timeout: float = COMMAND_TIMEOUT_SECONDS, *, interrupt: bool = False) -> str:
        return super().finish(timeout, interrupt=interrupt)


def test_the_live_bar_fits_an_80_column_terminal_to_its_last_frame(stack: LocalStackProcess, tmp_path: Path) -> None:
    rows = [f"Bar Person {n},bar{n:04d}@bar.example.com," for n in range(1900)]
    rows += [f"Bar Reject {n},bar-reject-{n}," for n in range(100)]
    path = write_csv(tmp_path / "bar.csv", ["name,mail,phone", *rows])

    terminal = _Terminal(80, "upload", str(path), "--wait", *local_flags(stack))
    received = terminal.finish()

    assert terminal.process.returncode == 0, received
    text = RICH_STYLE.sub("", received)
    assert "\x1b[2K" in text, "no live display: the command did not print for a terminal"
    assert CURSOR_UP not in text, "a frame took more than one line: the bar wrapped"
    frames = LIVE_FRAME.findall(text)
    assert frames and max(cell_len(frame) for frame in frames) <= 80, [f for f in frames if cell_len(f) > 80]
    found = re.search(r"job ([0-9a-f]{32})", text)
    assert found, text
    job_id = found.group(1)
    last_frame = text.split("\x1b[?25h")[0].rsplit("\x1b[2K", 1)[-1].strip()
    assert last_frame.startswith(f"job {job_id[:8]} COMPLETE_WITH_REJECTS "), last_frame
    assert "1,900/1,900 rows" in last_frame and "100 rejected" in last_frame, last_frame
    assert "…" not in last_frame


# --- item 7: a long table printed to a pipe --------------------------------------------------------------

# Cells of every width a terminal gives characters: wide, combining, zero-width, emoji with a skin
# tone, right-to-left, escaped controls, blanks at either end, none, numbers, a long one.
CELLS = [
    "ann@example.com",
    "中文名字",
    "e\u0301le\u0300ve",
    "zero\u200bwidth",
    "👍🏽 thumbs",
    "مرحبا",
    "\x1b[2J\x9b31m\u202eclear",
    "  padded  ",
    None,
    "",
    12345,
    "x" * 600,
]


@pytest.mark.parametrize("columns", [1, 2, 6])
def test_a_table_printed_to_a_pipe_is_richs_own_layout(columns: int) -> None:
    headers = ["email", "name", "phone", "updatedAt", "sourceKey", "row"][:columns]
    rows = [[CELLS[(row + column) % len(CELLS)] for column in range(columns)] for row in range(3 * len(CELLS))]
    for body in (rows, []):
        printer = console(io.StringIO())
        with printer.capture() as captured:  # rich's table, as piped output was printed before
            printer.print(output.rich_table(headers, body))
        expected = "".join(line.rstrip() + "\n" for line in captured.get().splitlines())

        piped = io.StringIO()
        output.table(headers, body, piped)

        assert piped.getvalue() == expected, f"{len(body)} rows"
