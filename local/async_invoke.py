"""Asynchronous invocation, as Lambda runs it: an internal queue, retries, then the on-failure destination.

S3 notifications and `Invoke` with `InvocationType=Event` (the producer continuing a long file)
land here. Lambda's documented behaviour
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):
- a function error is retried up to `MaximumRetryAttempts` times (default 2), the first retry
  after about one minute, the second after about two; the request id stays the same;
- an event older than `MaximumEventAgeInSeconds` is not retried;
- an event that is not processed goes to the on-failure destination as an invocation record
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html), sent with
  the function's execution role, or is dropped (and logged) when there is none.
The delays are Lambda's by default; `retry_delays` shortens them (tests, demos), and start-up says so.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from local.registry import DEFAULT_ASYNC_RETRIES, DEFAULT_MAX_EVENT_AGE_SECONDS, AsyncInvokeConfig, FunctionSpec

# Lambda's retry delays: "one minute before the first retry and two minutes before the second".
LAMBDA_RETRY_DELAYS: tuple[float, ...] = (60.0, 120.0)


class Result(Protocol):
    """What a function host returns (`local.functions.InvocationResult`)."""

    request_id: str
    payload: Any
    error: dict[str, Any] | None

    @property
    def ok(self) -> bool: ...


Invoke = Callable[[FunctionSpec, Any, str], Result]
"""Runs one invocation of a function with this event and request id, blocking until it ends."""

SendRecord = Callable[[FunctionSpec, str, str], None]
"""Sends a destination record (JSON text) to a destination ARN with the function's role."""


@dataclass(order=True)
class _Pending:
    due: float
    sequence: int
    spec: FunctionSpec = field(compare=False)
    event: Any = field(compare=False)
    request_id: str = field(compare=False)
    received: float = field(compare=False)
    attempts: int = field(compare=False, default=0)


def destination_record(spec: FunctionSpec, pending: _Pending, result: Result | None, condition: str) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if result is not None and result.error is not None:
        response["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": pending.request_id,
            "functionArn": f"{spec.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": pending.attempts,
        },
        "requestPayload": pending.event,
        "responseContext": response,
        "responsePayload": None if result is None else (result.error or result.payload),
    }


class AsyncInvoker:
    """Lambda's event queue for every function of the stack."""

    def __init__(
        self,
        configs: dict[str, AsyncInvokeConfig],
        invoke: Invoke,
        send_record: SendRecord,
        *,
        log: Callable[[str], None],
        retry_delays: Sequence[float] = LAMBDA_RETRY_DELAYS,
        max_workers: int = 16,
    ) -> None:
        self._configs = configs
        self._invoke = invoke
        self._send_record = send_record
        self._log = log
        self._delays = tuple(retry_delays) or LAMBDA_RETRY_DELAYS
        self._heap: list[_Pending] = []
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="async-invoke")
        self._scheduler = threading.Thread(target=self._schedule, name="async-scheduler", daemon=True)
        self._scheduler.start()

    def submit(
        self, spec: FunctionSpec, event: Any, request_id: str | None = None, *, delay_seconds: float = 0.0
    ) -> str:
        """Queue an event for the function (Lambda's 202 Accepted); returns its request id.
        `delay_seconds`: the event reaches Lambda that much later (an S3 notification delivered again)."""
        request_id = request_id or str(uuid.uuid4())
        now = time.monotonic() + delay_seconds
        self._push(_Pending(now, next(self._sequence), spec, event, request_id, received=now))
        return request_id

    @property
    def pending(self) -> int:
        """Events queued, waiting for a retry, or running."""
        with self._wake:
            return len(self._heap) + self._running

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, pending: _Pending) -> None:
        with self._wake:
            heapq.heappush(self._heap, pending)
            self._wake.notify_all()

    def _schedule(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0].due > time.monotonic()):
                    timeout = None if not self._heap else max(0.0, self._heap[0].due - time.monotonic())
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                pending = heapq.heappop(self._heap)
                self._running += 1
            self._pool.submit(self._run, pending)

    def _config(self, spec: FunctionSpec) -> AsyncInvokeConfig:
        """The function's event-invoke config, or Lambda's defaults when the program sets none."""
        return self._configs.get(spec.name) or AsyncInvokeConfig(
            function_name=spec.name,
            max_retry_attempts=DEFAULT_ASYNC_RETRIES,
            max_event_age_seconds=DEFAULT_MAX_EVENT_AGE_SECONDS,
            on_failure=None,
            on_success=None,
        )

    def _run(self, pending: _Pending) -> None:
        try:
            self._attempt(pending)
        except Exception as error:  # never lose the scheduler to one event
            self._log(f"{pending.spec.name}: async invocation {pending.request_id} could not run: {error!r}")
        finally:
            with self._wake:
                self._running -= 1

    def _attempt(self, pending: _Pending) -> None:
        spec, config = pending.spec, self._config(pending.spec)
        pending.attempts += 1
        result = self._invoke(spec, pending.event, pending.request_id)
        if result.ok:
            if config.on_success:
                self._deliver(spec, config.on_success, destination_record(spec, pending, result, "Success"))
            return
        retries_done = pending.attempts - 1
        age = time.monotonic() - pending.received
        if retries_done < config.max_retry_attempts:
            delay = self._delays[min(retries_done, len(self._delays) - 1)]
            if age + delay <= config.max_event_age_seconds:
                self._log(
                    f"{spec.name}: async invocation {pending.request_id} failed"
                    f" ({(result.error or {}).get('errorType', 'error')}); retry {retries_done + 1}"
                    f" of {config.max_retry_attempts} in {delay:g} s"
                )
                pending.due = time.monotonic() + delay
                pending.sequence = next(self._sequence)
                self._push(pending)
                return
            condition = "EventAgeExceeded"
        else:
            condition = "RetriesExhausted"
        if config.on_failure:
            self._log(f"{spec.name}: async invocation {pending.request_id} {condition}; record sent to on-failure")
            self._deliver(spec, config.on_failure, destination_record(spec, pending, result, condition))
        else:
            self._log(f"{spec.name}: async invocation {pending.request_id} {condition}; no destination, dropped")

    def _deliver(self, spec: FunctionSpec, destination: str, record: dict[str, Any]) -> None:
        try:
            self._send_record(spec, destination, json.dumps(record))
        except Exception as error:
            # Lambda, too, loses the record when it cannot write to the destination: say so loudly.
            self._log(f"{spec.name}: could not send the invocation record to {destination}: {error}")
