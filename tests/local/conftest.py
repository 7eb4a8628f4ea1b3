"""An emulator in this process, one per test module, for the tests of local mode's parts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.emulator import Emulator

REGION = "eu-west-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emulator = Emulator(REGION, ACCOUNT)
    emulator.start()
    yield emulator
    emulator.stop()
