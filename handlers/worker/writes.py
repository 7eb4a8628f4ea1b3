"""Write a chunk's rows to the items table in batches: latest version wins, whatever the delivery order.

The table is keyed by the schema's key attribute (`Schema.key_attribute`, S or N), and each row becomes
the item `ItemLayout` says, its values typed as the schema declares them (S, N or BOOL). Two steps,
every write conditional:

1. Hints. `BatchGetItem` reads the stored `rowVersion` of the chunk's keys (key and version only,
   eventually consistent: a hint may be stale, the writes' conditions decide). A row whose very version
   is stored was written by an earlier delivery: written. A row older than the stored version is
   superseded without a write: it costs half a read unit, where a failed condition costs a write unit.
   Read when they pay (`Presence`): when most of the keys of the job's last chunk this environment
   wrote were new, the rows go out as INSERTs without hints, and the few stored ones answer
   `DuplicateItem`.
2. Writes. PartiQL `BatchExecuteStatement`, at most 25 statements a call, calls in parallel: `INSERT`
   for a key believed absent (DynamoDB refuses it with `DuplicateItem` if the key exists), `UPDATE …
   WHERE key = ? AND (LATEST_WINS)` for one believed older or planted. Each statement succeeds or fails
   on its own (`Error.Code`): see `ItemWriter._settle`.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from handlers.common.chunks import Chunk, Row, versions_after
from handlers.common.retry import (
    STATEMENT_RETRYABLE_CODES,
    RetryCounter,
    call_with_backoff,
    delays,
)
from handlers.common.schema import META_ATTRIBUTES, Schema, Value
from handlers.common.timestamps import iso_ms, utc_now
from handlers.worker.admission import MAX_CLOCK_SKEW_MS

# A row replaces the stored item only if the item is not newer. Re-applying the same version rewrites
# identical data: harmless, so redelivered chunks are safe. A stored version dated later than now plus
# the clock skew AWS tolerates was planted (a forged upload time, before chunks were checked for one:
# admission.check_upload_time), not uploaded; it would otherwise win for ever, so any real row replaces
# it. Versions are fixed-width strings, compared byte-wise (chunks.row_version), as DynamoDB compares S.
# The UPDATE's WHERE clause after its key; its parameters are `latest_wins_values`.
LATEST_WINS = '"rowVersion" <= ? OR "rowVersion" > ?'

WireValue = dict[str, Any]
"""An attribute value in DynamoDB's wire format (`{"S": "…"}`, `{"N": "12.5"}`, `{"BOOL": true}`), as the
low-level client sends it."""
WireItem = dict[str, WireValue]
"""An item in wire format."""


def latest_wins_values(version: str, now_ms: int) -> list[WireValue]:
    """`LATEST_WINS`'s parameters, in wire format, for a row of `version` written at `now_ms`."""
    return [{"S": version}, {"S": versions_after(now_ms + MAX_CLOCK_SKEW_MS)}]


# BatchExecuteStatement runs at most 25 statements a call, all writes or all reads
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.multiplestatements.batching.html).
MAX_STATEMENTS = 25
# BatchGetItem reads at most 100 items a call, or answers ValidationException
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
MAX_KEYS = 100
# Calls in flight per invocation: a chunk of 200 rows is 8 calls of 25 statements, sent at once.
WRITERS = 8

# How many statement texts a worker keeps (`Statements`): a chunk's rows need a few of them, however many
# sets of optional attributes its schema allows.
STATEMENTS_KEPT = 256


class _Cell(NamedTuple):
    """Where a column's value is in a row, the attribute it is stored as, and DynamoDB's type for it."""

    index: int
    attribute: str
    kind: str
    """`S`, `N` or `BOOL` (`ColumnType.attribute_type`)."""
    number: bool
    """Sent as text (`{"N": "12.5"}`): an integer's value is an int in a chunk."""


def _cell(schema: Schema, index: int) -> _Cell:
    column = schema.columns[index]
    kind = column.type.attribute_type
    return _Cell(index, column.attribute, kind, kind == "N")


