"""Function: one differentiable operation, and the switch that records the graph.

Every op is a subclass with two methods and nothing else:

* ``forward(*arrays) -> array or tuple of arrays`` computes the result on raw ndarrays and
  stores on ``self`` whatever ``backward`` will need (and nothing more);
* ``backward(*grad_outputs) -> grad or tuple of grads`` receives one upstream gradient Tensor
  per output and returns one gradient per input (``None`` where an input needs none).
  It is written with differentiable Tensor operations, so that running it while the graph is
  being recorded (``create_graph=True``) gives exact higher derivatives.

Calling a Function on Tensors runs ``forward``, wraps the outputs in Tensors and, when
gradients are being recorded and some input requires them, links the outputs to the Function
(``creator``) and the Function to its inputs: that is the computational graph.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from nervenet.autograd.anomaly import AnomalyMode, check_forward, creation_site
from nervenet.autograd.tensor import Tensor, as_tensor


class _GradMode(threading.local):
    """Are operations recorded for backpropagation? One switch per thread (as torch's): a
    ``no_grad`` in one thread (a predict, a load) must not turn recording off in another."""

    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Return True when operations are being recorded for backpropagation."""
    return _grad_mode.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.previous = True

    def __enter__(self):
        self.previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc_info):
        _grad_mode.enabled = self.previous
        return False


class no_grad(set_grad_enabled):
    """Do not record operations: no graph, no memory kept for backward.

    Use it for inference and for updates of weights.

    Example:
        >>> import nervenet
        >>> w = nervenet.tensor([1.0], requires_grad=True)
        >>> with nervenet.no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record operations even inside ``no_grad``."""

    def __init__(self):
        super().__init__(True)


def _deepest(inputs: tuple[Tensor, ...], arity: int) -> int:
    """The largest generation among the inputs (see the NOTE in ``Function.__call__``)."""
    if arity == 1:
        return inputs[0].generation
    if arity == 2:
        return max(inputs[0].generation, inputs[1].generation)
    if arity == 3:
        return max(inputs[0].generation, inputs[1].generation, inputs[2].generation)
    return max([x.generation for x in inputs])


def _as_tensors(inputs: tuple) -> tuple[Tensor, ...]:
    """Wrap non-Tensor inputs; numbers take the dtype of a tensor operand (float32 stays
    float32)."""
    like = None
    for x in inputs:
        if isinstance(x, Tensor):
            like = x
            break
    return tuple([x if isinstance(x, Tensor) else as_tensor(x, like) for x in inputs])


class Function:
    """Base class of every differentiable operation.

    Attributes set when the call is recorded in the graph:
        inputs: the input Tensors (kept alive: backward needs them).
        outputs: weak references to the output Tensors (the Function must not keep its own
            results alive; they belong to whoever uses them).
        output_specs: (shape, dtype) of each output, for Functions with several: an output
            nobody kept has a zero gradient of that shape.
        generation: the depth of this node, so that backward processes a node only after
            every node that uses its outputs.
        needs_input_grad: one bool per input; ``forward``/``backward`` may skip work for
            inputs that need no gradient. Available inside ``forward``.
    """

    inputs: tuple[Tensor, ...] | None = None
    outputs: list[weakref.ref] | None = None
    generation: int = 0
    needs_input_grad: tuple[bool, ...] = ()
    #: whether ``backward`` is itself differentiable (second derivatives are exact)
    differentiable_backward: bool = True
    released: bool = False

    def __call__(self, *inputs):
        for x in inputs:
            if not isinstance(x, Tensor):
                inputs = _as_tensors(inputs)
                break
        # NOTE: the loops over the inputs are written out for one, two and three inputs
        # (nearly every op): in CPython 3.11 a comprehension runs as a function call, and the
        # three of them took a fifth of the time it costs to record an op.
        arity = len(inputs)
        # Recording is decided once per call; the tuple doubles as ``needs_input_grad``.
        if _grad_mode.enabled:
            if arity == 1:
                needs = (inputs[0].requires_grad,)
            elif arity == 2:
                needs = (inputs[0].requires_grad, inputs[1].requires_grad)
            elif arity == 3:
                needs = (inputs[0].requires_grad, inputs[1].requires_grad,
                         inputs[2].requires_grad)
            else:
                needs = tuple([x.requires_grad for x in inputs])
            self.needs_input_grad = needs
            record = True in needs
        else:
            self.needs_input_grad = (False,) * arity
            record = False
        try:
            if arity == 1:
                results = self.forward(inputs[0].data)
            elif arity == 2:
                results = self.forward(inputs[0].data, inputs[1].data)
            elif arity == 3:
                results = self.forward(inputs[0].data, inputs[1].data, inputs[2].data)
            else:
                results = self.forward(*[x.data for x in inputs])
        except (ValueError, TypeError, IndexError) as error:
            shapes = ", ".join(str(x.shape) for x in inputs)
            dtypes = ", ".join(str(x.dtype) for x in inputs)
            raise type(error)(
                f"{type(self).__name__}: {error} (got inputs of shapes {shapes}; dtypes {dtypes})"
            ) from error
        if type(results) is not tuple:  # one output: the common case, kept short
            y = Tensor.from_array(results)
            if AnomalyMode.enabled:
                self.created_at = creation_site()
                check_forward(self, (y,))
            if record:
                self.inputs = inputs
                self.outputs = [weakref.ref(y)]
                self.generation = generation = _deepest(inputs, arity)
                y.creator = self
                y.requires_grad = True
                y.generation = generation + 1
            return y
        outputs = tuple([Tensor.from_array(y) for y in results])
        if AnomalyMode.enabled:
            self.created_at = creation_site()
            check_forward(self, outputs)
        if record:
            self.inputs = inputs
            self.outputs = [weakref.ref(y) for y in outputs]
            self.generation = generation = _deepest(inputs, arity)
            for y in outputs:
                y.creator = self
                y.requires_grad = True
                y.generation = generation + 1
            self.output_specs = [(y.data.shape, y.data.dtype) for y in outputs]
        return outputs

    def forward(self, *xs: np.ndarray):
        raise NotImplementedError

    def backward(self, *gys: Tensor):
        raise NotImplementedError

    def release(self) -> None:
        """Free what forward saved (called after backward unless the graph is retained)."""
        self.__dict__.clear()
        self.released = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} generation={self.generation}>"

