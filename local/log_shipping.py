"""Function logs into the emulator's CloudWatch Logs, as Lambda ships them to the function's log group.

Lambda writes what a function prints to its log group (the program's `logging_config.log_group`),
with the function's execution role — which is why every role the program builds may
`logs:CreateLogStream` and `logs:PutLogEvents` on its own group. Local mode does the same, so that
`aws logs filter-log-events --endpoint-url …` and tools built on CloudWatch Logs (the `ingest dlq`
command's "why did it fail") work against a local stack as against AWS. Lines are batched every
half second, per function, as the Lambda service batches them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.registry import FunctionSpec

FLUSH_SECONDS = 0.5
# PutLogEvents takes at most 10,000 events or 1,048,576 bytes (each event counted with 26 bytes more).
_MAX_EVENTS = 10_000
_MAX_BATCH_BYTES = 1_048_576 - 10_000
# One event holds at most 256 KiB (less its 26 bytes): Lambda cuts longer lines.
_MAX_EVENT_CHARS = 256 * 1024 - 26 - 3


def log_group_of(spec: FunctionSpec) -> str:
    """Where Lambda sends a function's logs: its configured group, else `/aws/lambda/<name>`."""
    return spec.log_group or f"/aws/lambda/{spec.name}"


class LogShipper:
    """Buffers each function's lines and puts them into its log group, with the function's role."""

    def __init__(self, logs_client: Callable[[FunctionSpec], Any], report: Callable[[str], None]) -> None:
        self._client = logs_client
        self._report = report
        self._pending: dict[str, tuple[FunctionSpec, list[dict[str, Any]]]] = {}
        self._streams: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def add(self, spec: FunctionSpec, line: str) -> None:
        message = line if len(line.encode()) <= _MAX_EVENT_CHARS else line[: _MAX_EVENT_CHARS // 4] + "…"
        event = {"timestamp": int(time.time() * 1000), "message": message}
        with self._lock:
            self._pending.setdefault(spec.name, (spec, []))[1].append(event)

    def stop(self) -> None:
        """Ship what is buffered, then stop."""
        self._stop.set()
        self._thread.join(5)
        self._flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for spec, events in pending.values():
            try:
                self._put(spec, events)
            except Exception as error:  # a log line lost is reported, never a crash of the runtime
                self._report(f"{spec.name}: {len(events)} log lines not shipped to CloudWatch Logs: {error}")

    def _stream(self, spec: FunctionSpec, client: Any) -> str:
        """One stream per function and run, named as Lambda names them (`yyyy/mm/dd/[$LATEST]<id>`)."""
        if spec.name not in self._streams:
            name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
            client.create_log_stream(logGroupName=log_group_of(spec), logStreamName=name)
            self._streams[spec.name] = name
        return self._streams[spec.name]

    def _put(self, spec: FunctionSpec, events: list[dict[str, Any]]) -> None:
        client = self._client(spec)
        stream = self._stream(spec, client)
        batch: list[dict[str, Any]] = []
        size = 0
        for event in events:
            cost = len(event["message"].encode()) + 26
            if batch and (len(batch) == _MAX_EVENTS or size + cost > _MAX_BATCH_BYTES):
                client.put_log_events(logGroupName=log_group_of(spec), logStreamName=stream, logEvents=batch)
                batch, size = [], 0
            batch.append(event)
            size += cost
        if batch:
            client.put_log_events(logGroupName=log_group_of(spec), logStreamName=stream, logEvents=batch)
