"""Fixtures of the optimizer tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def torch64():
    """torch with float64 as the default dtype (its optimizers keep scalar state such as
    NAdam's mu_product in the default dtype), restored afterwards."""
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(previous)
