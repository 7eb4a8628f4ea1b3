"""`ingest dlq`: look at the dead-lettered chunks, and send them back once their cause is fixed.

    python -m ingest dlq peek [--max N] [--json] [--local | --stack NAME]
    python -m ingest dlq redrive [--timeout S] [--json] [--local | --stack NAME]

`peek` shows each message with its job, chunk, receive count, first rows (by the stack's schema's
columns: a chunk's rows are arrays of values in the schema's order, `handlers.common.chunks`) and why
it failed: the
worker logs every message it fails with its message id (`handlers/worker/app.py`), and SQS keeps a
message's id when it moves it to the DLQ, so `FilterLogEvents` on the worker's log group for the
quoted id finds the reason. `redrive` is SQS's own message move task back to the source queue. Both
use nothing but the AWS APIs, so they work alike on AWS and on a local stack (whose emulator ships
function logs to CloudWatch Logs and runs move tasks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from botocore.exceptions import ClientError

from handlers.common.schema import Schema
from ingest.output import guarded, print_json, shown, status, table
from ingest.targets import Target, TargetError, add_target_options, resolve_target

DEFAULT_PEEK = 10
FIRST_ROWS = 3
# A peek hides what it received for this long, so that the next receive returns other messages, then
# makes them visible again at once. Receiving with VisibilityTimeout=0 would return the same ten
# messages on every call and never show an eleventh.
PEEK_HOLD_SECONDS = 30
# Log lines older than the message itself cannot say why it failed; the margin absorbs clock skew.
LOG_SEARCH_MARGIN_MS = 60_000
DEFAULT_REDRIVE_TIMEOUT_SECONDS = 600
POLL_SECONDS = 1.0
EXIT_FAILED = 1
EXIT_TIMEOUT = 3
# A body that is not a chunk is shown cut to this many characters.
BODY_PREVIEW_CHARS = 200


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as `dlq peek` shows it (its JSON keys are these fields, camelCased)."""

    message_id: str
    job_id: str | None
    """None when the body is not a chunk."""
    chunk: int | None
    rows: int
    """Rows the chunk carries (0 for a body that is not a chunk)."""
    first_rows: list[dict[str, Any]]
    """Each by the schema's columns: `row`, then the columns' attributes in the API's order (the key's
    first). Rows of a chunk of another schema are `row` and their `values`, unnamed."""
    receive_count: int
    """SQS's ApproximateReceiveCount: the deliveries before it was dead-lettered, and every peek since."""
    sent_at_ms: int | None
    error: str | None
    """The worker's last error for this message id; None when its log has none (e.g. expired)."""
    body_preview: str | None
    """The start of a body that is not a chunk; None for a chunk."""
    other_schema: str | None = None
    """The fingerprint of the schema the chunk was read with, when it is not the stack's (the schema
    changed since): its rows' values cannot be named by the stack's columns."""

    def to_json(self) -> dict[str, Any]:
        names = {
            "message_id": "messageId",
            "job_id": "jobId",
            "first_rows": "firstRows",
            "receive_count": "receiveCount",
            "sent_at_ms": "sentAtMs",
            "body_preview": "bodyPreview",
            "other_schema": "otherSchema",
        }
        return {names.get(key, key): value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class MoveResult:
    """How a message move task ended (or where it stood when we stopped waiting)."""

    status: str
    """RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED, as ListMessageMoveTasks says."""
    moved: int
    to_move: int
    failure_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "moved": self.moved,
            "toMove": self.to_move,
            "failureReason": self.failure_reason,
        }


# --- the command line ------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest dlq peek` and `ingest dlq redrive`."""
    dlq = commands.add_parser(
        "dlq",
        help="look at the dead-letter queue, and redrive it",
        description="The chunks the worker failed maxReceiveCount times: why, and sending them back.",
    ).add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    peek = dlq.add_parser(
        "peek",
        help="show dead-lettered messages and why each failed, without consuming them",
        description=(
            "Show up to --max dead-lettered messages: message id, job id, chunk, receive count, the first rows,"
            " and the worker's last error for that message id (from its CloudWatch log group). The messages stay"
            " in the queue; as on AWS, a peek counts as a receive, so each one's receive count goes up by one."
        ),
        epilog="example: python -m ingest dlq peek --local --max 5",
    )
    peek.add_argument(
        "--max", type=_positive, default=DEFAULT_PEEK, metavar="N", help=f"at most N messages (default {DEFAULT_PEEK})"
    )
    peek.add_argument("--json", action="store_true", help="one JSON array of the messages on stdout")
    add_target_options(peek)
    peek.set_defaults(run=_run_peek)
    redrive = dlq.add_parser(
        "redrive",
        help="move the dead-lettered messages back to the queue",
        description=(
            "Move every dead-lettered message back to the queue it came from (SQS's message move task), wait for"
            " the move to end and report how many moved. Fix what made them fail first (dlq peek says why)."
            " Exit 0 when the move completed, 1 when it failed or was cancelled, 3 when it outlasted --timeout."
        ),
        epilog="example: python -m ingest dlq redrive --local",
    )
    redrive.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_REDRIVE_TIMEOUT_SECONDS,
        metavar="S",
        help=f"seconds to wait for the move to end (default {DEFAULT_REDRIVE_TIMEOUT_SECONDS})",
    )
    redrive.add_argument("--json", action="store_true", help="the result as one JSON object on stdout")
    add_target_options(redrive)
    redrive.set_defaults(run=_run_redrive)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number ≥ 1")
    return value


