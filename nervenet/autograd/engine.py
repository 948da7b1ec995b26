"""Reverse-mode traversal of the graph: the chain rule, node by node.

Starting from the outputs, every Function is visited once, after all the Functions that use
its outputs (a max-heap on ``generation`` guarantees it, and iterating instead of recursing
means deep graphs cannot overflow the stack). For each Function we gather the upstream
gradients of its outputs, call its ``backward`` to get one gradient per input, and add them
(``+=`` over fan-out, as in micrograd) to what those inputs have already received.

Broadcasting is undone here, in one place: when an op broadcast an input of shape ``s`` to a
larger shape, the gradient it returns has the larger shape, and ``sum_to(s)`` sums it back.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from nervenet.autograd.anomaly import AnomalyMode, check_backward
from nervenet.autograd.function import set_grad_enabled
from nervenet.autograd.tensor import Tensor, as_tensor
from nervenet.backend import get_array_module


def _initial_grad(output: Tensor, grad) -> Tensor:
    """The gradient the pass starts from at ``output``: ``grad``, or 1 for one element."""
    if not output.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require gradients and has no graph; create the "
            "leaves with requires_grad=True and compute outside nervenet.no_grad()"
        )
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward: the output has shape {output.shape}, so its gradient is ambiguous; "
                "pass grad= with that shape, or reduce the output to one value first "
                "(for example loss.sum() or loss.mean())"
            )
        return Tensor.from_array(get_array_module(output.data).ones_like(output.data))
    grad = as_tensor(grad, output)
    if grad.shape != output.shape:
        raise ValueError(
            f"backward: grad must have the output's shape {output.shape}, got {grad.shape}"
        )
    return grad


class _Pass:
    """The state of one backward pass: the gradients received so far and the Functions still
    to visit.

    A leaf's gradient goes straight to its ``.grad``; a computed tensor's waits in ``received``
    until its creator reads it. With ``wanted`` (``grad(outputs, inputs)``) nothing is written
    to ``.grad``: the wanted tensors' gradients stay in ``received`` to be returned.
    """

    def __init__(self, wanted):
        self.wanted = None if wanted is None else set(wanted)
        # Tensors hash by identity; holding the key keeps the tensor alive until it is read.
        self.received: dict[Tensor, Tensor] = {}
        self.stored: set[int] = set()  # the arrays handed to a .grad during this pass
        self.heap: list = []  # (-generation, order, Function): the deepest comes out first
        self.scheduled: set = set()
        self.order = itertools.count()  # breaks ties: Functions are never compared

    def add(self, x: Tensor, gx: Tensor) -> None:
        """Add ``gx`` to the gradient of ``x`` (``+=`` over fan-out) and schedule ``x``'s
        creator, which will pass the gradient on."""
        creator = x.creator
        if creator is None:
            if self.wanted is None:
                self.store(x, gx.data)
                return
            if x not in self.wanted:
                return
        previous = self.received.get(x)
        self.received[x] = gx if previous is None else previous + gx
        if creator is not None and creator not in self.scheduled:
            self.scheduled.add(creator)
            heapq.heappush(self.heap, (-creator.generation, next(self.order), creator))

    def take(self, y: Tensor | None) -> Tensor | None:
        """The gradient output ``y`` received (``None`` if none, or if nobody kept ``y``)."""
        if y is None:
            return None
        if self.wanted is not None:
            return self.received.get(y) if y in self.wanted else self.received.pop(y, None)
        gy = self.received.pop(y, None)
        if gy is not None and y.retains_grad:
            self.store(y, gy.data)
        return gy

    def store(self, x: Tensor, g) -> None:
        """Accumulate into ``x.grad``. A stored gradient is never a read-only view (a
        broadcast) nor shared with another tensor's ``.grad``, so updating ``.grad`` in place
        is safe, as in PyTorch."""
        if x.grad is not None:
            x.grad = x.grad + g
        elif id(g) in self.stored or not _own(g):
            x.grad = g.copy()
        else:
            x.grad = g
        self.stored.add(id(x.grad))


def _own(g) -> bool:
    """May ``g`` become a ``.grad`` that is updated in place? NumPy marks broadcast views
    read-only; CuPy has no such flag, so on a device only an array owning its memory may."""
    return g.flags.writeable if type(g) is np.ndarray else g.flags.owndata


def backward(outputs, grad_outputs, create_graph=False, retain_graph=None, inputs=None):
    """Backpropagate from ``outputs``: visit every Function after all the Functions that use
    its outputs (a max-heap on ``generation``), apply the chain rule there, and add each input's
    gradient to what it has received (``+=`` over fan-out).

    With ``inputs=None`` the gradients are accumulated into ``.grad`` of the leaves that require
    them (and of tensors that called ``retain_grad``); with a list of ``inputs`` nothing is
    written to ``.grad`` and the gradient of each input (``None`` where the outputs do not
    depend on it) is returned.
    """
    retain_graph = create_graph if retain_graph is None else retain_graph
    work = _Pass(inputs)
    for output, grad in zip(outputs, grad_outputs):
        work.add(output, _initial_grad(output, grad))
    with set_grad_enabled(create_graph):
        while work.heap:
            function = heapq.heappop(work.heap)[2]
            if function.released or (create_graph and not function.differentiable_backward):
                _refuse(function)
            ys, gys, received = [], [], False  # ys: alive until backward returns (exp uses y)
            for ref in function.outputs:  # NOTE: plain loops: map() costs a call each
                ys.append(ref())
                gys.append(work.take(ys[-1]))
                received = received or gys[-1] is not None
            if not received:
                continue
            for x, gx in zip(function.inputs, _input_grads(function, gys, create_graph)):
                if gx is not None and x.requires_grad:
                    work.add(x, gx if gx.data.shape == x.data.shape else gx.sum_to(x.shape))
            if not retain_graph:
                function.release()
    return None if inputs is None else tuple(work.received.get(x) for x in inputs)


def _input_grads(function, gys: list, create_graph: bool) -> tuple:
    """Apply ``function``'s chain rule: one gradient (or ``None``) per input.

    The one place that chooses the backward: ``backward`` on Tensors when the gradient is
    itself recorded (``create_graph=True``) or when the op has no array form, else the op's
    ``backward_array`` on bare arrays. An output that received nothing (or that nobody kept)
    has a zero gradient.
    """
    if len(gys) > 1:
        xp = get_array_module(*[x.data for x in function.inputs])
        gys = [g if g is not None else Tensor.from_array(xp.zeros(shape, dtype))
               for g, (shape, dtype) in zip(gys, function.output_specs)]
    if AnomalyMode.enabled:
        AnomalyMode.backward_of = function
    if create_graph or function.backward_array is None:
        result = function.backward(*gys)
        result = result if type(result) is tuple else (result,)
    else:
        arrays = function.backward_array(*[g.data for g in gys])
        result = []
        for g in arrays if type(arrays) is tuple else (arrays,):
            result.append(None if g is None else Tensor.from_array(g))
    if AnomalyMode.enabled:
        AnomalyMode.backward_of = None
        check_backward(function, result)
    return result


def _refuse(function) -> None:
    """Explain why backward cannot go through ``function``."""
    if function.released:
        raise RuntimeError(
            f"backward: trying to backward through {type(function).__name__} a second "
            "time, but its saved values were freed after the first backward; call "
            "backward(retain_graph=True) the first time if you need to do this"
        )
    raise RuntimeError(
        f"{type(function).__name__} has no second derivative: "
        "create_graph=True is not supported through it"
    )


def grad(outputs, inputs, grad_outputs=None, create_graph: bool = False,
         retain_graph: bool | None = None, allow_unused: bool = False):
    """Return the gradients of ``outputs`` with respect to ``inputs``, like torch.autograd.grad.

    Args:
        outputs: a Tensor or a sequence of Tensors.
        inputs: a Tensor or a sequence of Tensors that require gradients.
        grad_outputs: upstream gradients, one per output (default: ones for one-element outputs).
        create_graph: record the gradient computation so that it can be differentiated again,
            e.g. for Hessian-vector products (default ``False``).
        retain_graph: keep the graph for another pass (defaults to ``create_graph``).
        allow_unused: return ``None`` for an input the outputs do not depend on instead of
            raising (default ``False``).

    Returns:
        A tuple of Tensors, one per input. ``.grad`` attributes are not touched.

    Example:
        >>> import nervenet
        >>> x = nervenet.tensor(3.0, requires_grad=True)
        >>> (dy,) = nervenet.grad(x ** 3, x, create_graph=True)
        >>> (d2y,) = nervenet.grad(dy, x)
        >>> float(dy.data), float(d2y.data)
        (27.0, 18.0)
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"grad: expected one grad_output per output ({len(outputs)}), got {len(grad_outputs)}"
        )
    for position, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"grad: inputs[{position}] must be a Tensor that requires gradients")
    results = backward(outputs, grad_outputs, create_graph=create_graph,
                       retain_graph=retain_graph, inputs=inputs)
    for position, g in enumerate(results):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: inputs[{position}] was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return results
