"""Lambda's event sources as local mode runs them: the SQS mapping's batches, and asynchronous retries.

The queue is the emulator's (in this process); the function is a recording stand-in, since what is
under test is how the mapping and the invoker drive a function, not the function.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.async_invoke import AsyncInvoker
from local.emulator import DeliveryFault, Emulator
from local.esm import QueuePoller, failed_message_ids
from local.registry import AsyncInvokeConfig, FunctionSpec, QueueEventSource
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import wait_for

SPEC = FunctionSpec(
    name="fn",
    arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/fn",
    handler="handlers.fn.app.handler",
    runtime="python3.13",
    archive=Path("fn.zip"),
    code_sha256="",
    environment={},
    timeout_seconds=3,
    memory_mb=128,
    log_group=None,
    reserved_concurrency=None,
)


@dataclass(frozen=True)
class Result:
    request_id: str
    payload: Any
    error: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.error is None


_names = iter(range(10_000))


def new_queue(emulator: Emulator, visibility: int = 30, max_receives: int | None = None) -> tuple[str, str]:
    sqs = emulator.client("sqs")
    attributes = {"VisibilityTimeout": str(visibility)}
    if max_receives:
        dlq = sqs.create_queue(QueueName=f"dlq-{next(_names)}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
    url = sqs.create_queue(QueueName=f"q-{next(_names)}", Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


class Recorder:
    """A function that records the batches it gets and answers with `answer(batch)`."""

    def __init__(self, answer: Any = None, pause: float = 0.0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.answer = answer or (lambda records: Result("id", {"batchItemFailures": []}, None))
        self.pause = pause
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, spec: FunctionSpec, event: dict[str, Any]) -> Result:
        with self._lock:
            self.batches.append(event["Records"])
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(self.pause)
        with self._lock:
            self.running -= 1
        return self.answer(event["Records"])


def poller(
    emulator: Emulator,
    url: str,
    arn: str,
    recorder: Recorder,
    *,
    batch: int = 10,
    window: int = 0,
    concurrency: int = 2,
    faulty: bool = False,
) -> QueuePoller:
    """A mapping of the queue to `recorder`; `faulty`: it applies the emulator's delivery faults."""
    source = QueueEventSource(
        uuid="esm",
        function_arn=SPEC.arn,
        queue_arn=arn,
        batch_size=batch,
        batching_window_seconds=window,
        max_concurrency=concurrency,
        report_batch_item_failures=True,
        enabled=True,
    )
    mapping = QueuePoller(
        source,
        SPEC,
        sqs=emulator.client("sqs"),
        queue_url=url,
        region=REGION,
        invoke=recorder,
        log=lambda _: None,
        deliveries=(lambda: emulator.faults.delivery("sqs", SPEC.name)) if faulty else None,
    )
    mapping.start()
    return mapping


