"""Fixtures: the stack's own program, run under mocks, as the plan the provider would receive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local.mocks import Plan, run_program


@pytest.fixture(scope="session")
def dev() -> Plan:
    return run_program("dev")


@pytest.fixture(scope="session")
def prod() -> Plan:
    return run_program("prod")


@pytest.fixture
def plan_with() -> Callable[..., Plan]:
    """Run the dev stack with some settings overridden: `plan_with(apiAuth="iam")`."""

    def run(**overrides: Any) -> Plan:
        return run_program("dev", overrides)

    return run