class ItemLayout:
    """How a schema's rows become items, decided once per schema.

    The item's attributes, in the order of a row's parameters (`statement_request`): the key, the other required
    columns, what the pipeline writes (`META_ATTRIBUTES`: the version, times, job and source, then `row`, a
    number), then the optional columns the row has a value for, as the schema declares them. An optional
    column without one is no attribute: an INSERT leaves it out, an UPDATE removes it, so the item an
    UPDATE leaves is the item an INSERT of the same row makes. Each value is stored with its column's
    DynamoDB type: S for text-like columns, N for numbers, BOOL for booleans. For the default schema this
    is the item of before: email, name, rowVersion … row, and phone when the row has one."""

    def __init__(self, schema: Schema) -> None:
        others = [i for i in range(len(schema.columns)) if i != schema.key_index]
        self.key = _cell(schema, schema.key_index)
        self.required = tuple(_cell(schema, i) for i in others if schema.columns[i].required)
        self.optional = tuple(_cell(schema, i) for i in others if not schema.columns[i].required)
        # (index, kind, number) of each: what `statement_request` reads of every row, in the fewest steps.
        self.required_wire = tuple((cell.index, cell.kind, cell.number) for cell in self.required)
        self.optional_wire = tuple((cell.index, cell.kind, cell.number) for cell in self.optional)
        self.key_wire = (self.key.index, self.key.kind, self.key.number)

    def key_value(self, values: tuple[Value, ...]) -> WireValue:
        key = self.key
        value = values[key.index]
        return {"N": str(value)} if key.number else {key.kind: value}

    def hint(self, stored: WireValue) -> Hashable:
        """A stored key, as `hint_of` names a row's: a number by its value (DynamoDB trims a number's
        leading and trailing zeros,
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number)."""
        return Decimal(stored["N"]) if self.key.number else stored[self.key.kind]

    def hint_of(self, values: tuple[Value, ...]) -> Hashable:
        """The row's key, as hints are looked up by."""
        value = values[self.key.index]
        return Decimal(value) if self.key.number else value  # type: ignore[arg-type]


class Statements:
    """The statements the worker sends to `table` for `layout`'s items, with `?` for every value (never a
    literal): an INSERT and an UPDATE for each set of optional attributes a row has (`statement_request`).
    Each is built the first time a row needs it, then kept: a schema of 20 optional columns has 2^20 such
    sets, and a chunk meets a few.

    Syntax: INSERT INTO table VALUE item
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.insert.html) and
    UPDATE table [SET | REMOVE] path [= data] […] WHERE condition
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.update.html). An
    UPDATE sets every attribute the row has and removes the optional ones it has not, so the item it
    leaves is the one an INSERT of the same row makes.

    A statement is at most 8192 characters
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementRequest.html): a
    schema's declaration, its names included, is at most `MAX_SCHEMA_JSON_BYTES` (2048), and each column
    adds at most 12 characters of its own (`SET "" = ? `) to an UPDATE, so a statement stays under 4500."""

    def __init__(self, table: str, layout: ItemLayout) -> None:
        self.table, self.layout = table, layout
        self.insert: Callable[[tuple[bool, ...]], str] = functools.lru_cache(STATEMENTS_KEPT)(self._insert)
        self.update: Callable[[tuple[bool, ...]], str] = functools.lru_cache(STATEMENTS_KEPT)(self._update)

    def _insert(self, present: tuple[bool, ...]) -> str:
        layout = self.layout
        attributes = (
            layout.key.attribute,
            *(cell.attribute for cell in layout.required),
            *META_ATTRIBUTES,
            *(cell.attribute for cell, has in zip(layout.optional, present, strict=True) if has),
        )
        return f'INSERT INTO "{self.table}" VALUE {{{", ".join(f"{_quoted(name)}: ?" for name in attributes)}}}'

    def _update(self, present: tuple[bool, ...]) -> str:
        layout = self.layout
        actions = [f'SET "{name}" = ?' for name in (*(cell.attribute for cell in layout.required), *META_ATTRIBUTES)]
        actions += [
            f'SET "{cell.attribute}" = ?' if has else f'REMOVE "{cell.attribute}"'
            for cell, has in zip(layout.optional, present, strict=True)
        ]
        return f'UPDATE "{self.table}" {" ".join(actions)} WHERE "{layout.key.attribute}" = ? AND ({LATEST_WINS})'


