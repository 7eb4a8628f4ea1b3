"""Worker against moto: latest upload wins under any delivery order; nothing lost; counted once."""

import csv
import io
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from handlers.common.chunks import upload_tiebreak
from handlers.common.validation import normalize_email
from tests.handlers.harness import FakeContext, Faulty, first, throttling
from tests.handlers.test_signals import emf

HEADER = "name,mail,phone\n"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def make_uploads(rng: random.Random, files: int, rows: int, emails: int) -> list[str]:
    """CSV files whose rows reuse a small set of emails (in mixed case), with repeats inside a file."""
    bodies = []
    for f in range(files):
        lines = [f"Person {f}-{r},User{rng.randrange(emails)}@Example.com,+1555{f:02d}{r:05d}" for r in range(rows)]
        bodies.append(HEADER + "\n".join(lines) + "\n")
    return bodies


def oracle(bodies: list[str]) -> dict[str, tuple[str, str]]:
    """For each email: the row of the most recent upload, the last such row in that file."""
    expected: dict[str, tuple[str, str]] = {}
    for body in bodies:  # in upload order: later files overwrite, later rows overwrite
        for row in csv.DictReader(io.StringIO(body)):
            expected[normalize_email(row["mail"])] = (row["name"], row["phone"])
    return expected


def upload_in_order(deployment, bodies):
    return [
        deployment.upload(f"uploads/file-{i}.csv", body, event_time=T0 + timedelta(minutes=i))
        for i, body in enumerate(bodies)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_final_table_is_latest_upload_last_row_under_shuffled_duplicated_deliveries(deployment, seed):
    rng = random.Random(seed)
    bodies = make_uploads(rng, files=3, rows=40, emails=25)
    job_ids = upload_in_order(deployment, bodies)
    assert deployment.drain(rng=rng, duplicates=0.4) == []
    stored = {email: (item["name"], item.get("phone")) for email, item in deployment.users().items()}
    assert stored == oracle(bodies)
    for job_id in job_ids:
        job = deployment.job(job_id)
        assert job["status"] == "COMPLETE"
        assert job["chunksDone"] == job["chunksTotal"]
        assert job["rowsWritten"] + job["rowsSuperseded"] == job["rowsValid"] == 40


def test_an_older_upload_delivered_last_never_replaces_a_newer_one(deployment):
    older = deployment.upload("uploads/old.csv", HEADER + "Old Name,ann@example.com,123456\n", event_time=T0)
    old_messages = deployment.receive_all()
    newer = deployment.upload("uploads/new.csv", HEADER + "New Name,ann@example.com,\n", event_time=T0 + timedelta(1))
    assert deployment.drain() == []  # the newer upload's chunk
    assert deployment.deliver(old_messages) == []
    item = deployment.users()["ann@example.com"]
    assert (item["name"], item.get("phone"), item["jobId"]) == ("New Name", None, newer)
    assert (deployment.job(older)["rowsWritten"], deployment.job(older)["rowsSuperseded"]) == (0, 1)
    assert deployment.job(older)["status"] == "COMPLETE"


def test_a_redelivered_chunk_is_counted_once(deployment):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    [message] = deployment.receive_all()
    assert deployment.deliver([message]) == []
    finished_at = deployment.job(job_id)["finishedAt"]
    assert deployment.deliver([message, message]) == []
    job = deployment.job(job_id)
    assert (job["chunksDone"], job["rowsWritten"], job["status"]) == (1, 2, "COMPLETE")
    assert job["finishedAt"] == finished_at, "the final status is set exactly once"


def test_job_finishes_when_workers_are_faster_than_the_producer(deployment):
    deployment.set_rows_per_message(5)
    body = HEADER + "".join(f"U{i},u{i}@example.com,\n" for i in range(200))
    event = deployment.s3_event("uploads/race.csv", deployment.put("uploads/race.csv", body))

    def tiny() -> FakeContext:
        return FakeContext(remaining_ms=100_000, step_ms=4_000)

    job_id = deployment.producer.handler(event, tiny())["jobs"][0]["jobId"]
    while deployment.continuations:  # every chunk is written before the producer's next step
        assert deployment.drain() == []
        assert deployment.job(job_id)["status"] == "PARSING"
        deployment.producer.handler(deployment.continuations.pop(0), tiny())
    assert deployment.drain() == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["chunksTotal"], job["rowsWritten"]) == ("COMPLETE", 40, 40, 200)


