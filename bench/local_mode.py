"""Local mode itself: how long the dev stack takes to start, and how fast its emulator serves the pipeline's calls.

(a) The dev stack started once (twice at full scale): time to ready (`Started.seconds`) and
the wall time from start to stopped.

(b) In the first of those stacks, on a queue and a table of our own (created by the administrator,
so the stack's resources are untouched), the operations the pipeline makes, signed with a role's
session as the functions' calls are (so each request pays the emulator's authorisation, as theirs
do), and the empty-queue and single-thread figures again as the administrator, whose requests skip
it: SQS SendMessageBatch and ReceiveMessage + DeleteMessageBatch on a queue holding ~0 messages and
one holding many (the SQS patch of `local.moto_patches` must keep the rate at depth close to the
rate at empty), and a conditional PutItem of one item (the emulator's rate for one-item conditional
writes; the worker itself writes PartiQL statements in batches, whose rate is benchmark `worker`'s
ceiling) from 1 thread and from the worker's maximum concurrency.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

from bench.core import Benchmark, Context, Result, median_of, note_lines, number, ratio, table, timed
from bench.query_api import under_load
from bench.stacks import BenchStack, local_stack
from local.emulator import Credentials, Emulator

SQS_BATCH = 10
MESSAGE_BODY = "x" * 256
"""Small bodies: the depth is what is measured, and 100,000 messages must fit in moto's memory."""
# A latest-wins condition on one item: absent, or not newer than this row (the worker's statements
# carry theirs in an UPDATE's WHERE: handlers/worker/writes.py).
LATEST_WINS = "attribute_not_exists(email) OR rowVersion <= :version"
SCRATCH = "bench-emulator"
# The emulator's most a depth may slow a call by and still count as "holds": the patch made
# ReceiveMessage O(1) in the queue's depth, where moto scanned every message.
DEPTH_FACTOR_LIMIT = 2.0


# --- (a) start-up -----------------------------------------------------------------------------------


def startups(ctx: Context) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Start and stop the dev stack `repeats` times; the emulator measured inside the first (not in its wall time)."""
    samples, emulator = [], {}
    for index in range(ctx.pick(tiny=1, quick=1, full=2)):
        began = time.perf_counter()
        with local_stack(ctx, f"local_mode-{index}") as stack:
            ready = stack.started.seconds
            if index == 0:
                measured, emulator = timed(lambda stack=stack: measure_emulator(ctx, stack))
            else:
                measured = 0.0
        samples.append({"ready_s": round(ready, 2), "start_stop_s": round(time.perf_counter() - began - measured, 2)})
    return samples, emulator


# --- (b) the emulator's rates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """`operations` calls in `seconds` of wall time."""

    operations: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {
            "operations": self.operations,
            "ops_per_s": round(self.operations / self.seconds, 1),
            "ms_per_op": round(self.seconds * 1000 / self.operations, 3),
        }


def rate_of(operations: int, work: Callable[[], object]) -> dict[str, float]:
    seconds, _ = timed(work)
    return Rate(operations, seconds).as_dict()


@dataclass(frozen=True)
class Queue:
    sqs: Any
    url: str
    _ids: Iterator[int]

    def send_batches(self, batches: int) -> None:
        for _ in range(batches):
            entries = [{"Id": str(i), "MessageBody": f"{next(self._ids)}:{MESSAGE_BODY}"} for i in range(SQS_BATCH)]
            failed = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries).get("Failed")
            if failed:
                raise RuntimeError(f"SendMessageBatch: {len(failed)} entries failed: {failed[0]}")

    def receive_and_delete(self, rounds: int) -> None:
        """`rounds` ReceiveMessage (10, no wait) each followed by DeleteMessageBatch of what it got."""
        for _ in range(rounds):
            messages = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                raise RuntimeError("ReceiveMessage: the queue ran dry during the measurement")
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)

    def depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def queue_rates(queue: Queue, rounds: int) -> dict[str, Any]:
    """Sends then as many receive+delete rounds: the depth ends where it began, within `rounds` × 10."""
    depth = queue.depth()
    return {
        "depth": depth,
        "send_message_batch": rate_of(rounds, lambda: queue.send_batches(rounds)),
        "receive_delete": rate_of(rounds, lambda: queue.receive_and_delete(rounds)),
    }


@dataclass(frozen=True)
class Scratch:
    """A queue and a table of the benchmark's own, and a role allowed exactly the pipeline's calls on them."""

    emulator: Emulator
    role_arn: str
    queue_urls: dict[str, str]
    table: str

    @classmethod
    def create(cls, emulator: Emulator, queues: tuple[str, ...]) -> Scratch:
        admin_sqs, admin_ddb = emulator.client("sqs"), emulator.client("dynamodb")
        urls = {name: admin_sqs.create_queue(QueueName=f"{SCRATCH}-{name}")["QueueUrl"] for name in queues}
        table = f"{SCRATCH}-users"
        admin_ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        arn = f"arn:aws:{{}}:{emulator.region}:{emulator.account_id}:{{}}"
        queue_arns = [arn.format("sqs", f"{SCRATCH}-{name}") for name in queues]
        table_arn = arn.format("dynamodb", f"table/{table}")
        return cls(emulator, _role(emulator, queue_arns, table_arn), urls, table)

    def client(self, service: str, credentials: Credentials | None) -> Any:
        return self.emulator.client(service, credentials)

    def queue(self, name: str, credentials: Credentials | None) -> Queue:
        return Queue(self.client("sqs", credentials), self.queue_urls[name], count())

    def role_credentials(self) -> Credentials:
        return self.emulator.assume_role(self.role_arn, SCRATCH)


def _role(emulator: Emulator, queue_arns: list[str], table_arn: str) -> str:
    """A role trusting Lambda, with the functions' queue actions and PutItem, on the scratch resources only."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": queue_arns,
            },
            {"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": [table_arn]},
        ],
    }
    iam = emulator.client("iam")
    role = iam.create_role(RoleName=SCRATCH, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName=SCRATCH, PolicyName=SCRATCH, PolicyDocument=json.dumps(policy))
    return str(role["Arn"])


