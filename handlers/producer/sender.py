"""Send chunks with SendMessageBatch: bounded requests in flight, failed entries retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from handlers.common.chunks import MAC_ATTRIBUTE_BYTES, mac_attributes, sign
from handlers.common.retry import OutOfTime, call_with_backoff, delays
from handlers.producer.packing import MAX_BATCH_ENTRIES, Encodable

SENDS_IN_FLIGHT = 4
"""SendMessageBatch requests a producer keeps in flight: its executor's size (`app.executor`)."""


class SendFailed(RuntimeError):
    """Some chunks could not be queued; the producer fails and resumes from its checkpoint."""


class ChunkSender:
    """Groups chunks into batches and sends them on a small pool, `max_in_flight` at a time; each
    chunk signed with its job's key (`mac_key`, from `signing.JobKeys`), its MAC in a message attribute."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        seconds_left: Callable[[], float],
        executor: ThreadPoolExecutor,
        max_batch_bytes: int,
        max_in_flight: int = SENDS_IN_FLIGHT,
        on_retry: Callable[[], None] = lambda: None,
        *,
        mac_key: bytes,
    ) -> None:
        self._sqs, self._queue_url, self._seconds_left = sqs, queue_url, seconds_left
        self._executor, self._max_in_flight, self._on_retry = executor, max_in_flight, on_retry
        self._max_batch_bytes = max_batch_bytes
        self._mac_key = mac_key
        self._batch: list[dict[str, Any]] = []
        self._batch_bytes = 0
        self._in_flight: set[Future[None]] = set()
        self._slowest = 0.0
        self.sent = 0

    def send(self, chunk: Encodable) -> None:
        body = chunk.encode()
        # SQS counts the attribute towards the message's size, and so towards the call's.
        size = len(body.encode()) + MAC_ATTRIBUTE_BYTES
        if self._batch and (len(self._batch) == MAX_BATCH_ENTRIES or self._batch_bytes + size > self._max_batch_bytes):
            self._submit()
        self._batch.append(
            {
                "Id": f"chunk-{chunk.chunk}",
                "MessageBody": body,
                "MessageAttributes": mac_attributes(sign(body, self._mac_key)),
            }
        )
        self._batch_bytes += size

    def drain_seconds(self) -> float:
        """How long `flush` may take, from the slowest send so far: the buffered batch waits for a
        free slot (one send), then for its own send; the sends in flight end meanwhile."""
        return 2 * self._slowest

    def flush(self) -> None:
        """Send what is buffered and wait until every chunk handed over is queued."""
        if self._batch:
            self._submit()
        self._wait(until=0)

    def _submit(self) -> None:
        self._wait(until=self._max_in_flight - 1)
        entries, self._batch, self._batch_bytes = self._batch, [], 0
        self._in_flight.add(self._executor.submit(self._send_batch, entries))

    def _wait(self, until: int) -> None:
        while len(self._in_flight) > until:
            done, self._in_flight = wait(self._in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # re-raises SendFailed

    def _send_batch(self, entries: list[dict[str, Any]]) -> None:
        began = time.monotonic()
        try:
            self._send_entries(entries)
        finally:
            # Written by the pool's threads, read by the producer's: a float assignment is atomic,
            # and a lost race only keeps a slightly smaller figure for one more batch.
            self._slowest = max(self._slowest, time.monotonic() - began)

    def _send_entries(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        for delay in delays():
            response = call_with_backoff(
                lambda entries=pending: self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries),
                self._seconds_left,
                on_retry=lambda _error: self._on_retry(),
            )
            failed = {f["Id"]: f for f in response.get("Failed", [])}
            self.sent += len(pending) - len(failed)
            if not failed:
                return
            permanent = [f for f in failed.values() if f.get("SenderFault")]
            if permanent:
                raise SendFailed(
                    f"SQS refused {permanent[0]['Id']}: {permanent[0].get('Code')} {permanent[0].get('Message')}"
                )
            if delay >= self._seconds_left():
                raise SendFailed(f"{len(failed)} chunks still unsent when time ran out") from OutOfTime()
            self._on_retry()
            pending = [entry for entry in pending if entry["Id"] in failed]
            time.sleep(delay)
