"""An SQS event source mapping's filter criteria, as Lambda applies them (issue 20, item 8).

The rules of https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html on SQS
records, and the mapping's behaviour: a message no pattern matches is deleted from the queue and the
function never sees it (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from local.emulator import Emulator
from local.esm import QueuePoller
from local.event_filters import matches_any, parse_patterns
from local.registry import NotEmulated, QueueEventSource, Registry
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import wait_for
from tests.local.test_event_sources import SPEC, Recorder, depth, new_queue, send

ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"


def record(body: str, **fields: Any) -> dict[str, Any]:
    """An SQS record of Lambda's event, as the mapping matches it."""
    return {"messageId": "m", "body": body, "attributes": {"ApproximateReceiveCount": "1"}, **fields}


def patterns(*documents: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Patterns as the program declares them (`filter_criteria.filters[].pattern`, JSON text)."""
    return parse_patterns([{"pattern": json.dumps(document)} for document in documents])


@pytest.mark.parametrize(
    ("pattern", "body", "sent"),
    [
        ({"body": {"kind": ["chunk"]}}, {"kind": "chunk"}, True),
        ({"body": {"kind": ["chunk"]}}, {"kind": "job"}, False),
        ({"body": {"kind": ["chunk", "job"]}}, {"kind": "job"}, True),
        ({"body": {"kind": [{"prefix": "ch"}]}}, {"kind": "chunk"}, True),
        ({"body": {"kind": [{"suffix": "nk"}]}}, {"kind": "job"}, False),
        ({"body": {"kind": [{"equals-ignore-case": "CHUNK"}]}}, {"kind": "chunk"}, True),
        ({"body": {"kind": [{"anything-but": ["job"]}]}}, {"kind": "chunk"}, True),
        ({"body": {"kind": [{"anything-but": "chunk"}]}}, {"kind": "chunk"}, False),
        ({"body": {"rows": [{"numeric": [">", 0, "<=", 500]}]}}, {"rows": 500}, True),
        ({"body": {"rows": [{"numeric": [">", 0, "<=", 500]}]}}, {"rows": 501}, False),
        ({"body": {"rows": [{"numeric": ["=", 7]}]}}, {"rows": "7"}, False),
        ({"body": {"rows": [7]}}, {"rows": 7.0}, True),
        ({"body": {"retry": [{"exists": True}]}}, {"retry": 0}, True),
        ({"body": {"retry": [{"exists": False}]}}, {"retry": 0}, False),
        ({"body": {"retry": [{"exists": False}]}}, {"kind": "chunk"}, True),
        ({"body": {"retry": [None]}}, {"retry": None}, True),
        ({"body": {"job": {"id": [{"prefix": "a"}]}}}, {"job": {"id": "abc"}}, True),
        ({"body": {"tags": ["b"]}}, {"tags": ["a", "b"]}, True),
        ({"body": {"kind": ["chunk"], "rows": [{"numeric": [">", 0]}]}}, {"kind": "chunk", "rows": 0}, False),
    ],
)
def test_a_pattern_matches_a_json_body_as_lambda_documents(pattern, body, sent) -> None:
    assert matches_any(patterns(pattern), record(json.dumps(body))) is sent


def test_a_body_that_is_not_json_matches_plain_patterns_only() -> None:
    assert matches_any(patterns({"body": ["plain text"]}), record("plain text"))
    assert not matches_any(patterns({"body": {"kind": ["chunk"]}}), record("plain text"))
    assert not matches_any(patterns({"body": {"kind": [{"exists": False}]}}), record("[1, 2]"))


def test_a_record_matching_any_one_pattern_is_sent_and_no_pattern_sends_every_record() -> None:
    either = patterns({"body": {"kind": ["chunk"]}}, {"attributes": {"ApproximateReceiveCount": ["1"]}})
    assert matches_any(either, record('{"kind": "job"}'))
    assert matches_any((), record("anything"))


@pytest.mark.parametrize(
    "pattern",
    [
        {"body": {"key": [{"wildcard": "a*"}]}},
        {"body": {"key": [{"cidr": "10.0.0.0/24"}]}},
        {"$or": [{"body": {"a": ["1"]}}, {"body": {"b": ["2"]}}]},
        {"body": {"key": [{"anything-but": {"prefix": "a"}}]}},
        {"body": {"key": "chunk"}},
    ],
)
def test_a_pattern_local_mode_does_not_apply_is_refused_not_applied_half(pattern) -> None:
    with pytest.raises(ValueError, match="filter pattern"):
        patterns(pattern)


def test_messages_no_filter_matches_are_deleted_unseen_and_the_others_are_delivered(emulator: Emulator) -> None:
    # GIVEN a mapping whose filter lets through chunks with rows, or any job-… name
    url, arn = new_queue(emulator)
    source = QueueEventSource(
        uuid="esm",
        function_arn=SPEC.arn,
        queue_arn=arn,
        batch_size=10,
        batching_window_seconds=0,
        max_concurrency=1,
        report_batch_item_failures=True,
        enabled=True,
        filters=patterns(
            {"body": {"kind": ["chunk"], "rows": [{"numeric": [">", 0]}]}},
            {"body": {"name": [{"prefix": "job-"}]}},
        ),
    )
    recorder = Recorder()
    mapping = QueuePoller(
        source, SPEC, sqs=emulator.client("sqs"), queue_url=url, region=REGION, invoke=recorder, log=lambda _: None
    )
    sent = [
        json.dumps({"kind": "chunk", "rows": 3}),
        json.dumps({"kind": "chunk", "rows": 0}),
        json.dumps({"kind": "report"}),
        "not json",
        json.dumps({"name": "job-7"}),
    ]
    # WHEN they are sent and the mapping runs until the queue is empty
    send(emulator, url, sent)
    mapping.start()
    try:
        wait_for(lambda: depth(emulator, url) == 0, 60, "every message delivered or deleted")
    finally:
        mapping.stop()
        mapping.join(10)

    # THEN the function saw only those a pattern matches; the rest left the queue all the same
    delivered = sorted(r["body"] for batch in recorder.batches for r in batch)
    assert delivered == sorted([sent[0], sent[4]])


def test_local_mode_reads_the_programs_filter_criteria_and_refuses_a_form_it_does_not_apply() -> None:
    from local.mocks import run_program

    def filtered(pattern: dict[str, Any]):
        def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
            if args.type_ != ESM:
                return None
            criteria = {"filters": [{"pattern": json.dumps(pattern)}]}
            return pulumi.ResourceTransformationResult({**args.props, "filter_criteria": criteria}, args.opts)

        return transformation

    chunks = {"body": {"kind": ["chunk"]}}
    (source,) = Registry.from_plan(
        run_program("dev", transformations=[filtered(chunks)]), REGION, ACCOUNT
    ).queue_sources
    assert source.filters == (chunks,)

    wildcard = run_program("dev", transformations=[filtered({"body": {"kind": [{"wildcard": "ch*"}]}})])
    with pytest.raises(NotEmulated, match=r"csv-ingest-worker-queue: filter pattern \.body\.kind: 'wildcard'"):
        Registry.from_plan(wildcard, REGION, ACCOUNT)