def test_a_malformed_message_fails_alone(deployment):
    deployment.upload("uploads/a.csv", HEADER + "".join(f"U{i},u{i}@example.com,\n" for i in range(6)))
    good = deployment.receive_all()
    bad_json = {**good[0], "MessageId": "bad-json", "Body": "{not json", "MD5OfBody": "x"}
    wrong_shape = {**good[0], "MessageId": "wrong-shape", "Body": json.dumps({"v": 1, "rows": []}), "MD5OfBody": "x"}
    failed = deployment.deliver([good[0], bad_json, good[1], wrong_shape])
    assert sorted(failed) == ["bad-json", "wrong-shape"]
    assert set(deployment.users()) == {f"u{i}@example.com" for i in range(6)}


def forged(message, change):
    """The message with its chunk changed by `change` (a function of the decoded body)."""
    body = json.loads(message["Body"])
    change(body)
    return {**message, "MessageId": "forged", "Body": json.dumps(body)}


def set_row(field, value):
    return lambda body: body["rows"][0].update({field: value})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body: body.update(jobId="no-such-job"), "names job no-such-job, which has no record"),
        (lambda body: body.update(uploadedAtMs=253_402_300_799_000), "uploadedAtMs differ"),  # the year 9999
        (lambda body: body["source"].update(key="uploads/other.csv"), "source differ"),
        (lambda body: body.update(tiebreak="F" * 64), "tiebreak differ"),
        (lambda body: body.update(expiresAt=None), "expiresAt differ"),
        (lambda body: body.update(chunk=1), "chunk 1 is beyond job"),
        (lambda body: body.update(chunk=-1), "negative"),
        (set_row("row", 2), "row number beyond job"),
        (set_row("row", 0), "row number outside"),
        (set_row("email", "NOT AN EMAIL"), "mail is not a valid email address"),
        (set_row("email", "A@example.com"), "not in normalised form"),
        (set_row("name", "n" * 20_029), "name is 20029 characters long"),
        (set_row("name", " padded "), "not in normalised form"),
        (set_row("phone", "not a phone <script>"), "phone is not an optional"),
    ],
)
def test_a_chunk_that_does_not_match_its_job_or_the_field_rules_is_refused_before_any_write(
    deployment, log_lines, change, reason
):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    logs = log_lines(deployment.worker)
    assert deployment.deliver([forged(message, change)]) == ["forged"]
    assert deployment.users() == {}, "nothing of a refused chunk is written"
    assert deployment.job(job_id)["chunksDone"] == 0, "nor counted"
    refusals = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk refused"' in line]
    assert [r["messageId"] for r in refusals] == ["forged"] and reason in refusals[0]["reason"]
    assert "<script>" not in refusals[0]["reason"] and "NOT AN EMAIL" not in refusals[0]["reason"]
    assert deployment.deliver([message]) == []  # the real chunk still goes through
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_chunks_of_a_job_still_parsing_are_written_without_a_chunk_count(deployment):
    # Workers see chunks before the producer has queued the last one: no count to check them by.
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    deployment.force_job_status(job_id, "PARSING", "chunksTotal")
    assert deployment.drain() == []
    assert set(deployment.users()) == {"a@example.com", "b@example.com"}
    assert deployment.job(job_id)["chunksDone"] == 1


def test_a_job_that_counted_a_chunk_its_producer_never_sent_fails_instead_of_waiting_for_ever(deployment):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    deployment.force_job_status(job_id, "PARSING", "chunksTotal")  # as while the producer still reads
    assert deployment.deliver([forged(message, lambda body: body.update(chunk=7))]) == []  # cannot be told yet
    deployment.force_job_status(job_id, "QUEUED", chunksTotal=1)  # the producer queues its one chunk
    assert deployment.deliver([message]) == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["chunksTotal"]) == ("FAILED", 2, 1)
    assert job["error"].startswith("more chunks were counted than the producer sent")


def test_throttled_writes_are_retried_counted_and_nothing_is_lost(deployment, monkeypatch, capsys):
    rng = random.Random(3)
    bodies = make_uploads(rng, files=2, rows=30, emails=40)
    job_ids = upload_in_order(deployment, bodies)
    flaky = Faulty(
        deployment.worker.writer._client, "put_item", lambda _kw: throttling("PutItem") if rng.random() < 0.3 else None
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky)
    capsys.readouterr()
    assert deployment.drain() == []
    assert flaky.faults > 5
    metrics = emf(capsys.readouterr().out)
    assert metrics["WriteThrottles"] == flaky.faults
    assert metrics["WriteRetries"] >= metrics["WriteThrottles"]
    stored = {email: (item["name"], item.get("phone")) for email, item in deployment.users().items()}
    assert stored == oracle(bodies)
    assert all(deployment.job(job_id)["status"] == "COMPLETE" for job_id in job_ids)


