"""The oracle suite on a second schema, whose key is no e-mail: a product catalogue keyed by a text
SKU, with a decimal price, an integer stock, a boolean and a date (`oracle.PRODUCTS`). The users
pipeline's proofs are run again where the schema changes what is written: latest wins across
uploads, duplicates within a file, reordered and duplicated delivery, and statements failing inside
batches. (A worker killed mid-batch is proven on the users stack, tests/reliability/test_injected_faults.py:
what it tests, redelivery after the visibility timeout, does not depend on the schema, and it waits
a minute for it.) Each ends compared with the oracle, attribute by attribute in DynamoDB's
types (a price is a number, N, and `active` a BOOL, absent when the cell was empty): no item lost,
none stale, none extra, every job's counts exact.

One products stack for the module (`--set schema=<its JSON>`, as an operator would put it in the
stack's file), with the injected-faults module's settings: chunks of 20 rows, no batching window,
a worker timing out after 10 s, a producer timeout of 10 s and asynchronous retries after 1 and
2 s. Each scenario has its own SKU prefix, so the table comparison sees its items only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from tests.evidence import Proof
from tests.local.support import LocalStackProcess, local_stack, wait_for
from tests.reliability.faults import SETTINGS as FAULT_SETTINGS
from tests.reliability.faults import ends_as_the_oracle_says, quiet_around, upload_all
from tests.reliability.oracle import (
    PRODUCTS,
    PRODUCTS_DECLARATION,
    Upload,
    expect,
    generate_products,
)

pytestmark = pytest.mark.long(seconds=120)

# The injected-faults module's settings, with the products schema.
SETTINGS = ("--set", f"schema={json.dumps(PRODUCTS_DECLARATION)}", *FAULT_SETTINGS)
SECTION = "Second schema (products, keyed by SKU)"

OVERLAP = Proof(
    "RELIABILITY",
    SECTION,
    "overlapping product files uploaded in quick succession, in both orders",
    injected="two 300-row files of the same SKUs (row n of each is `<prefix>-p<n>`, and a quarter of the rows"
    " take one of 40 shared SKUs instead; each file repeats some of its own and spells some with a capital P,"
    " another key; one row in 11 breaks one rule), uploaded one right after the other, A then B under one"
    " prefix and B then A under another",
    held="each prefix's table is the later upload's last valid row per SKU, every price, stock, boolean and"
    " date in its normal form and DynamoDB type (N, BOOL), absent when empty; every job's counts exact",
    figures={"files": 4, "rows uploaded": 1200, "rows checked": 594},
    test="test_overlapping_product_files_end_as_the_later_upload_in_both_orders",
)
DUPLICATED = Proof(
    "RELIABILITY",
    SECTION,
    "every product chunk delivered twice, and deliveries reordered",
    injected="the worker's event source hands every batch to two invocations at once, delivers the batch"
    " waiting behind it first and shuffles each batch's records (seeded); three 300-row files sharing SKUs",
    held="the table and the three jobs match the oracle: each chunk counted once, the later upload and row winning",
    figures={"files": 3, "rows uploaded": 900, "rows checked": 313, "messages delivered twice": 42},
    test="test_every_product_chunk_delivered_twice_and_out_of_order_ends_as_the_oracle_says",
)
STATEMENT_ERRORS = Proof(
    "RELIABILITY",
    SECTION,
    "statements of product rows throttled or failing inside the worker's batches",
    injected="a window of the PartiQL statements of the worker's BatchExecuteStatement calls answered with"
    " their own error while the rest of each batch ran: 20 % ThrottlingError, then 10 % InternalServerError"
    " (seeded); two 300-row files sharing SKUs",
    held="each failed statement, with its typed parameters, was sent again alone within its invocation;"
    " table and job counts match the oracle",
    figures={"rows uploaded": 600, "rows checked": 302, "statements in the windows": 300, "errors injected": 44},
    test="test_product_statements_failing_inside_a_batch_are_sent_again_and_lose_nothing",
)
PROOFS = [OVERLAP, DUPLICATED, STATEMENT_ERRORS]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with local_stack(tmp_path_factory.mktemp("reliability-products"), *SETTINGS) as running:
        assert json.loads(running.outputs["schema"])["key"] == PRODUCTS.key, running.outputs["schema"]
        yield running


@pytest.fixture(autouse=True)
def clean(local: LocalStackProcess) -> Iterator[None]:
    """Every scenario starts and ends with no fault in force and nothing left on the queue."""
    yield from quiet_around(local)


def _rows(uploads: Sequence[Upload]) -> int:
    return sum(job.rows_total for job in expect(uploads, PRODUCTS).jobs)


def _shared(scope: str, count: int) -> list[str]:
    return [f"{scope}-shared{n}" for n in range(count)]


def test_overlapping_product_files_end_as_the_later_upload_in_both_orders(local: LocalStackProcess) -> None:
    runs = []
    for order in ("ab", "ba"):
        scope = f"overlap{order}"
        shared = _shared(scope, 40)
        files = {
            name: Upload(
                f"uploads/products-{scope}/{name}.csv",
                generate_products(scope, 300, seed=seed, invalid_every=11, shared=shared),
            )
            for name, seed in (("a", 1), ("b", 2))
        }
        uploads = [files[name] for name in order]
        runs.append((scope, uploads, upload_all(local, uploads)))

    checked = sum(
        ends_as_the_oracle_says(local, uploads, job_ids, scope, PRODUCTS).rows_checked
        for scope, uploads, job_ids in runs
    )

    uploaded = sum(_rows(uploads) for _, uploads, _ in runs)
    assert {"files": 2 * len(runs), "rows uploaded": uploaded, "rows checked": checked} == OVERLAP.figures


def test_every_product_chunk_delivered_twice_and_out_of_order_ends_as_the_oracle_says(
    local: LocalStackProcess,
) -> None:
    scope = "twice"
    shared = _shared(scope, 30)
    uploads = [
        Upload(
            f"uploads/products-twice-{n}.csv",
            generate_products(scope, 300, seed=100 + n, invalid_every=13, shared=shared),
        )
        for n in range(3)
    ]
    local.fault(kind="delivery", source="sqs", function="worker", duplicate=True, reorder=True, seed=11)

    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, scope, PRODUCTS)

    # The fault was in force for every delivery: each chunk went to two invocations at least once.
    [(_, twice)] = [(fault, count) for fault, count in local.applied_faults() if fault["kind"] == "delivery"]
    chunks = sum(int((local.job(job_id) or {})["chunksTotal"]) for job_id in job_ids)
    assert twice >= chunks
    figures = {"files": len(uploads), "rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked}
    assert {**figures, "messages delivered twice": chunks} == DUPLICATED.figures


# (error code, rate, window): each window sized under the statements the scenario sends for certain
# (one per SKU of each chunk, before any is sent again), so that it is spent and the count of errors
# is its seed's.
STATEMENT_WINDOWS = (("ThrottlingError", 0.2, 200), ("InternalServerError", 0.1, 100))


def test_product_statements_failing_inside_a_batch_are_sent_again_and_lose_nothing(local: LocalStackProcess) -> None:
    scope = "statements"
    shared = _shared(scope, 30)
    uploads = [
        Upload(
            f"uploads/products-statements-{n}.csv",
            generate_products(scope, 300, seed=350 + n, invalid_every=19, shared=shared),
        )
        for n in range(2)
    ]
    for n, (code, rate, window) in enumerate(STATEMENT_WINDOWS):
        local.fault(kind="statement", error_code=code, rate=rate, times=window, seed=n)

    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, scope, PRODUCTS)
    wait_for(lambda: local.active_faults() == [], 60, "every fault window to be spent")

    windows = sum(window for *_, window in STATEMENT_WINDOWS)
    injected = sum(count for fault, count in local.applied_faults() if fault["kind"] == "statement")
    assert 0 < injected < windows
    assert "WriteThrottles" in local.log("worker")
    figures = {"rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked}
    assert {**figures, "statements in the windows": windows, "errors injected": injected} == STATEMENT_ERRORS.figures