def _quoted(name: str) -> str:
    # A PartiQL tuple's keys are string literals, in single quotes.
    return f"'{name}'"


class RowsUnwritten(RuntimeError):
    """Some rows of a chunk are not written; the message fails and is delivered again."""


@dataclass(frozen=True)
class WriteOutcome:
    written: int
    superseded: int


def latest_rows(chunk: Chunk, key_index: int) -> tuple[list[Row], int]:
    """One row per key (the value at `key_index`), the highest version; and how many rows lost to a later
    one in the chunk.

    Also keeps any batch from naming one key twice (a ValidationException for BatchExecuteStatement)."""
    latest: dict[Value, Row] = {}
    for row in chunk.rows:
        key = row.values[key_index]
        if key not in latest or row.row > latest[key].row:
            latest[key] = row
    return list(latest.values()), len(chunk.rows) - len(latest)


class ChunkValues:
    """What the statements of a chunk's rows share, in wire format, each one object made once. Parameters
    are built directly in wire format (`statement_request`): boto3's resource layer walks every value of
    every call, a tenth of a write's CPU when the worker wrote item by item."""

    def __init__(self, chunk: Chunk, now_ms: int) -> None:
        self.chunk = chunk
        source = chunk.source
        self.shared = [
            {"S": iso_ms(chunk.uploadedAtMs)},
            {"S": utc_now()},
            {"S": chunk.jobId},
            {"S": source.bucket},
            {"S": source.key},
            {"S": source.versionId},
        ]
        """The attributes after the version: uploadedAt, updatedAt, jobId and the source's."""
        self.far_future = versions_after(now_ms + MAX_CLOCK_SKEW_MS)
        self.far_future_value = {"S": self.far_future}


def statement_request(
    statements: Statements, values: ChunkValues, row: Row, version: str, *, insert: bool
) -> dict[str, Any]:
    """`row`'s statement at `version`, as BatchExecuteStatement takes it: an INSERT, or an UPDATE under
    LATEST_WINS that returns the stored item when its condition fails. Its parameters are the item's
    attributes in `ItemLayout`'s order, in wire format; an UPDATE's end with the key and LATEST_WINS's.

    One function, its loops written out: it runs for every row written, where each Python call more
    per row shows in the worker's CPU per row (`bench/worker.py`)."""
    layout, cells = statements.layout, row.values
    present, optional = [], []
    for index, kind, number in layout.optional_wire:
        value = cells[index]
        if value is None:
            present.append(False)
        else:
            present.append(True)
            optional.append({"N": str(value)} if number else {kind: value})
    required = [{"N": str(cells[i])} if number else {kind: cells[i]} for i, kind, number in layout.required_wire]
    index, kind, number = layout.key_wire
    key, stamp = {"N": str(cells[index])} if number else {kind: cells[index]}, {"S": version}
    if insert:
        parameters = [key, *required, stamp, *values.shared, {"N": str(row.row)}, *optional]
        return {"Statement": statements.insert(tuple(present)), "Parameters": parameters}
    parameters = [*required, stamp, *values.shared, {"N": str(row.row)}, *optional, key, stamp, values.far_future_value]
    # ALL_OLD: a failed condition returns the stored item, at no read cost
    # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementRequest.html).
    return {
        "Statement": statements.update(tuple(present)),
        "Parameters": parameters,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


@dataclass(frozen=True)
class _Write:
    """One row's statement to send: an INSERT, or an UPDATE under LATEST_WINS."""

    row: Row
    version: str
    insert: bool


@dataclass
class _Round:
    """What statements came to: rows written, rows superseded, statements to send again with the code
    that sent each back, and the codes that fail the chunk."""

    written: int = 0
    superseded: int = 0
    again: list[tuple[_Write, str]] = field(default_factory=list)
    reread: list[_Write] = field(default_factory=list)
    """Rows whose UPDATE failed its condition without saying what is stored: read again, then settled."""
    failed: list[str] = field(default_factory=list)
    duplicates: int = 0
    """INSERTs that met a stored item (`DuplicateItem`): what a chunk written without hints learns of the table."""


# Hints or not. A hint is an eventually consistent read, half a read unit ($0.125 per million read units
# on demand); a row sent without one as an INSERT that meets a stored item costs a failed write, one
# write unit ($0.625 per million; a failed conditional write still consumes write capacity,
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate),
# and then its UPDATE (https://aws.amazon.com/dynamodb/pricing/on-demand/). Reading costs 0.0625 per
# row whatever is stored, not reading 0.625 × the fraction of rows stored: below a tenth, not reading is
# cheaper (and a request per 100 rows fewer).
HINTS_WORTH_READING_FROM = 0.1


