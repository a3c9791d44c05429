"""Fixtures for the network tests (helpers in network/helpers.py). Everything a fixture creates is
removed at the end, also when a test fails."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator

import pytest

from network.helpers import FakeUpstream, Harness, OutsideHost


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    u = FakeUpstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Harness]:
    if not shutil.which("nsenter") or not shutil.which("curl"):
        pytest.skip("needs nsenter and curl")
    tag = secrets.token_hex(2)
    h = Harness(str(tmp_path_factory.mktemp("dytnet")), tag, upstream)
    try:
        h.start()
        yield h
    finally:
        h.close()


@pytest.fixture
def net(harness: Harness) -> Iterator[Harness]:
    """The module's harness, emptied of containers and user networks after each test."""
    try:
        yield harness
    finally:
        harness.reset()


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutsideHost]:
    o = OutsideHost(str(tmp_path_factory.mktemp("dytout")), secrets.token_hex(2))
    try:
        yield o
    finally:
        o.close()
