"""The chunk signing keys: derived per job from the stack's secret, which is read once, on first use."""

import hashlib
import hmac
import importlib
import json
import threading

import pytest

from handlers.common.signing import MIN_SECRET_CHARACTERS, SECRET_ARN_VARIABLE, JobKeys

SECRET = "Zq8" * 22  # 66 letters and digits, as the program draws them


class CountingSecret:
    """A secret reader that counts its reads (and can be slow, to let threads race for the first)."""

    def __init__(self, value: str = SECRET, delay: threading.Event | None = None) -> None:
        self.value, self.reads, self._delay = value, 0, delay

    def __call__(self) -> str:
        self.reads += 1
        if self._delay is not None:
            self._delay.wait(5)
        return self.value


def test_a_jobs_key_is_the_hmac_of_its_id_under_the_stack_secret():
    expected = hmac.new(SECRET.encode(), b"5637ceb053391deb4d3c7bcf721f6fe3", hashlib.sha256).digest()
    assert JobKeys(lambda: SECRET).for_job("5637ceb053391deb4d3c7bcf721f6fe3") == expected
    assert len(expected) == 32


def test_each_job_has_its_own_key_and_each_stack_its_own():
    keys, other_stack = JobKeys(lambda: SECRET), JobKeys(lambda: SECRET[::-1])
    assert keys.for_job("a" * 32) != keys.for_job("b" * 32)
    assert keys.for_job("a" * 32) != other_stack.for_job("a" * 32)


def test_the_secret_is_read_on_first_use_and_once():
    secret = CountingSecret()
    keys = JobKeys(secret)
    assert secret.reads == 0, "making the keys reads nothing: a cold start does not pay for it"
    first = keys.for_job("a" * 32)
    assert (keys.for_job("a" * 32), secret.reads) == (first, 1)
    keys.for_job("b" * 32)
    assert secret.reads == 1


def test_threads_racing_for_the_first_key_read_the_secret_once():
    release = threading.Event()
    secret = CountingSecret(delay=release)
    keys = JobKeys(secret)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(keys.for_job("a" * 32))) for _ in range(8)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert secret.reads == 1 and len(set(results)) == 1 and len(results) == 8


def test_a_short_secret_is_refused_without_showing_it():
    short = "x" * (MIN_SECRET_CHARACTERS - 1)
    with pytest.raises(ValueError, match=f"holds {MIN_SECRET_CHARACTERS - 1} characters") as refused:
        JobKeys(lambda: short).for_job("a" * 32)
    assert short not in str(refused.value)


def test_the_worker_reads_the_secret_when_a_chunk_arrives_not_at_import(deployment, monkeypatch, log_lines):
    # GIVEN a chunk the producer signed, and a worker whose secret cannot be read (it does not exist)
    deployment.upload("uploads/a.csv", "name,mail,phone\nAnn,ann@example.com,\n")
    [message] = deployment.receive_all()
    missing = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:csv-ingest-test-missing-AbCdEf"
    monkeypatch.setenv(SECRET_ARN_VARIABLE, missing)
    # WHEN the worker is imported: nothing is read, so nothing fails
    worker = importlib.reload(deployment.worker)
    deployment.worker = worker
    logs = log_lines(worker)
    # THEN the chunk fails (and would be delivered again), saying why without any value, and nothing is written
    assert deployment.deliver([message]) == [message["MessageId"]]
    assert deployment.users() == {}
    [line] = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk not checked"' in line]
    assert "ResourceNotFoundException" in line["error"] and "GetSecretValue" in line["error"]
    # … and once the secret is there again, the same message is written
    monkeypatch.setenv(SECRET_ARN_VARIABLE, deployment.signing_secret_arn)
    deployment.worker = importlib.reload(worker)
    assert deployment.deliver([message]) == []
    assert set(deployment.users()) == {"ann@example.com"}
