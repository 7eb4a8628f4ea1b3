"""Exponential backoff with full jitter, bounded by the invocation's remaining time."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

# Errors DynamoDB and SQS answer when a retry later may succeed.
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "Throttling",
        "RequestThrottled",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalError",
    }
)

# A PartiQL batch's statements each answer their own error code, without the `Exception` suffix
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html). These
# may succeed when sent again; the others (a failed condition, a duplicate, a refusal) never will as
# they are.
STATEMENT_THROTTLING_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
STATEMENT_RETRYABLE_CODES = STATEMENT_THROTTLING_CODES | {"InternalServerError", "TransactionConflict"}


class OutOfTime(RuntimeError):
    """Retries would run past the time this invocation has left."""


@dataclass
class RetryCounter:
    """Counts retries and, among them, throttles (for metrics). One counter serves a chunk's calls on
    the worker's pool: each count is taken under a lock (CPython happens to run these `+=` without a
    thread switch today; nothing promises it)."""

    retries: int = 0
    throttles: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __call__(self, error: BaseException) -> None:
        self._count(is_throttle(error))

    def count_statement(self, code: str) -> None:
        """A statement (or a read) sent again, after the code its batch answered for it."""
        self._count(code in STATEMENT_THROTTLING_CODES)

    def _count(self, throttled: bool) -> None:
        with self._lock:
            self.retries += 1
            self.throttles += throttled


def error_code(error: BaseException) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def is_throttle(error: BaseException) -> bool:
    return error_code(error) in THROTTLING_CODES


def is_retryable(error: BaseException) -> bool:
    return error_code(error) in THROTTLING_CODES | TRANSIENT_CODES


def delays(base: float = 0.05, cap: float = 5.0) -> Iterator[float]:
    """Full-jitter delays: uniform in [0, min(cap, base × 2^attempt)] (AWS Architecture Blog)."""
    attempt = 0
    while True:
        yield random.uniform(0, min(cap, base * 2**attempt))
        attempt += 1


def call_with_backoff(
    operation: Callable[[], T],
    seconds_left: Callable[[], float],
    on_retry: Callable[[BaseException], None] = lambda _error: None,
    retryable: Callable[[BaseException], bool] = is_retryable,
) -> T:
    """Call `operation`, retrying retryable errors with backoff while time remains.

    Raises the last error when it is not retryable, or `OutOfTime` (chained to it) when the next
    wait would not fit in `seconds_left()`.
    """
    for delay in delays():
        try:
            return operation()
        except Exception as error:
            if not retryable(error):
                raise
            if delay >= seconds_left():
                raise OutOfTime(f"gave up retrying after {error_code(error) or error!r}: out of time") from error
            on_retry(error)
            time.sleep(delay)
    raise AssertionError("unreachable: delays() never ends")
