"""Where the time goes: py-spy samples this process (the emulator, local mode's threads) and its
children (the functions' processes) while a benchmark runs, and the samples are grouped by what
code was on the CPU.

Sampled with `--gil`: only the thread holding a process's GIL is counted, so a process's samples
are the time it computed (a process waiting on the emulator adds none). Each sample is attributed to
the innermost frame's code, grouped into a few named kinds (moto's DynamoDB, the HTTP server, our
handlers, botocore, ...): enough to say which part of the stack a second of CPU went to.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RATE = 100
"""Samples per second per process."""
# The innermost frame's file → what kind of code it is (the first matching fragment wins).
KINDS: tuple[tuple[str, str], ...] = (
    ("/moto/dynamodb/", "moto: DynamoDB"),
    ("/moto/sqs/", "moto: SQS"),
    ("/moto/s3/", "moto: S3"),
    ("/moto/", "moto: request dispatch and serialisation"),
    ("/flask/", "HTTP server: werkzeug, Flask"),
    ("/werkzeug/", "HTTP server: werkzeug, Flask"),
    ("socketserver.py", "HTTP server: werkzeug, Flask"),
    ("http/server.py", "HTTP server: werkzeug, Flask"),
    ("/local/authz.py", "local mode: IAM evaluation"),
    ("/local/", "local mode: front, hosts, pollers"),
    ("/handlers/", "our handlers"),
    ("/bench_naive/", "the naive handlers"),
    ("/aws_lambda_powertools/", "Powertools"),
    ("/botocore/", "boto3 and its HTTP client"),
    ("/boto3/", "boto3 and its HTTP client"),
    ("/urllib3/", "boto3 and its HTTP client"),
    ("http/client.py", "boto3 and its HTTP client"),
    ("/json/", "json"),
    ("/xml", "XML"),
)
_PROCESS = re.compile(r'^process (\d+):"(.*)"$')
_FRAME_FILE = re.compile(r"\((.*):\d+\)$")


@dataclass
class Profile:
    """Samples by process group (e.g. "emulator", "worker") and kind of code; seconds = samples ÷ rate."""

    rate: int = RATE
    samples: dict[str, Counter[str]] = field(default_factory=dict)
    unavailable: str | None = None
    """Why there is no profile (py-spy missing or not allowed to attach), if so."""

    def seconds(self) -> dict[str, dict[str, float]]:
        return {
            group: {kind: round(count / self.rate, 2) for kind, count in counts.most_common()}
            for group, counts in self.samples.items()
        }


def kind_of(frame: str) -> str:
    found = _FRAME_FILE.search(frame)
    path = "/" + (found.group(1) if found else frame)  # py-spy writes paths from the package: moto/sqs/models.py
    found_kind = next((kind for fragment, kind in KINDS if fragment in path), None)
    if found_kind is None:  # the standard library: which module, e.g. "stdlib: threading"
        return f"stdlib: {path.rsplit('/', 1)[-1].removesuffix('.py')}" if path.endswith(".py") else "other"
    return found_kind


def parse(text: str, groups: Mapping[str, str], own_pid: int) -> dict[str, Counter[str]]:
    """py-spy's raw output (`process PID:"cmdline";frame;...;frame COUNT` per line) grouped: this
    process is "emulator"; a child whose command line contains a key of `groups` is that group."""
    samples: dict[str, Counter[str]] = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # a line of a command line that held a newline
        parts = stack.split(";")
        processes = [m for m in (_PROCESS.match(p) for p in parts) if m]
        frames = [p for p in parts if not _PROCESS.match(p)]
        if not processes or not frames:
            continue
        pid, cmdline = int(processes[-1].group(1)), processes[-1].group(2)
        group = "emulator" if pid == own_pid else next((g for key, g in groups.items() if key in cmdline), "other")
        samples.setdefault(group, Counter())[kind_of(frames[-1])] += int(count)
    return samples


@contextmanager
def sampled(output: Path, groups: Mapping[str, str]) -> Iterator[Profile]:
    """Sample this process and its children while the block runs; the profile is filled on leaving.

    `groups` maps a fragment of a child's command line (e.g. a function's name) to its group name."""
    profile = Profile()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "--pid", str(os.getpid()), "--subprocesses", "--gil", "--nonblocking"]
    command += ["--rate", str(RATE), "--format", "raw", "--output", str(output)]
    try:
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as error:
        profile.unavailable = f"py-spy could not start: {error}"
        yield profile
        return
    try:
        yield profile
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            _, errors = recorder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, errors = recorder.communicate()
        if output.exists():
            profile.samples = parse(output.read_text(errors="replace"), groups, os.getpid())
        else:
            profile.unavailable = f"py-spy wrote no profile: {errors.strip()[-300:] or f'exit {recorder.returncode}'}"