def test_rows_unwritten_when_time_runs_out_fail_their_message_and_succeed_later(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nStuck,stuck@example.com,\n")
    [message] = deployment.receive_all()
    flaky = Faulty(
        deployment.worker.writer._client,
        "put_item",
        lambda kw: throttling("PutItem") if kw["Item"]["email"] == {"S": "stuck@example.com"} else None,
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky)
    short = FakeContext(function_name="worker", remaining_ms=4_000, step_ms=300)
    assert deployment.deliver([message], short) == [message["MessageId"]]
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"]) == ("QUEUED", 0), "a failed chunk is not counted"
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky.real)  # throttling is over
    assert deployment.deliver([message]) == []
    assert set(deployment.users()) == {"a@example.com", "stuck@example.com"}
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_a_write_the_role_may_not_make_fails_its_message_and_logs_why(deployment, monkeypatch, log_lines):
    deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: dynamodb:PutItem"}},
        "PutItem",
    )
    refusing = Faulty(deployment.worker.writer._client, "put_item", lambda _kwargs: denied)
    monkeypatch.setattr(deployment.worker.writer, "_client", refusing)
    logs = log_lines(deployment.worker)

    assert deployment.deliver([message]) == [message["MessageId"]]

    [failure] = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk failed"' in line]
    assert failure["messageId"] == message["MessageId"]
    assert "AccessDeniedException" in failure["error"] and "dynamodb:PutItem" in failure["error"]
    assert "a@example.com" not in logs.getvalue()


def throttle_progress(deployment, monkeypatch, operation: str, times: int) -> None:
    """The worker's job-progress calls of `operation` are throttled `times` times."""
    real = deployment.worker.progress._client
    throttled = Faulty(real, operation, first(times, lambda: throttling(operation, "ThrottlingException")))
    monkeypatch.setattr(deployment.worker.progress, "_client", throttled)


def test_a_throttled_finish_is_retried_and_the_job_completes(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    throttle_progress(deployment, monkeypatch, "update_item", times=2)
    assert deployment.deliver([message]) == []
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_a_redelivery_finishes_a_job_whose_last_count_failed_to_finish_it(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    # Counted, then the finish keeps failing until the invocation runs out of time.
    throttle_progress(deployment, monkeypatch, "update_item", times=10_000)
    assert deployment.deliver([message], FakeContext(function_name="worker", remaining_ms=3_000)) == [
        message["MessageId"]
    ]
    assert (deployment.job(job_id)["status"], deployment.job(job_id)["chunksDone"]) == ("QUEUED", 1)
    monkeypatch.setattr(deployment.worker.progress, "_client", deployment.worker.progress._client.real)
    assert deployment.deliver([message]) == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["rowsWritten"]) == ("COMPLETE", 1, 1)


def test_a_throttled_transaction_is_retried_and_counted_once(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    [message] = deployment.receive_all()
    throttle_progress(deployment, monkeypatch, "transact_write_items", times=3)
    assert deployment.deliver([message]) == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["rowsWritten"]) == ("COMPLETE", 1, 2)


@pytest.mark.parametrize("reverse", [False, True])
def test_uploads_of_the_same_millisecond_have_one_winner_whatever_the_order(deployment, reverse):
    first = deployment.upload("uploads/a.csv", HEADER + "From A,ann@example.com,\n", event_time=T0)
    a = deployment.receive_all()
    second = deployment.upload("uploads/b.csv", HEADER + "From B,ann@example.com,\n", event_time=T0)
    b = deployment.receive_all()
    for messages in (b, a) if reverse else (a, b):
        assert deployment.deliver(messages) == []
    winner = max((first, "From A"), (second, "From B"), key=lambda job: upload_tiebreak("0055AED6DCD90281E5", job[0]))
    assert deployment.users()["ann@example.com"]["name"] == winner[1]


class Slow:
    """The real client, but PutItem takes a moment, while counting how many run at once."""

    def __init__(self, real):
        self.real, self.running, self.most, self._lock = real, 0, 0, threading.Lock()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def put_item(self, **kwargs):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)
        with self._lock:
            self.running -= 1
        return self.real.put_item(**kwargs)


def test_a_chunks_rows_are_written_concurrently_within_the_pool(deployment, monkeypatch):
    deployment.set_rows_per_message(100)
    deployment.upload("uploads/a.csv", HEADER + "".join(f"U{i},u{i}@example.com,\n" for i in range(100)))
    slow = Slow(deployment.worker.writer._client)
    monkeypatch.setattr(deployment.worker.writer, "_client", slow)
    assert deployment.drain() == []
    assert 1 < slow.most <= deployment.worker.WRITERS
    assert len(deployment.users()) == 100
