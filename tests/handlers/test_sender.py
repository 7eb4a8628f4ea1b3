"""Sending chunks: batches of at most 10 entries and 1 MiB, bounded in flight, failed entries retried."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers.common.chunks import Chunk, Row, Source
from handlers.producer.sender import ChunkSender, SendFailed

ONE_MIB = 1024 * 1024
KEY = bytes(32)


def chunk(number: int, rows: int = 1, name: str = "n") -> Chunk:
    return Chunk(
        "job",
        number,
        1,
        "0" * 64,
        Source("b", "k", "v"),
        None,
        "0" * 16,
        tuple(Row(i, (name, f"u{i}@example.com", None)) for i in range(1, rows + 1)),
    )


class ScriptedSqs:
    """Answers SendMessageBatch from a script: each call fails the entries `fail(call, id)` names."""

    def __init__(self, fail=lambda call, entry_id: None, delay: float = 0.0):
        self.calls: list[list[str]] = []
        self.sizes: list[int] = []
        self._fail, self._delay, self._lock = fail, delay, threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 (boto3's argument names)
        with self._lock:
            call = len(self.calls)
            self.calls.append([e["Id"] for e in Entries])
            self.sizes.append(sum(len(e["MessageBody"].encode()) for e in Entries))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self._delay)
        with self._lock:
            self.in_flight -= 1
        failed = [(e["Id"], code) for e in Entries if (code := self._fail(call, e["Id"]))]
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in dict(failed)],
            "Failed": [
                {"Id": i, "Code": c, "SenderFault": c == "InvalidMessageContents", "Message": c} for i, c in failed
            ],
        }


@pytest.fixture
def executor():
    with ThreadPoolExecutor(4) as pool:
        yield pool


def test_chunks_go_in_batches_of_at_most_ten_with_a_bounded_number_in_flight(executor):
    sqs = ScriptedSqs(delay=0.02)
    sender = ChunkSender(sqs, "q", lambda: 60.0, executor, ONE_MIB, max_in_flight=2, mac_key=KEY)
    for n in range(95):
        sender.send(chunk(n))
    sender.flush()
    assert [len(ids) for ids in sqs.calls] == [10] * 9 + [5]
    assert sorted(i for ids in sqs.calls for i in ids) == sorted(f"chunk-{n}" for n in range(95))
    assert sqs.max_in_flight == 2 and sender.sent == 95


def test_draining_is_estimated_from_the_slowest_send(executor):
    sender = ChunkSender(ScriptedSqs(delay=0.2), "q", lambda: 60.0, executor, ONE_MIB, mac_key=KEY)
    assert sender.drain_seconds() == 0.0  # nothing sent yet: nothing known
    for n in range(25):
        sender.send(chunk(n))
    sender.flush()
    # The last batch may wait for a slot (one send), then for its own.
    assert sender.drain_seconds() >= 2 * 0.2


@pytest.mark.parametrize("budget", [ONE_MIB, 262_144])
def test_a_batch_never_exceeds_the_byte_budget(executor, budget):
    sqs = ScriptedSqs()
    sender = ChunkSender(sqs, "q", lambda: 60.0, executor, budget, mac_key=KEY)
    for n in range(30):
        sender.send(chunk(n, rows=900 * budget // ONE_MIB, name="x" * 100))  # fewer than 10 fit in the budget
    sender.flush()
    assert max(sqs.sizes) <= budget
    assert max(len(ids) for ids in sqs.calls) < 10


def test_failed_entries_are_retried_until_they_are_queued(executor):
    sqs = ScriptedSqs(fail=lambda call, entry_id: "ServiceUnavailable" if call < 3 and entry_id.endswith("7") else None)
    retries = []
    sender = ChunkSender(sqs, "q", lambda: 60.0, executor, ONE_MIB, on_retry=lambda: retries.append(1), mac_key=KEY)
    for n in range(20):
        sender.send(chunk(n))
    sender.flush()
    assert sender.sent == 20
    assert len(retries) >= 1
    assert [ids for ids in sqs.calls if len(ids) < 10], "only the failed entries are sent again"


def test_an_entry_sqs_refuses_fails_the_send(executor):
    sqs = ScriptedSqs(fail=lambda call, entry_id: "InvalidMessageContents" if entry_id == "chunk-3" else None)
    sender = ChunkSender(sqs, "q", lambda: 60.0, executor, ONE_MIB, mac_key=KEY)
    for n in range(5):
        sender.send(chunk(n))
    with pytest.raises(SendFailed, match="SQS refused chunk-3: InvalidMessageContents"):
        sender.flush()


def test_entries_still_failing_when_time_runs_out_fail_the_send(executor):
    sqs = ScriptedSqs(fail=lambda call, entry_id: "ServiceUnavailable")
    sender = ChunkSender(sqs, "q", lambda: 0.0, executor, ONE_MIB, mac_key=KEY)
    sender.send(chunk(0))
    with pytest.raises(SendFailed, match="still unsent when time ran out"):
        sender.flush()