@dataclass
class Presence:
    """How many of its keys the table held for a job's last chunk this environment wrote: whether
    hints pay for the job's next one.

    A job's first chunk in an environment reads them (nothing is known). A chunk read with hints learns
    it from them, one written without from its `DuplicateItem`s. The chunks of one file are alike: a new
    file's keys are new, a corrected file's are stored; another file says nothing of this one. Only
    the cost depends on it: every write is conditional either way."""

    fraction: float = 1.0

    @property
    def read_hints(self) -> bool:
        return self.fraction >= HINTS_WORTH_READING_FROM

    def observe(self, rows: int, stored: int) -> None:
        if rows:
            self.fraction = stored / rows


class JobPresence:
    """Each job's `Presence`, for the `capacity` jobs this environment wrote last (the oldest forgotten:
    a job met again after that starts over, reading hints)."""

    def __init__(self, capacity: int = 256) -> None:
        self._jobs: OrderedDict[str, Presence] = OrderedDict()
        self._capacity = capacity

    def of(self, job_id: str) -> Presence:
        presence = self._jobs.pop(job_id, None) or Presence()
        self._jobs[job_id] = presence
        if len(self._jobs) > self._capacity:
            self._jobs.popitem(last=False)
        return presence


@dataclass
class _Plan:
    """What hints say of rows: written already, superseded, or a statement to send (`again`)."""

    written: int = 0
    superseded: int = 0
    again: list[_Write] = field(default_factory=list)


def _plan(rows: list[tuple[Row, str]], stored: dict[Hashable, str], far_future: str, layout: ItemLayout) -> _Plan:
    """Each (row, version) against its key's stored version (`stored`, by `layout.hint`): this very version is stored
    (an earlier delivery wrote it): written; a later upload's, not planted: superseded, no write; an
    item without a version ("": stored by hand or by a tool of before): superseded too, as LATEST_WINS
    decides (a comparison with a missing attribute is false,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html),
    so no UPDATE is sent that can only fail; none: an INSERT; an older or planted one: an UPDATE, whose
    condition decides."""
    plan = _Plan()
    for row, version in rows:
        hint = stored.get(layout.hint_of(row.values))
        if hint is None:
            plan.again.append(_Write(row, version, insert=True))
        elif hint == version:
            plan.written += 1
        elif not hint or version < hint < far_future:
            plan.superseded += 1
        else:
            plan.again.append(_Write(row, version, insert=False))
    return plan


