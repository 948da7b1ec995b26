"""One registry of ops (a slim OpInfo, as PyTorch's): every public function of
``nervenet.functional`` has an entry here, and the generic suites in ``test_ops.py`` run over
all of them (NumPy reference, float64 gradcheck, double backward, dtypes, torch oracle).

Each op family lists its entries in its own module; this package only gathers them.
"""

from __future__ import annotations

from tests.autograd.opinfo.activation import OPS as ACTIVATION_OPS
from tests.autograd.opinfo.base import OpInfo, Sample
from tests.autograd.opinfo.conv import OPS as CONV_OPS
from tests.autograd.opinfo.core import OPS as CORE_OPS
from tests.autograd.opinfo.loss import OPS as LOSS_OPS

ALL_OPS: list[OpInfo] = [*CORE_OPS, *ACTIVATION_OPS, *LOSS_OPS, *CONV_OPS]

#: public names of nervenet.functional that are not ops of their own (they have no entry)
NOT_OPS: set[str] = set()

__all__ = ["ALL_OPS", "NOT_OPS", "OpInfo", "Sample"]
