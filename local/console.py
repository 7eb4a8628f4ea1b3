"""What `local up` shows on its terminal of the log lines local mode keeps in `.local/<stack>/logs/`.

Every line goes to its source's file whatever the console shows (`local.session.LogSink`). The
console shows, of each line:

- in full, `[source] line`, when its source is one asked for (`--logs`: all of them; `--logs
  worker,producer`: the sources whose names hold one of those words);
- else what a `summary` makes of it (the command's: a job started, a job finished), if anything;
- else the line, made short, when it is a warning or an error: a function's structured line at
  level WARNING or above, the Lambda runtime's own error lines (an import or handler error, a
  timeout, a process that exited), and local mode's own reports (IAM's refusals, the Lambda
  service's failed deliveries and retries, S3's dropped notifications, the API's 5xx answers);
- else nothing: START/END/REPORT, INFO lines, metrics, the API's ordinary requests stay in the files.

A function's structured lines are JSON objects with a `level` key: Powertools for AWS Lambda writes
`level`, `location`, `message`, `timestamp` and the function's keys ("Standard structured keys",
https://docs.powertools.aws.dev/lambda/python/latest/core/logger/), and Lambda reads a line's level
from its `level` key, with levels TRACE, DEBUG, INFO, WARN, ERROR and FATAL, INFO where it is missing
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html,
https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html); Python's logging says WARNING
and CRITICAL.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from local.session import API_LOG, LOCAL_SOURCES

Summary = Callable[[str, Mapping[str, Any] | None, str], list[str] | None]
"""(source, the line's JSON object or None, the line) → the lines to show for it, or None: not its line."""

_WARNING_LEVELS = frozenset({"WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"})
# What the Lambda runtime (and local mode's function host) write for a failed invocation or init:
# Python's runtime prefixes an error it reports with `[ERROR]`, an invocation past its timeout is
# "Task timed out after N seconds", a crashed process "RequestId: … Error: Runtime exited …".
_RUNTIME_ERROR = re.compile(
    r"^\[(?:ERROR|WARNING|WARN|CRITICAL)\]"
    r"|^INIT_REPORT .*\tStatus: error"
    r"|Task timed out after "
    r"|^RequestId: \S+ Error: "
    r"|: code changed but the archive did not build"
)
# The API's access log: `METHOD resource STATUS NNms request-id` (`local.apigw`).
_ACCESS_LINE = re.compile(r"^[A-Z]+ \S+ (?P<status>\d{3}) \d+ms \S+$")
# What every Powertools line carries; the rest are the line's own fields. `exception` (a traceback,
# many lines) stays in the file; `exception_name` says what it was.
_STANDARD_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
        "exception",
    }
)


def structured(text: str) -> dict[str, Any] | None:
    """The line's JSON object, if it is one (a structured log line)."""
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def is_warning_or_error(source: str, record: Mapping[str, Any] | None, text: str) -> bool:
    """Whether a log line reports a warning or an error (see the module's docstring)."""
    if source == API_LOG:
        access = _ACCESS_LINE.match(text)
        return access is None or int(access["status"]) >= 500
    if source in LOCAL_SOURCES:
        return True
    if record is not None:
        return str(record.get("level", "")).upper() in _WARNING_LEVELS
    return _RUNTIME_ERROR.search(text) is not None


def short(record: Mapping[str, Any] | None, text: str) -> str:
    """A warning or error as one line: a structured one as its level, message and own fields."""
    if record is None:
        return text
    fields = ", ".join(f"{key}={_value(value)}" for key, value in record.items() if key not in _STANDARD_KEYS)
    line = f"{record.get('level', '')} {_value(record.get('message', ''))}".strip()
    return f"{line} ({fields})" if fields else line


def _value(value: Any) -> str:
    """A field's value on one line: a line break or tab inside it as `\\n`, `\\t` (the terminal's stream
    escapes every other control character, `ingest.output.for_people`)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def source_matcher(words: Sequence[str]) -> Callable[[str], bool]:
    """Sources shown in full: every one for `all`, else those whose name holds one of `words`."""
    if "all" in words:
        return lambda source: True
    return lambda source: any(word in source for word in words)


class Console:
    """Decides what of each log line (source, text) reaches `out`; callable as `LocalStack`'s console."""

    def __init__(
        self, out: TextIO, *, full: Callable[[str], bool] = lambda source: False, summary: Summary | None = None
    ) -> None:
        self._out = out
        self._full = full
        self._summary = summary
        self._lock = threading.Lock()

    def __call__(self, source: str, text: str) -> None:
        with self._lock:  # a summary keeps state across lines from many threads
            record = structured(text) if source not in LOCAL_SOURCES else None
            # Every line reaches the summary, also those shown in full: a job's end is in the worker's.
            summarised = self._summary(source, record, text) if self._summary is not None else None
            if self._full(source):
                shown = [f"[{source}] {text}", *(summarised or [])]
            elif summarised is not None:
                shown = summarised
            elif is_warning_or_error(source, record, text):
                shown = [f"[{source}] {short(record, text)}"]
            else:
                return
            if shown:
                self._out.write("".join(line + "\n" for line in shown))
                self._out.flush()