class ItemWriter:
    """Hints, then conditional statements in batches, on a bounded pool; whatever AWS sends back to
    be tried again is retried with backoff while the invocation has time.

    `client` is a low-level DynamoDB client (parameters go out in wire format, `ChunkValues`); `table` is
    keyed by `schema`'s key attribute, and its items are laid out as `ItemLayout` says."""

    def __init__(self, client: Any, table: str, schema: Schema, executor: ThreadPoolExecutor) -> None:
        self._client, self._table, self._executor = client, table, executor
        self.layout = ItemLayout(schema)
        self._key_index = schema.key_index
        self._statements = Statements(table, self.layout)
        self.presence = JobPresence()

    def write(self, chunk: Chunk, seconds_left: Callable[[], float], retries: RetryCounter) -> WriteOutcome:
        rows, superseded = latest_rows(chunk, self._key_index)
        now_ms = int(time.time() * 1000)
        values = ChunkValues(chunk, now_ms)
        versions = [(row, chunk.version_of(row)) for row in rows]
        presence = self.presence.of(chunk.jobId)
        read_hints = presence.read_hints
        if read_hints:
            stored = self._stored_versions(rows, seconds_left, retries)
            presence.observe(len(rows), len(stored))
            planned = _plan(versions, stored, values.far_future, self.layout)
        else:  # most keys were new last time: each an INSERT, a stored one learnt from its DuplicateItem
            planned = _Plan(again=[_Write(row, version, insert=True) for row, version in versions])
        done = self._execute(planned.again, values, seconds_left, retries)
        if not read_hints:
            presence.observe(len(rows), done.duplicates)
        written, superseded = planned.written + done.written, superseded + planned.superseded + done.superseded
        return WriteOutcome(written=written, superseded=superseded)

    # --- hints -----------------------------------------------------------------------------------

    def _stored_versions(
        self, rows: list[Row], seconds_left: Callable[[], float], retries: RetryCounter, consistent: bool = False
    ) -> dict[Hashable, str]:
        """Each stored key's `rowVersion`, by `ItemLayout.hint` ("" for an item without one, or one not a
        string: `_plan`), of the keys of `rows` (one row per key)."""
        keys = [self.layout.key_value(row.values) for row in rows]
        groups = [keys[start : start + MAX_KEYS] for start in range(0, len(keys), MAX_KEYS)]
        futures = [self._executor.submit(self._read, group, seconds_left, retries, consistent) for group in groups]
        stored: dict[Hashable, str] = {}
        for future in futures:
            stored.update(future.result())
        return stored

    def _read(
        self, keys: list[WireValue], seconds_left: Callable[[], float], retries: RetryCounter, consistent: bool
    ) -> dict[Hashable, str]:
        # Hints are eventually consistent (BatchGetItem's default): half the read units of a strongly
        # consistent read (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html),
        # and a stale hint costs at most one more statement. A row read again after its UPDATE failed
        # without the stored item (`_Round.reread`) is read strongly consistent: what it sees is what the
        # next statement meets. Names through placeholders, as every projection here (reserved words).
        attribute, layout = self.layout.key.attribute, self.layout
        request: dict[str, Any] = {
            self._table: {
                "Keys": [{attribute: key} for key in keys],
                "ProjectionExpression": "#k, #v",
                "ExpressionAttributeNames": {"#k": attribute, "#v": "rowVersion"},
                "ConsistentRead": consistent,
            }
        }
        stored: dict[Hashable, str] = {}
        backoff = delays()
        while True:
            answer = call_with_backoff(
                lambda request=request: self._client.batch_get_item(RequestItems=request), seconds_left, retries
            )
            for item in answer.get("Responses", {}).get(self._table, ()):
                stored[layout.hint(item[attribute])] = item.get("rowVersion", {}).get("S", "")
            # Keys left unread (throughput, size or an internal failure) come back in UnprocessedKeys,
            # to be asked again with exponential backoff (API_BatchGetItem.html).
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return stored
            _wait(backoff, seconds_left, "UnprocessedKeys")
            retries.count_statement("UnprocessedKeys")

    # --- writes ----------------------------------------------------------------------------------

    def _execute(
        self, pending: list[_Write], values: ChunkValues, seconds_left: Callable[[], float], retries: RetryCounter
    ) -> _Round:
        total = _Round()
        backoff = delays()
        while pending:
            calls = [pending[start : start + MAX_STATEMENTS] for start in range(0, len(pending), MAX_STATEMENTS)]
            futures = [self._executor.submit(self._send, call, values, seconds_left, retries) for call in calls]
            rounds, errors = [], []
            for call, future in zip(calls, futures, strict=True):
                try:
                    rounds.append(self._settle(call, future.result()))
                except Exception as error:  # collected: every other call still counts what it wrote
                    errors.append(error)
            pending, waits, reread = [], [], []
            for done in rounds:
                total.written += done.written
                total.superseded += done.superseded
                total.failed += done.failed
                total.duplicates += done.duplicates
                reread += done.reread
                for write, code in done.again:
                    pending.append(write)
                    if code in STATEMENT_RETRYABLE_CODES:
                        retries.count_statement(code)
                        waits.append(code)
            if errors:
                raise RowsUnwritten(
                    f"rows of {len(errors)} of {len(calls)} calls unwritten: {errors[0]!r}"
                ) from errors[0]
            if total.failed:
                # Codes only: a statement's message may quote a value.
                raise RowsUnwritten(f"{len(total.failed)} rows unwritten: statement errors {sorted(set(total.failed))}")
            if reread:
                planned = self._reread(reread, values, seconds_left, retries)
                total.written += planned.written
                total.superseded += planned.superseded
                pending += planned.again
                if planned.again:  # what changed under these rows may change again: wait before resending
                    waits.append("ConditionalCheckFailed")
            # A round sent back without a wait holds only UPDATEs of INSERTs that met DuplicateItem (how a
            # stored key is learnt without hints): sent at once, even inside the response margin, since
            # an UPDATE never answers DuplicateItem, so such rounds cannot follow one another. Any other
            # resend waits, and gives up when the wait would not fit in the time left (`_wait`).
            if waits:
                _wait(backoff, seconds_left, waits[0])
        return total

    def _reread(
        self, rows: list[_Write], values: ChunkValues, seconds_left: Callable[[], float], retries: RetryCounter
    ) -> _Plan:
        """Rows whose UPDATE failed its condition without the stored item, settled from a strongly
        consistent read of what is stored now (the same rules as the hints: `_plan`)."""
        for _ in rows:
            retries.count_statement("ConditionalCheckFailed")
        stored = self._stored_versions([write.row for write in rows], seconds_left, retries, consistent=True)
        return _plan([(write.row, write.version) for write in rows], stored, values.far_future, self.layout)

    def _send(
        self, call: list[_Write], values: ChunkValues, seconds_left: Callable[[], float], retries: RetryCounter
    ) -> list[dict[str, Any]]:
        request = [
            statement_request(self._statements, values, write.row, write.version, insert=write.insert) for write in call
        ]
        # A call refused whole (throttled, a server error) is sent again whole.
        answer = call_with_backoff(
            lambda: self._client.batch_execute_statement(Statements=request), seconds_left, retries
        )
        responses = answer["Responses"]
        if len(responses) != len(call):
            raise RowsUnwritten(f"{len(responses)} responses to {len(call)} statements")
        return responses

    @staticmethod
    def _settle(call: list[_Write], responses: list[dict[str, Any]]) -> _Round:
        """Each statement's outcome, `Responses[i]` answering `Statements[i]`. Codes:
        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html.

        - none: written.
        - ConditionalCheckFailed: its `Item` (ALL_OLD) holds this very version (an earlier delivery
          wrote it): written; or a later one: superseded. Without an `Item` (the key is absent, or a
          DynamoDB that leaves it out: a capture by another emulator's authors says batches do) the row
          is read again, strongly consistent, and settled from what is stored (`_reread`). The failed
          condition still consumed a write unit (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html),
          which the hints spare a row known to be superseded.
        - DuplicateItem: the INSERT's key is stored (inserted meanwhile, or met without hints: `Presence`):
          sent again as an UPDATE at once, whose condition decides.
        - throttling and transient codes (`STATEMENT_RETRYABLE_CODES`): sent again after a wait.
        - anything else fails the chunk, by code."""
        done = _Round()
        for write, response in zip(call, responses, strict=True):
            error = response.get("Error")
            if error is None:
                done.written += 1
                continue
            code = error.get("Code", "None")
            if code == "ConditionalCheckFailed" and not write.insert:
                item = error.get("Item")
                if item is None:
                    done.reread.append(write)
                elif item.get("rowVersion", {}).get("S") == write.version:
                    done.written += 1
                else:
                    done.superseded += 1
            elif code == "DuplicateItem" and write.insert:
                done.duplicates += 1
                done.again.append((_Write(write.row, write.version, insert=False), code))
            elif code in STATEMENT_RETRYABLE_CODES:
                done.again.append((write, code))
            else:
                done.failed.append(code)
        return done


def _wait(backoff: Iterator[float], seconds_left: Callable[[], float], code: str) -> None:
    """Sleep the next backoff delay, or raise `RowsUnwritten` if it would not fit in the time left."""
    delay = next(backoff)
    if delay >= seconds_left():
        raise RowsUnwritten(f"gave up retrying after {code}: out of time")
    time.sleep(delay)
