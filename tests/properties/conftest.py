"""One hypothesis profile for the property tests, and a runner that counts the examples it ran.

The profile is reproducible (`derandomize`: the same examples on every run and machine, so CI
never fails on a draw nobody can replay), has no deadline (the machines are shared: a slow example
is not a failure) and keeps no example database. It is applied per test, never loaded globally:
other suites (schemathesis) run hypothesis in the same process with their own settings.

The runner returns how many examples passed, so that a test can assert the figure its proof
reports: a property that silently ran on nothing (every draw filtered out) fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# The handler tests' moto deployment, for the end-to-end property.
from tests.evidence import Proof
from tests.handlers.conftest import aws_credentials, deployment, schema  # noqa: F401

PROFILE = "csv-ingest-properties"
settings.register_profile(
    PROFILE,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    # Files of a few hundred rows are the point of some properties, not an accident of the strategy.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Property = Callable[[], None]
"""A function decorated with `@given`, all of whose arguments are drawn."""


def run_examples(prop: Property, proof: Proof) -> int:
    """Run `prop` under the profile on as many examples as `proof` reports; how many it passed
    (explicit `@example`s included, draws rejected by `assume` not)."""
    passed = 0
    inner = prop.hypothesis.inner_test  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal passed
        inner(*args, **kwargs)
        passed += 1

    prop.hypothesis.inner_test = counted  # type: ignore[attr-defined]
    settings(settings.get_profile(PROFILE), max_examples=proof.figures["examples"])(prop)()
    return passed


@pytest.fixture
def examples() -> Callable[[Property, Proof], int]:
    """`examples(prop, proof)`: run the property on the examples its proof reports; the number that passed."""
    return run_examples
