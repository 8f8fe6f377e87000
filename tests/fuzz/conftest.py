"""The fuzzed stack runs without a dispatcher."""

from __future__ import annotations

import pytest

from harness.stack import StackOptions


@pytest.fixture
def stack_options() -> StackOptions:
    """No dispatcher: nothing here is delivered, and it would only add load and log lines."""
    return StackOptions(with_dispatcher=False)
