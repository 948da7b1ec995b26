"""Function: one differentiable operation, and the switch that records the graph.

Every op is a subclass with two methods and nothing else:

* ``forward(*arrays) -> array or tuple of arrays`` computes the result on raw ndarrays and
  stores on ``self`` whatever ``backward`` will need (and nothing more);
* ``backward(*grad_outputs) -> grad or tuple of grads`` receives one upstream gradient Tensor
  per output and returns one gradient per input (``None`` where an input needs none).
  It is written with differentiable Tensor operations, so that running it while the graph is
  being recorded (``create_graph=True``) gives exact higher derivatives.

An op on the hot path of training may also define ``backward_array(*grad_outputs)``: the same
formula on bare ndarrays (arrays in, arrays or ``None`` out), which skips the bookkeeping of one
Tensor op per arithmetic operation. The engine uses it for first-order passes and ``backward``
when the gradient itself is recorded; that choice is made in one place
(``engine._input_grads``), never inside an op. The op tests check that both agree.

Calling a Function on Tensors runs ``forward``, wraps the outputs in Tensors and, when
gradients are being recorded and some input requires them, links the outputs to the Function
(``creator``) and the Function to its inputs: that is the computational graph. While a step is
being captured (``autograd.capture``), each call is also handed to the thread's ``Tape``.
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
    #: a ``capture.Tape`` recording this thread's calls while a step is being captured
    tape = None


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


def _as_tensors(inputs: tuple) -> tuple[Tensor, ...]:
    """The inputs, some of which are not Tensors, as Tensors; numbers take the dtype of a
    tensor operand (float32 stays float32)."""
    like = next((t for t in inputs if isinstance(t, Tensor)), None)
    return tuple([as_tensor(value, like) for value in inputs])


def _with_shapes(function: Function, error: Exception, inputs: tuple[Tensor, ...]) -> Exception:
    """The error of a failed forward, with the op's name and its inputs' shapes and dtypes."""
    shapes = ", ".join(str(x.shape) for x in inputs)
    dtypes = ", ".join(str(x.dtype) for x in inputs)
    return type(error)(
        f"{type(function).__name__}: {error} (got inputs of shapes {shapes}; dtypes {dtypes})")


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
    #: optional ``backward_array(*grad_outputs: ndarray)``: ``backward``'s formula on arrays,
    #: used by first-order passes (see the module docstring)
    backward_array = None

    def __call__(self, *inputs):
        """Run ``forward`` on the inputs' arrays; while gradients are being recorded and some
        input requires one, link the outputs into the graph."""
        arrays, needs, generation = [], [], 0
        for x in inputs:  # NOTE: a plain loop: map() or a comprehension costs a call each
            if not isinstance(x, Tensor):  # a number or an array: all made Tensors, again
                return self(*_as_tensors(inputs))
            arrays.append(x.data)
            needs.append(x.requires_grad)
            if x.generation > generation:
                generation = x.generation
        tape = _grad_mode.tape
        state = None if tape is None else dict(self.__dict__)  # what the constructor set
        self.needs_input_grad = needs = tuple(needs) if _grad_mode.enabled else (
            False,) * len(inputs)
        try:
            results = self.forward(*arrays)
        except (ValueError, TypeError, IndexError) as error:
            raise _with_shapes(self, error, inputs) from error
        several = type(results) is tuple
        outputs = tuple(map(Tensor.from_array, results)) if several \
            else (Tensor.from_array(results),)
        if AnomalyMode.enabled:
            self.created_at = creation_site()
            check_forward(self, outputs)
        if True in needs:
            self.inputs, self.generation = inputs, generation
            for y in outputs:
                y.creator, y.requires_grad, y.generation = self, True, generation + 1
            self.outputs = [weakref.ref(y) for y in outputs] if several else [weakref.ref(y)]
            if several:
                self.output_specs = [(y.data.shape, y.data.dtype) for y in outputs]
        if tape is not None:
            tape.record(self, state, inputs, outputs)
        return outputs if several else outputs[0]

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

