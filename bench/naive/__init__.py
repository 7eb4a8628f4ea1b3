"""The article's design, as a variant of this stack for the end-to-end comparison (`bench.pipeline`).

The article the project started from (`../shared/reference/seed-article.txt`) sends one SQS message per
row and writes each batch of messages with an unconditional `BatchWriteItem`. This package holds that
design's two handlers (`producer.py`, `worker.py`, in Python rather than the article's Node.js, so both
designs run on the same runtime) and the stack transformation that deploys them in place of ours,
with the article's batching (10 messages a batch, a 5 s window): everything else — bucket, queue,
roles, table, the mapping's concurrency — is the program's own, so the comparison measures the
design, not a different setup. The one grant the article's worker needs and
ours does not (`dynamodb:BatchWriteItem`) is added where the program grants a write of items:
`dynamodb:PutItem`, or `dynamodb:PartiQLInsert` (our worker's write to the users table).

Lives in bench/ only: nothing in the program or local mode knows about it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pulumi

HERE = Path(__file__).resolve().parent
# The article's event source mapping: `--batch-size 10 --maximum-batching-window-in-seconds 5`.
ARTICLE_BATCH_SIZE, ARTICLE_BATCHING_WINDOW_SECONDS = 10, 5
# The program's handler setting, `handlers.<package>.app.handler` (infra/function.py), for the two it replaces.
REPLACED = {"handlers.producer.app.handler": "producer", "handlers.worker.app.handler": "worker"}
ARCHIVE_ROOT = "bench_naive"
# The article's producer sends a whole file in one invocation (it has no continuation): it gets
# Lambda's longest timeout, so that the benchmark's largest file is sent whole, however slowly
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html: up to 900 seconds).
NAIVE_PRODUCER_TIMEOUT_SECONDS = 900
# Requests each handler keeps in flight at once, by operation: none, both make one call at a time
# (the cost model's waits, `bench.cost`).
CONCURRENT_CALLS: dict[str, dict[str, int]] = {"producer": {}, "worker": {}}


def build_archive(folder: Path) -> Path:
    """A zip of the naive handlers (boto3 and csv come with the Lambda runtime)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "naive.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{ARCHIVE_ROOT}/__init__.py", "")
        for module in sorted(set(REPLACED.values())):
            bundle.write(HERE / f"{module}.py", f"{ARCHIVE_ROOT}/{module}.py")
    return archive


WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:PartiQLInsert"}
"""Grants to write a new item: where the program gives one, the naive worker gets BatchWriteItem too."""


def transformation(archive: Path) -> pulumi.ResourceTransformation:
    """Swap the producer's and worker's code for the naive handlers, batch the queue's messages as the
    article does, and allow BatchWriteItem where items may be written (`WRITE_ACTIONS`)."""
    function_type, policy_type = "aws:lambda/function:Function", "aws:iam/rolePolicy:RolePolicy"
    mapping_type = "aws:lambda/eventSourceMapping:EventSourceMapping"

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == function_type and args.props.get("handler") in REPLACED:
            module = REPLACED[args.props["handler"]]
            props = {
                **args.props,
                "handler": f"{ARCHIVE_ROOT}.{module}.handler",
                "code": pulumi.FileArchive(str(archive)),
                "code_sha256": None,
                **({"timeout": NAIVE_PRODUCER_TIMEOUT_SECONDS} if module == "producer" else {}),
            }
            return pulumi.ResourceTransformationResult(props, args.opts)
        if args.type_ == mapping_type:
            props = {
                **args.props,
                "batch_size": ARTICLE_BATCH_SIZE,
                "maximum_batching_window_in_seconds": ARTICLE_BATCHING_WINDOW_SECONDS,
            }
            return pulumi.ResourceTransformationResult(props, args.opts)
        if args.type_ == policy_type:
            props = {**args.props, "policy": pulumi.Output.from_input(args.props["policy"]).apply(_with_batch_writes)}
            return pulumi.ResourceTransformationResult(props, args.opts)
        return None

    return transform


def _with_batch_writes(document: str) -> str:
    policy: dict[str, Any] = json.loads(document)
    for statement in policy.get("Statement", []):
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if WRITE_ACTIONS & set(actions):
            statement["Action"] = [*actions, "dynamodb:BatchWriteItem"]
    return json.dumps(policy)
