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


def _initial_grad(output: Tensor, grad) -> Tensor:
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward: the output has shape {output.shape}, so its gradient is ambiguous; "
                "pass grad= with that shape, or reduce the output to one value first "
                "(for example loss.sum() or loss.mean())"
            )
        return Tensor.from_array(np.ones_like(output.data))
    grad = as_tensor(grad, output)
    if grad.shape != output.shape:
        raise ValueError(
            f"backward: grad must have the output's shape {output.shape}, got {grad.shape}"
        )
    return grad


def backward(outputs, grad_outputs, create_graph=False, retain_graph=None, inputs=None):
    """Backpropagate from ``outputs``.

    With ``inputs=None`` the gradients are accumulated into ``.grad`` of the leaves that
    require them (and of tensors that called ``retain_grad``). With a list of ``inputs``, nothing
    is written to ``.grad``; the gradient of each input (a Tensor, or ``None`` where the outputs
    do not depend on it) is returned instead.
    """
    if retain_graph is None:
        retain_graph = create_graph
    wanted = None if inputs is None else set(inputs)
    # The gradient each tensor has received so far, until its creator reads it. Tensors hash by
    # identity, and holding the key keeps the tensor alive until then.
    received: dict[Tensor, Tensor] = {}
    heap: list = []  # (-generation, order, function): the deepest function comes out first
    scheduled: set[int] = set()
    order = itertools.count()  # tie-breaker: never compare Functions; keeps runs reproducible

    def send(x: Tensor, gx: Tensor) -> None:
        """Add ``gx`` to the gradient of ``x`` (+= over fan-out) and schedule its creator."""
        previous = received.get(x)
        received[x] = gx if previous is None else previous + gx
        creator = x.creator
        if creator is not None and id(creator) not in scheduled:
            scheduled.add(id(creator))
            heapq.heappush(heap, (-creator.generation, next(order), creator))

    stored: set[int] = set()  # the arrays handed to a .grad during this pass

    def store(x: Tensor, g: np.ndarray) -> None:
        """Accumulate into ``x.grad``. A stored gradient is never a read-only view (a
        broadcast) nor shared with another tensor's ``.grad``, so updating ``.grad`` in place
        is safe, as in PyTorch."""
        if x.grad is not None:
            x.grad = x.grad + g
        elif not g.flags.writeable or id(g) in stored:
            x.grad = g.copy()
        else:
            x.grad = g
        stored.add(id(x.grad))

    def take(y: Tensor | None) -> Tensor | None:
        """The gradient output ``y`` received (``None`` if none, or if nobody kept ``y``)."""
        if y is None:
            return None
        if wanted is not None:
            return received.get(y) if y in wanted else received.pop(y, None)
        gy = received.pop(y, None)
        if gy is not None and y.retains_grad:
            store(y, gy.data)
        return gy

    for output, grad in zip(outputs, grad_outputs):
        if not output.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require gradients and has no graph; create the "
                "leaves with requires_grad=True and compute outside nervenet.no_grad()"
            )
        initial = _initial_grad(output, grad)
        if output.creator is None and wanted is None:
            store(output, initial.data)
        send(output, initial)

    with set_grad_enabled(create_graph):
        while heap:
            function = heapq.heappop(heap)[2]
            if function.released or (create_graph and not function.differentiable_backward):
                _refuse(function)
            if AnomalyMode.enabled:
                AnomalyMode.backward_of = function
            # Each output stays referenced here until backward returns: some ops (exp, sqrt)
            # reuse their output in backward.
            if len(function.outputs) == 1:  # the common case (``take`` written out)
                y = function.outputs[0]()
                if wanted is None and y is not None and not y.retains_grad:
                    gy = received.pop(y, None)
                else:
                    gy = take(y)
                if gy is None:
                    continue
                input_grads = function.backward(gy)
            else:
                ys = [ref() for ref in function.outputs]
                gys = [take(y) for y in ys]
                if all(g is None for g in gys):
                    continue
                # An output that received nothing (or no longer exists) has a zero gradient.
                input_grads = function.backward(*[
                    g if g is not None else Tensor.from_array(np.zeros(shape, dtype))
                    for g, (shape, dtype) in zip(gys, function.output_specs)
                ])
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if AnomalyMode.enabled:
                AnomalyMode.backward_of = None
                check_backward(function, input_grads)
            for x, gx in zip(function.inputs, input_grads):
                if gx is None or not x.requires_grad:
                    continue
                if gx.data.shape != x.data.shape:
                    gx = gx.sum_to(x.data.shape)
                creator = x.creator
                if creator is None:
                    if wanted is None:
                        store(x, gx.data)
                    elif x in wanted:
                        send(x, gx)
                    continue
                # ``send`` written out: the hot path of every backward pass
                previous = received.get(x)
                received[x] = gx if previous is None else previous + gx
                if id(creator) not in scheduled:
                    scheduled.add(id(creator))
                    heapq.heappush(heap, (-creator.generation, next(order), creator))
            if not retain_graph:
                function.release()
    if inputs is None:
        return None
    return tuple(received.get(x) for x in inputs)


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