def send(emulator: Emulator, url: str, bodies: list[str]) -> None:
    sqs = emulator.client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def depth(emulator: Emulator, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = emulator.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def test_the_batching_window_gathers_messages_sent_apart_into_one_batch(emulator: Emulator) -> None:
    url, arn = new_queue(emulator)
    recorder = Recorder()
    mapping = poller(emulator, url, arn, recorder, batch=10, window=3, concurrency=1)
    try:
        for n in range(4):
            send(emulator, url, [f"m{n}"])
            time.sleep(0.3)
        wait_for(lambda: recorder.batches, 10, "a batch")
    finally:
        mapping.stop()
    assert [sorted(r["body"] for r in batch) for batch in recorder.batches] == [["m0", "m1", "m2", "m3"]]


def test_batches_hold_at_most_the_batch_size_and_run_at_most_max_concurrency_at_once(emulator: Emulator) -> None:
    url, arn = new_queue(emulator)
    send(emulator, url, [f"m{n}" for n in range(40)])
    recorder = Recorder(pause=0.3)
    mapping = poller(emulator, url, arn, recorder, batch=4, concurrency=3)
    try:
        wait_for(lambda: depth(emulator, url) == 0, 30, "every message to be processed and deleted")
    finally:
        mapping.stop()
    assert max(len(batch) for batch in recorder.batches) <= 4
    assert sorted(r["body"] for batch in recorder.batches for r in batch) == sorted(f"m{n}" for n in range(40))
    assert 1 < recorder.most_at_once <= 3


def test_an_sqs_record_has_lambdas_shape(emulator: Emulator) -> None:
    url, arn = new_queue(emulator)
    send(emulator, url, ["hello"])
    recorder = Recorder()
    mapping = poller(emulator, url, arn, recorder)
    try:
        wait_for(lambda: recorder.batches, 10, "a batch")
    finally:
        mapping.stop()
    [record] = recorder.batches[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn and record["awsRegion"] == REGION
    assert record["body"] == "hello" and record["receiptHandle"] and record["md5OfBody"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_only_the_reported_failures_stay_and_they_reach_the_dlq_after_max_receives(emulator: Emulator) -> None:
    url, arn = new_queue(emulator, visibility=1, max_receives=2)

    def fail_poison(records: list[dict[str, Any]]) -> Result:
        failed = [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "poison"]
        return Result("id", {"batchItemFailures": failed}, None)

    recorder = Recorder(fail_poison)
    send(emulator, url, ["good-1", "poison", "good-2"])
    mapping = poller(emulator, url, arn, recorder, concurrency=1)
    try:
        wait_for(lambda: depth(emulator, url) == 0, 30, "the queue to empty")
    finally:
        mapping.stop()
    bodies = [r["body"] for batch in recorder.batches for r in batch]
    assert bodies.count("good-1") == bodies.count("good-2") == 1
    assert bodies.count("poison") == 2


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        (Result("id", None, {"errorType": "Sandbox.Timedout"}), {"a", "b"}),  # the invocation failed
        (Result("id", {"batchItemFailures": []}, None), set()),
        (Result("id", None, None), set()),
        (Result("id", {"batchItemFailures": [{"itemIdentifier": "b"}]}, None), {"b"}),
        (Result("id", {"batchItemFailures": [{"itemIdentifier": ""}]}, None), {"a", "b"}),  # invalid: all
        (Result("id", {"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None), {"a", "b"}),
        (Result("id", {"batchItemFailures": [{}]}, None), {"a", "b"}),
        (Result("id", {"batchItemFailures": "b"}, None), {"a", "b"}),
    ],
)
def test_which_messages_a_result_leaves_on_the_queue(result: Result, failed: set[str]) -> None:
    assert failed_message_ids(result, {"a", "b"}, report_batch_item_failures=True) == failed


def test_without_report_batch_item_failures_a_successful_invocation_deletes_the_whole_batch() -> None:
    result = Result("id", {"batchItemFailures": [{"itemIdentifier": "b"}]}, None)
    assert failed_message_ids(result, {"a", "b"}, report_batch_item_failures=False) == set()


def test_a_duplicating_fault_hands_every_batch_to_two_invocations_and_one_success_deletes(emulator: Emulator) -> None:
    url, arn = new_queue(emulator, visibility=1)
    bodies = [f"m{n:02d}" for n in range(12)]
    send(emulator, url, bodies)
    seen: set[str] = set()
    lock = threading.Lock()

    def fail_first_sight(records: list[dict[str, Any]]) -> Result:
        """Fails a message the first time any invocation sees it: only its copy can delete it."""
        with lock:
            first = [r for r in records if r["messageId"] not in seen]
            seen.update(r["messageId"] for r in first)
        return Result("id", {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in first]}, None)

    recorder = Recorder(fail_first_sight, pause=0.2)
    emulator.faults.add(DeliveryFault("sqs", SPEC.name, duplicate=True))
    mapping = poller(emulator, url, arn, recorder, batch=4, concurrency=1, faulty=True)
    try:
        wait_for(lambda: depth(emulator, url) == 0, 30, "every message to be deleted")
        [(_, duplicated)] = emulator.faults.applied()
    finally:
        mapping.stop()
        emulator.faults.clear()

    delivered = Counter(r["body"] for batch in recorder.batches for r in batch)
    assert delivered == {body: 2 for body in bodies}  # twice each, and never again: one copy deleted it
    assert recorder.most_at_once == 2  # the two copies ran at the same time
    assert duplicated == len(bodies)


def test_a_reordering_fault_delivers_the_batch_behind_first_and_shuffles_records(emulator: Emulator) -> None:
    url, arn = new_queue(emulator)
    bodies = [f"m{n:02d}" for n in range(20)]
    send(emulator, url, bodies)
    recorder = Recorder()
    emulator.faults.add(DeliveryFault("sqs", SPEC.name, reorder=True, seed=1))
    mapping = poller(emulator, url, arn, recorder, batch=5, concurrency=1, faulty=True)
    try:
        wait_for(lambda: depth(emulator, url) == 0, 30, "every message to be deleted")
        [(_, reordered)] = emulator.faults.applied()
    finally:
        mapping.stop()
        emulator.faults.clear()

    order = [r["body"] for batch in recorder.batches for r in batch]
    assert sorted(order) == bodies  # each once
    assert min(r["body"] for r in recorder.batches[0]) > max(r["body"] for r in recorder.batches[1])
    assert any([r["body"] for r in batch] != sorted(r["body"] for r in batch) for batch in recorder.batches)
    assert reordered == len(bodies)


# --- asynchronous invocation ----------------------------------------------------------------------


class Flaky:
    """A function failing its first `failures` attempts; records the request ids it was given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[str, float]] = []

    def __call__(self, spec: FunctionSpec, event: Any, request_id: str) -> Result:
        self.calls.append((request_id, time.monotonic()))
        if len(self.calls) <= self.failures:
            return Result(request_id, None, {"errorType": "RuntimeError", "errorMessage": "boom", "stackTrace": []})
        return Result(request_id, {"ok": True}, None)


def invoker(function: Flaky, sent: list[tuple[str, str]], **config: Any) -> AsyncInvoker:
    settings = {"max_retry_attempts": 2, "max_event_age_seconds": 3600, "on_failure": "arn:dest", "on_success": None}
    settings.update(config)
    configs = {SPEC.name: AsyncInvokeConfig(function_name=SPEC.name, **settings)}
    return AsyncInvoker(
        configs,
        function,
        lambda spec, destination, record: sent.append((destination, record)),
        log=lambda _: None,
        retry_delays=(0.2, 0.4),
    )


def test_a_failing_event_is_retried_with_its_request_id_after_lambdas_delays_then_recorded() -> None:
    function, sent = Flaky(failures=10), []
    events = invoker(function, sent)
    try:
        request_id = events.submit(SPEC, {"Records": [1]})
        wait_for(lambda: sent, 10, "the on-failure record")
    finally:
        events.stop()
    assert [call[0] for call in function.calls] == [request_id] * 3
    gaps = [b[1] - a[1] for a, b in zip(function.calls, function.calls[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4
    [(destination, text)] = sent
    record = json.loads(text)
    assert destination == "arn:dest"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{SPEC.arn}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"Records": [1]}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "boom"


def test_an_event_that_succeeds_on_a_retry_sends_no_record() -> None:
    function, sent = Flaky(failures=1), []
    events = invoker(function, sent)
    try:
        events.submit(SPEC, {})
        wait_for(lambda: len(function.calls) == 2 and events.pending == 0, 10, "the retry to succeed")
    finally:
        events.stop()
    assert sent == []


def test_an_event_too_old_for_its_next_retry_is_recorded_as_event_age_exceeded() -> None:
    function, sent = Flaky(failures=10), []
    events = invoker(function, sent, max_event_age_seconds=0)
    try:
        events.submit(SPEC, {})
        wait_for(lambda: sent, 10, "the on-failure record")
    finally:
        events.stop()
    assert len(function.calls) == 1
    assert json.loads(sent[0][1])["requestContext"]["condition"] == "EventAgeExceeded"


def test_an_event_submitted_with_a_delay_runs_after_it_with_its_own_request_id() -> None:
    function, sent = Flaky(failures=0), []
    events = invoker(function, sent)
    try:
        submitted = time.monotonic()
        first = events.submit(SPEC, {"n": 1})
        again = events.submit(SPEC, {"n": 1}, delay_seconds=0.5)  # S3 delivering the same event again
        wait_for(lambda: len(function.calls) == 2 and events.pending == 0, 10, "both deliveries to run")
    finally:
        events.stop()
    assert [call[0] for call in function.calls] == [first, again] and first != again
    assert function.calls[1][1] - submitted >= 0.5


# --- a DLQ redrive (SQS message move task, which moto lacks) ----------------------------------------


def test_a_message_move_task_returns_a_dlqs_messages_to_their_source_queue(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    url, arn = new_queue(emulator, visibility=0, max_receives=1)
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    dlq_arn = json.loads(policy)["deadLetterTargetArn"]
    send(emulator, url, [f"m{n}" for n in range(15)])
    # Received once and not deleted: each receive past maxReceiveCount moves them to the DLQ.
    while sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        pass
    assert depth(emulator, url) == 0

    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]

    def finished() -> dict[str, Any] | None:
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return task if task["Status"] != "RUNNING" else None

    task = wait_for(finished, 10, "the move to finish")
    assert (task["TaskHandle"], task["Status"], task["DestinationArn"]) == (handle, "COMPLETED", arn)
    assert task["ApproximateNumberOfMessagesMoved"] == 15
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in messages]
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(bodies) == sorted(f"m{n}" for n in range(15))


def test_an_event_source_local_mode_cannot_run_stops_start_up_naming_it() -> None:
    # The program with its mapping pointed at a Kinesis stream: local mode says it runs SQS sources only,
    # rather than starting without the program's event source (`local up` prints it and exits 2).
    import pulumi

    from local.mocks import run_program
    from local.registry import NotEmulated, Registry

    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/users"

    def to_kinesis(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:lambda/eventSourceMapping:EventSourceMapping":
            return None
        return pulumi.ResourceTransformationResult({**args.props, "event_source_arn": stream}, args.opts)

    plan = run_program("dev", transformations=[to_kinesis])

    with pytest.raises(NotEmulated, match=f"runs SQS event sources only, not {stream}"):
        Registry.from_plan(plan, REGION, ACCOUNT)