def _run_peek(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_peek(resolve_target(options), options.max, options.json, out), "dlq peek")


def show_peek(target: Target, max_messages: int, as_json: bool, out: TextIO) -> int:
    letters = peek(target, max_messages)
    if as_json:
        print_json([letter.to_json() for letter in letters], out)
    else:
        _show_letters(letters, target, out)
    return 0


def _run_redrive(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_redrive(resolve_target(options), options.timeout, options.json, out), "dlq redrive")


def show_redrive(target: Target, timeout: float, as_json: bool, out: TextIO) -> int:
    """Redrive with a live status line on stderr (on a terminal), then the result; the exit code says how it ended."""
    with status("starting the move back to the queue…", sys.stderr) as line:
        result = redrive(
            target,
            timeout=timeout,
            progress=lambda now: line.update(f"moving messages back: {now.moved} of {now.to_move} moved"),
        )
    if as_json:
        print_json(result.to_json(), out)
    else:
        out.write(_redrive_line(result) + "\n")
    if result.status == "COMPLETED":
        return 0
    return EXIT_TIMEOUT if result.status == "RUNNING" else EXIT_FAILED


# --- peek -------------------------------------------------------------------------------------------


def peek(target: Target, max_messages: int) -> list[DeadLetter]:
    """Up to `max_messages` dead-lettered messages, each with the worker's last error; none consumed."""
    sqs, logs = target.client("sqs"), target.client("logs")
    queue_url = target.outputs["deadLetterQueueUrl"]
    log_group = _worker_log_group(target)
    schema = target.schema
    with _as_operator(queue_url), _held(sqs, queue_url, max_messages) as messages:
        return [
            _describe(message, lambda m, since: last_error(logs, log_group, m, since), schema) for message in messages
        ]


@contextmanager
def _as_operator(queue_url: str) -> Iterator[None]:
    """An access denial on the dead-letter queue names the setting that lists its operators: the
    queue's policy lets only them receive, delete or move its messages."""
    try:
        yield
    except ClientError as error:
        if "AccessDenied" not in error.response.get("Error", {}).get("Code", ""):
            raise
        operation = error.operation_name
        raise TargetError(
            f"access denied ({operation} on {queue_url}): the dead-letter queue lets only the principals listed"
            " in csv-ingest:queueRedrivePrincipals peek at and redrive its messages (README, Security)"
        ) from error


def _worker_log_group(target: Target) -> str:
    group = target.outputs.get("workerLogGroupName")
    if not group:
        raise TargetError(
            f"{target.label} has no workerLogGroupName output: deploy this version of the program (pulumi up) first"
        )
    return str(group)


@contextmanager
def _held(sqs: Any, queue_url: str, max_messages: int) -> Iterator[list[dict[str, Any]]]:
    """Messages received and hidden for `PEEK_HOLD_SECONDS`, made visible again on leaving (also on errors)."""
    messages: list[dict[str, Any]] = []
    try:
        while len(messages) < max_messages:
            got = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(messages)),
                VisibilityTimeout=PEEK_HOLD_SECONDS,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            ).get("Messages", [])
            known = {m["MessageId"] for m in messages}
            fresh = [m for m in got if m["MessageId"] not in known]
            if not fresh:
                break
            messages += fresh
        yield messages
    finally:
        for batch in _batches(messages, 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(batch)
            ]
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(
    message: dict[str, Any], find_error: Callable[[str, int | None], str | None], schema: Schema
) -> DeadLetter:
    """A received message as a DeadLetter, its rows named by `schema`'s columns; a body that is not a
    chunk is shown, never a reason to stop."""
    attributes = message.get("Attributes", {})
    sent_at = int(attributes["SentTimestamp"]) if "SentTimestamp" in attributes else None
    chunk = _chunk_of(message["Body"])
    rows = chunk.get("rows") if chunk else None
    fingerprint = chunk.get("schema") if chunk else None
    ours = fingerprint == schema.fingerprint
    return DeadLetter(
        message_id=message["MessageId"],
        job_id=chunk["jobId"] if chunk else None,
        chunk=chunk["chunk"] if chunk else None,
        rows=len(rows) if isinstance(rows, list) else 0,
        first_rows=[_named(row, schema if ours else None) for row in rows[:FIRST_ROWS]]
        if isinstance(rows, list)
        else [],
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at_ms=sent_at,
        error=find_error(message["MessageId"], sent_at),
        body_preview=None if chunk else message["Body"][:BODY_PREVIEW_CHARS],
        other_schema=None if chunk is None or ours else str(fingerprint or "none: an older chunk format"),
    )


