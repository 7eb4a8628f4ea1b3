"""Backoff: full jitter under a growing cap, bounded by the time left."""

import random

import pytest
from botocore.exceptions import ClientError

from handlers.common.retry import OutOfTime, call_with_backoff, delays


def test_delays_are_jittered_below_a_doubling_cap(monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # the top of each range
    tops = [d for d, _ in zip(delays(base=0.05, cap=5.0), range(10), strict=False)]
    assert tops == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    monkeypatch.undo()
    sample = [d for d, _ in zip(delays(base=0.05, cap=5.0), range(200), strict=False)]
    assert all(0 <= d <= 5.0 for d in sample)
    assert len(set(sample)) > 150, "jittered, not fixed"


def _throttle():
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Op")


def test_retryable_errors_are_retried_until_success():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 4:
            raise _throttle()
        return "ok"

    retried = []
    assert call_with_backoff(flaky, lambda: 60.0, on_retry=retried.append) == "ok"
    assert len(attempts) == 4 and len(retried) == 3


def test_other_errors_are_raised_at_once():
    calls = []

    def broken():
        calls.append(1)
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "no"}}, "Op")

    with pytest.raises(ClientError, match="ValidationException"):
        call_with_backoff(broken, lambda: 60.0)
    assert len(calls) == 1


def test_retries_stop_when_time_runs_out():
    def always():
        raise _throttle()

    with pytest.raises(OutOfTime, match="ThrottlingException"):
        call_with_backoff(always, lambda: 0.0)
