"""SQS message move tasks (a DLQ redrive), which moto does not implement.

`StartMessageMoveTask` moves the messages of a dead-letter queue back to the queue(s) they came
from, or to a `DestinationArn`; `ListMessageMoveTasks` reports its progress
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html).
Locally the move runs in a thread of its own, through the emulator like any client (so each
receive, send and delete takes the emulator's lock in turn, never the whole move). Without a
`DestinationArn` the destination is the queue whose redrive policy names this DLQ: AWS remembers
each message's source queue; a DLQ shared by several queues is refused here rather than guessed.

A move acts in its caller's name. Starting one needs, besides sqs:StartMessageMoveTask, the rights
to receive, delete and read the attributes of the source queue and to send to the destination
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html):
a caller without one of them is refused with AccessDenied before anything moves, and the task's
receives, sends and deletes are made with the caller's own keys, so each batch is judged by the
caller's policies and the queues' policies as they are then. A right withdrawn mid-move fails the task.
Only what SQS knows by itself (queue URLs, which queue a DLQ serves) is read as the administrator.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.authz import Access

OPERATIONS = frozenset({"StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask"})


def needed(source_arn: str, destination_arn: str) -> tuple[Access, ...]:
    """What the caller of StartMessageMoveTask must be allowed besides that action (the page above)."""
    return (
        Access("sqs:ReceiveMessage", source_arn),
        Access("sqs:DeleteMessage", source_arn),
        Access("sqs:GetQueueAttributes", source_arn),
        Access("sqs:SendMessage", destination_arn),
    )


@dataclass(frozen=True)
class Caller:
    """Who asked for a move, to act in its name."""

    sqs: Any
    """An SQS client of the emulator signing with the caller's keys."""
    denial: Callable[[Sequence[Access]], str | None]
    """AWS's message for the first of these the caller may not do, None when it may do them all."""


class MoveRefused(ValueError):
    """The request cannot start a move; `code` is SQS's error code for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str
    started_ms: int
    status: str = "RUNNING"
    moved: int = 0
    to_move: int = 0
    failure: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict[str, Any]:
        """As ListMessageMoveTasks reports it."""
        result: dict[str, Any] = {
            "TaskHandle": self.handle,
            "Status": self.status,
            "SourceArn": self.source_arn,
            "DestinationArn": self.destination_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.failure:
            result["FailureReason"] = self.failure
        return result


class MessageMoves:
    """The move tasks of one emulator; `sqs()` gives an administrator SQS client of it."""

    def __init__(self, sqs: Callable[[], Any]) -> None:
        self._sqs = sqs
        self._tasks: list[MoveTask] = []
        self._lock = threading.Lock()

    def handle(self, operation: str, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """Answer one of `OPERATIONS` (the JSON protocol's response body); raises MoveRefused."""
        if operation == "StartMessageMoveTask":
            return {"TaskHandle": self.start(params["SourceArn"], params.get("DestinationArn"), caller).handle}
        if operation == "ListMessageMoveTasks":
            limit = int(params.get("MaxResults", 1))
            with self._lock:
                mine = [t for t in reversed(self._tasks) if t.source_arn == params["SourceArn"]]
            return {"Results": [task.view() for task in mine[:limit]]}
        with self._lock:
            task = next((t for t in self._tasks if t.handle == params.get("TaskHandle")), None)
        if task is None or task.status != "RUNNING":
            raise MoveRefused("ResourceNotFoundException", "no running message move task with that handle")
        task.cancel.set()
        return {"ApproximateNumberOfMessagesMoved": task.moved}

    def start(self, source_arn: str, destination_arn: str | None, caller: Caller) -> MoveTask:
        sqs = self._sqs()
        destination = destination_arn or self._source_of(sqs, source_arn)
        denial = caller.denial(needed(source_arn, destination))
        if denial is not None:
            raise MoveRefused("AccessDenied", denial)
        with self._lock:
            if any(t.source_arn == source_arn and t.status == "RUNNING" for t in self._tasks):
                raise MoveRefused("InvalidParameterValue", f"a message move task is already running on {source_arn}")
        handle = base64.b64encode(json.dumps({"source": source_arn, "at": time.time_ns()}).encode()).decode()
        task = MoveTask(handle, source_arn, destination, started_ms=int(time.time() * 1000))
        source, target = self._url(sqs, source_arn), self._url(sqs, destination)
        waiting = caller.sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["ApproximateNumberOfMessages"])
        task.to_move = int(waiting["Attributes"]["ApproximateNumberOfMessages"])
        with self._lock:
            self._tasks.append(task)
        thread = threading.Thread(
            target=self._move, args=(task, caller.sqs, source, target), name="sqs-message-move", daemon=True
        )
        thread.start()
        return task

    @staticmethod
    def _url(sqs: Any, arn: str) -> str:
        _, _, _, _, account, name = arn.split(":", 5)
        return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]

    @staticmethod
    def _source_of(sqs: Any, dlq_arn: str) -> str:
        """The one queue whose redrive policy sends its failures to this DLQ."""
        sources = []
        for url in sqs.list_queues().get("QueueUrls", []):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy", "QueueArn"])
            policy = attributes["Attributes"].get("RedrivePolicy")
            if policy and json.loads(policy).get("deadLetterTargetArn") == dlq_arn:
                sources.append(attributes["Attributes"]["QueueArn"])
        if len(sources) != 1:
            raise MoveRefused(
                "InvalidParameterValue",
                f"{dlq_arn} is the dead-letter queue of {len(sources)} queues here: give a DestinationArn",
            )
        return sources[0]

    def _move(self, task: MoveTask, sqs: Any, source: str, destination: str) -> None:
        """Receive, send on, delete, batch by batch, with the caller's client `sqs`."""
        try:
            while not task.cancel.is_set():
                messages = sqs.receive_message(
                    QueueUrl=source, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=30
                ).get("Messages", [])
                if not messages:
                    break
                entries = [
                    {"Id": str(n), "MessageBody": m["Body"], "MessageAttributes": m.get("MessageAttributes") or {}}
                    for n, m in enumerate(messages)
                ]
                sent = sqs.send_message_batch(QueueUrl=destination, Entries=[_without_empty(e) for e in entries])
                if sent.get("Failed"):
                    raise RuntimeError(f"{len(sent['Failed'])} messages could not be sent to {task.destination_arn}")
                sqs.delete_message_batch(
                    QueueUrl=source,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
                )
                task.moved += len(messages)
            task.status = "CANCELLED" if task.cancel.is_set() else "COMPLETED"
        except Exception as error:  # reported through ListMessageMoveTasks, as AWS does
            task.status, task.failure = "FAILED", str(error)


def _without_empty(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v or k == "MessageBody"}
