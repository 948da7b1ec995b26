"""detect_anomaly: the first op that makes NaN or Inf is named, with the line that created it."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
import nervenet.functional as F


def test_a_nan_in_the_forward_pass_names_the_op_and_the_line():
    x = nervenet.tensor([1.0, -1.0], requires_grad=True)
    with nervenet.detect_anomaly(), np.errstate(invalid="ignore"), pytest.raises(
            FloatingPointError, match=r"Log produced NaN in its forward pass .*"
                                      r"test_anomaly.py:\d+ in test_a_nan_in_the_forward"):
        F.log(x * 2.0)


def test_an_inf_in_the_backward_pass_names_the_op_and_where_it_was_created():
    x = nervenet.tensor([0.0, 4.0], requires_grad=True)
    with nervenet.detect_anomaly():
        y = F.sqrt(x)  # finite forward; the gradient 1 / (2 sqrt(0)) is infinite
        with np.errstate(divide="ignore"), pytest.raises(
                FloatingPointError, match=r"Sqrt produced Inf in its backward pass"):
            y.sum().backward()


def test_backward_anomaly_points_at_the_user_line():
    x = nervenet.tensor([0.0, 4.0], requires_grad=True)
    with nervenet.detect_anomaly():
        y = F.sqrt(x) * 3.0
        with np.errstate(divide="ignore"), pytest.raises(FloatingPointError) as info:
            y.sum().backward()
    assert "y = F.sqrt(x) * 3.0" in str(info.value)


def test_off_by_default_and_restored_after_the_block():
    x = nervenet.tensor([-1.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.log(x).data).all()
        with nervenet.detect_anomaly():
            assert nervenet.autograd.is_anomaly_enabled()
            with nervenet.detect_anomaly(False):
                assert np.isnan(F.log(x).data).all()
        assert not nervenet.autograd.is_anomaly_enabled()