def conditional_puts(dynamodb: Any, table: str, puts: int, threads: int, first: int) -> dict[str, Any]:
    """`puts` new users written one item a call, each under a latest-wins condition, from `threads`
    threads sharing one client."""

    def put(number: int) -> None:
        dynamodb.put_item(
            TableName=table,
            Item={
                "email": {"S": f"user.{number}@example.com"},
                "name": {"S": f"User {number}"},
                "phone": {"S": "+442000000000"},
                "rowVersion": {"N": "1"},
            },
            ConditionExpression=LATEST_WINS,
            ExpressionAttributeValues={":version": {"N": "1"}},
        )

    load = under_load([lambda n=n: put(n) for n in range(first, first + puts)], threads)
    return {"threads": threads, **Rate(puts, load.seconds).as_dict()}


def worker_concurrency(stack: BenchStack) -> int:
    """The dev worker's event source maximum concurrency, as the program declared it."""
    registry = stack.local.registry
    assert registry is not None
    for source in registry.queue_sources:
        if registry.function(source.function_arn).package == "worker":
            return source.max_concurrency
    raise LookupError("the dev stack has no worker event source")


def measure_emulator(ctx: Context, stack: BenchStack) -> dict[str, Any]:
    deep = ctx.pick(tiny=500, quick=10_000, full=100_000)
    rounds = ctx.pick(tiny=20, quick=100, full=500)
    puts = ctx.pick(tiny=100, quick=500, full=4_000)
    scratch = Scratch.create(stack.emulator, ("empty", "deep", "admin"))
    role = scratch.role_credentials()
    ctx.progress(f"local_mode: SQS at depth ~0, then filling a queue to {deep:,} messages")
    at_empty = queue_rates(scratch.queue("empty", role), rounds)
    admin_at_empty = queue_rates(scratch.queue("admin", None), rounds)
    deep_queue = scratch.queue("deep", role)
    fill = rate_of(deep // SQS_BATCH, lambda: deep_queue.send_batches(deep // SQS_BATCH))
    at_depth = queue_rates(deep_queue, rounds)
    threads = worker_concurrency(stack)
    ctx.progress(f"local_mode: DynamoDB one-item conditional PutItem, 1 and {threads} threads")
    dynamodb = scratch.client("dynamodb", role)
    admin_dynamodb = scratch.client("dynamodb", None)
    return {
        "principal": "a role's session (the functions' path: authorised per request)",
        "message_bytes": len(MESSAGE_BODY) + 8,
        "rounds": rounds,
        "sqs": {"empty": at_empty, "deep": at_depth, "admin_empty": admin_at_empty, "fill": {"depth": deep, **fill}},
        "depth_ratio": {
            op: round(at_depth[op]["ops_per_s"] / at_empty[op]["ops_per_s"], 3)
            for op in ("send_message_batch", "receive_delete")
        },
        "dynamodb_put": {
            "one": conditional_puts(dynamodb, scratch.table, puts, 1, first=0),
            "worker": conditional_puts(dynamodb, scratch.table, puts, threads, first=puts),
            "admin_one": conditional_puts(admin_dynamodb, scratch.table, puts, 1, first=2 * puts),
        },
    }


# --- the benchmark ---------------------------------------------------------------------------------


def run(ctx: Context) -> Result:
    load_before = os.getloadavg()[0]
    samples, emulator = startups(ctx)
    return {
        "starts": samples,
        "ready_s": round(median_of(s["ready_s"] for s in samples), 2),
        "start_stop_s": round(median_of(s["start_stop_s"] for s in samples), 2),
        "load_average_1m": round(load_before, 2),
        "emulator": emulator,
    }


def render(result: Result) -> str:
    emulator = result["emulator"]
    sqs, ratios, puts = emulator["sqs"], emulator["depth_ratio"], emulator["dynamodb_put"]
    start_table = table(
        ["starts", "ready s (median)", "start to stopped s (median)", "each (ready / start to stopped)"],
        [
            (
                len(result["starts"]),
                result["ready_s"],
                result["start_stop_s"],
                ", ".join(f"{number(s['ready_s'])} / {number(s['start_stop_s'])}" for s in result["starts"]),
            )
        ],
    )
    sqs_rows = []
    for operation, label in (
        ("send_message_batch", "SendMessageBatch (10)"),
        ("receive_delete", "Receive (10) + DeleteMessageBatch"),
    ):
        for depth_key, who in (("empty", "role"), ("deep", "role"), ("admin_empty", "administrator")):
            measured = sqs[depth_key]
            sqs_rows.append(
                (
                    label,
                    who,
                    f"{measured['depth']:,}",
                    measured[operation]["ops_per_s"],
                    measured[operation]["ms_per_op"],
                )
            )
    sqs_table = table(["operation", "signed as", "depth at start", "ops/s", "ms/op"], sqs_rows)
    ratio_table = table(
        ["operation", "rate at depth / rate at ~0", f"holds (≥ 1/{number(DEPTH_FACTOR_LIMIT)})"],
        [
            (op, f"{ratios[op]:.2f}×", "yes" if ratios[op] >= 1 / DEPTH_FACTOR_LIMIT else "**no**")
            for op in ("send_message_batch", "receive_delete")
        ],
    )
    put_table = table(
        ["conditional PutItem (one item)", "threads", "ops/s", "ms/op (wall / ops)"],
        [
            ("role", puts["one"]["threads"], puts["one"]["ops_per_s"], puts["one"]["ms_per_op"]),
            ("role", puts["worker"]["threads"], puts["worker"]["ops_per_s"], puts["worker"]["ms_per_op"]),
            (
                "administrator",
                puts["admin_one"]["threads"],
                puts["admin_one"]["ops_per_s"],
                puts["admin_one"]["ms_per_op"],
            ),
        ],
    )
    fill = sqs["fill"]
    notes = [
        f"Start-up: the dev stack started in this process (`bench.stacks.local_stack`); ready is `Started.seconds`"
        f" (emulator, deploy, function imports checked, pollers and API up); 1-minute load average"
        f" {number(result['load_average_1m'])} when the benchmark began.",
        f"Scratch queue and table created by the administrator in the first stack's emulator; the calls signed"
        f" with a role's session, as the functions' are, so each pays the emulator's per-request authorisation"
        f" (`local.authz`); the administrator's rows skip it. Bodies of {emulator['message_bytes']} bytes;"
        f" {emulator['rounds']} calls per row, one thread.",
        f"Deep queue filled to {fill['depth']:,} messages at {number(fill['ops_per_s'])} SendMessageBatch/s"
        f" ({number(fill['ms_per_op'])} ms each).",
        f"Speed-up of {puts['worker']['threads']} threads over 1:"
        f" {ratio(puts['worker']['ops_per_s'], puts['one']['ops_per_s'])} (moto runs behind one lock).",
        "These clients run in the emulator's own process and share its interpreter lock, so their rates are"
        " below what the emulator serves to clients of their own (benchmark `worker`'s ceiling, the reference"
        " of the pipeline benchmarks): they compare the emulator with itself (at depth, with and without"
        " authorisation, 1 or several threads). Its rate under the pipeline's load is in benchmark `end_to_end`.",
    ]
    return "\n\n".join(
        [
            "### Start-up\n",
            start_table,
            "### The emulator's request rate\n",
            sqs_table,
            ratio_table,
            put_table,
            note_lines(notes),
        ]
    )


BENCHMARK = Benchmark(
    name="local_mode", title="Local mode itself: start-up and the emulator's rate", run=run, render=render
)
