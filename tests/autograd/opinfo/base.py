"""The OpInfo record and its sample type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sample:
    """One call of an op: positional array arguments and keyword arguments.

    ``args`` are float64 arrays for differentiable inputs, integer or boolean arrays for
    labels and masks; ``kwargs`` are plain Python values. ``label`` names the case in test ids.
    """

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass
class OpInfo:
    """What the generic op tests need to know about one op.

    Attributes:
        name: the public name in ``nervenet.functional``.
        op: calls the op: ``op(*tensors, **kwargs) -> Tensor`` (usually the F function).
        samples: ``samples(rng) -> list[Sample]``: inputs including broadcasting and odd shapes,
            chosen away from kinks.
        reference: NumPy reference ``reference(*arrays, **kwargs) -> ndarray`` (or ``None``).
        torch_op: the torch equivalent ``torch_op(*torch_tensors, **kwargs)``, or ``None``.
            Layout conversions (NHWC vs NCHW) happen inside it.
        second_order: whether double backward is exact (gradgradcheck runs).
        differentiable: indices of the arguments to differentiate (default: every floating one).
        kinks: where the op is not differentiable, and how the samples avoid it.
        deterministic: False for random ops (dropout, stochastic pooling); the generic tests then
            seed them through kwargs instead of comparing with references.
    """

    name: str
    op: Callable
    samples: Callable[[np.random.Generator], list[Sample]]
    reference: Callable | None = None
    torch_op: Callable | None = None
    second_order: bool = True
    differentiable: tuple[int, ...] | None = None
    kinks: str = ""
    deterministic: bool = True
    atol: float = 1e-5
    rtol: float = 1e-3

    def differentiable_indices(self, sample: Sample) -> tuple[int, ...]:
        if self.differentiable is not None:
            return self.differentiable
        return tuple(i for i, a in enumerate(sample.args)
                     if isinstance(a, np.ndarray) and a.dtype.kind == "f")
