"""Fixtures shared by every test directory.

The ``stack`` fixture brings up the real local stack (Kafka, FerretDB, two Orthancs and the five
services) once per test session, on the test profile's ports (every default +10000), from an
empty state. If a component cannot start, every test that needs it fails with the component's
name and log: nothing is skipped.
"""

from __future__ import annotations

import os

import pytest

from eucaim_node.stack import PORT_FIELDS, Stack, StackSettings


def _test_stack() -> Stack:
    """The test profile; ``EUCAIM_TEST_PORT_SHIFT=N`` moves it by N more ports (two checkouts on one machine)."""
    shift = int(os.environ.get("EUCAIM_TEST_PORT_SHIFT", "0"))
    if not shift:
        return Stack.test_profile()
    base = StackSettings.test_profile()
    return Stack(StackSettings.test_profile(name=f"test{shift}", **{f: getattr(base, f) + shift for f in PORT_FIELDS}))


@pytest.fixture(scope="session")
def stack():
    stack = _test_stack()
    stack.reset()
    stack.up(services=True)
    yield stack
    if not os.environ.get("EUCAIM_KEEP_STACK"):
        stack.down()


def pytest_collection_modifyitems(items):
    """A test that uses the real stack is an integration test, whatever its author remembered to mark."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