def _named(row: Any, schema: Schema | None) -> dict[str, Any]:
    """A chunk's row (`[row, *values]`, the values in the schema's order of columns) by `schema`'s
    columns: `row`, then each column's attribute in the API's order, the key's first (`email, name,
    phone` for users). Without a schema (the chunk's is another), or when the row has not one value
    per column, its `values` as they are. A row of the first chunk format, dead-lettered before an
    upgrade (the worker refuses that format), is named already: as it is."""
    if isinstance(row, dict):
        return row
    if not isinstance(row, list) or not row:
        return {"row": None, "values": row}
    number, values = row[0], row[1:]
    if schema is None or len(values) != len(schema.columns):
        return {"row": number, "values": values}
    return {"row": number, **{schema.columns[i].attribute: values[i] for i in schema.checked_order}}


def _chunk_of(body: str) -> dict[str, Any] | None:
    """The body as a chunk message (README "Data formats"), or None when it is not one."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("jobId"), str) and isinstance(value.get("chunk"), int):
        return value
    return None


def last_error(logs: Any, log_group: str, message_id: str, since_ms: int | None) -> str | None:
    """The newest line the function logged naming `message_id`, as "what: why"; None when there is none."""
    request: dict[str, Any] = {"logGroupName": log_group, "filterPattern": f'"{message_id}"'}
    if since_ms is not None:
        request["startTime"] = since_ms - LOG_SEARCH_MARGIN_MS
    newest: dict[str, Any] | None = None
    for page in logs.get_paginator("filter_log_events").paginate(**request):
        for event in page.get("events", []):
            if newest is None or event["timestamp"] >= newest["timestamp"]:
                newest = event
    return None if newest is None else _reason(newest["message"])


def _reason(line: str) -> str:
    """A worker log line as "chunk failed: <error>" (its JSON fields), or the line itself if it is not JSON."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line.strip()
    if not isinstance(record, dict):
        return line.strip()
    why = record.get("error") or record.get("reason")
    what = record.get("message", "")
    return f"{what}: {why}" if why else str(what or line.strip())


def _show_letters(letters: list[DeadLetter], target: Target, out: TextIO) -> None:
    if not letters:
        out.write(f"The dead-letter queue of {target.label} is empty.\n")
        return
    out.write(f"{len(letters)} dead-lettered message(s) in {target.label} (this peek counted as one receive):\n")
    for letter in letters:
        # Anyone who may send to the queue chose the body, and so the job id, the rows and the preview.
        where = f"job {shown(letter.job_id)}  chunk {shown(letter.chunk)}" if letter.job_id else "not a chunk"
        out.write(f"\nmessage {shown(letter.message_id)}  {where}  received {letter.receive_count} times\n")
        why = shown(letter.error) or "no line in the worker log names this message (expired, or not logged)"
        out.write(f"  why: {why}\n")
        if letter.body_preview is not None:
            out.write(f"  body: {shown(letter.body_preview)}\n")
            continue
        if letter.other_schema is not None:
            other = shown(letter.other_schema)
            out.write(f"  read with another schema than the stack's ({other})\n")
        out.write(f"  first {len(letter.first_rows)} of {letter.rows} rows:\n")
        columns = list(dict.fromkeys(name for row in letter.first_rows for name in row))
        table(columns, [[_cell(row.get(name)) for name in columns] for row in letter.first_rows], out)


def _cell(value: Any) -> Any:
    """A value as a table shows it: a boolean as JSON writes it (`true`), not Python's `True`."""
    return ("true" if value else "false") if isinstance(value, bool) else value


# --- redrive ----------------------------------------------------------------------------------------


def redrive(target: Target, *, timeout: float, progress: Callable[[MoveResult], None]) -> MoveResult:
    """Start a message move task from the DLQ back to its source queue and wait for it to end."""
    sqs = target.client("sqs")
    queue_url = target.outputs["deadLetterQueueUrl"]
    with _as_operator(queue_url):
        source_arn = queue_arn(sqs, queue_url)
        sqs.start_message_move_task(SourceArn=source_arn)
    deadline = time.monotonic() + timeout
    while True:
        result = _latest_move(sqs, source_arn)
        progress(result)
        if result.status not in ("RUNNING", "CANCELLING") or time.monotonic() >= deadline:
            return result
        time.sleep(POLL_SECONDS)


def queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _latest_move(sqs: Any, source_arn: str) -> MoveResult:
    """The most recent move task from `source_arn` (SQS lists the newest first; one runs at a time)."""
    task = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"][0]
    return MoveResult(
        status=task["Status"],
        moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        to_move=int(task.get("ApproximateNumberOfMessagesToMove", 0)),
        failure_reason=task.get("FailureReason"),
    )


def _redrive_line(result: MoveResult) -> str:
    if result.status == "COMPLETED":
        return f"Redrive completed: {result.moved} message(s) moved back to the queue."
    if result.status == "RUNNING":
        return f"Redrive still running after the timeout: {result.moved} of {result.to_move} moved so far."
    reason = f" ({shown(result.failure_reason)})" if result.failure_reason else ""
    return f"Redrive {result.status.lower()}{reason}: {result.moved} of {result.to_move} moved."
