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
    # id(tensor) -> (tensor, gradient received so far). Holding the tensor keeps its id unique
    # until its creator has read the gradient, even after the consumers released their inputs.
    pending: dict[int, tuple[Tensor, Tensor]] = {}
    heap: list = []
    seen: set[int] = set()
    counter = itertools.count()  # tie-breaker: never compare Functions

    def schedule(function):
        if id(function) not in seen:
            seen.add(id(function))
            heapq.heappush(heap, (-function.generation, next(counter), function))

    def accumulate(tensor: Tensor, grad: Tensor):
        previous = pending.get(id(tensor))
        pending[id(tensor)] = (tensor, grad if previous is None else previous[1] + grad)

    def take(tensor: Tensor | None) -> Tensor | None:
        if tensor is None:
            return None
        if wanted is not None and id(tensor) in wanted:
            entry = pending.get(id(tensor))
        else:
            entry = pending.pop(id(tensor), None)
        return None if entry is None else entry[1]

    wanted = None if inputs is None else {id(x) for x in inputs}
    for output, grad in zip(outputs, grad_outputs):
        if not output.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require gradients and has no graph; create the "
                "leaves with requires_grad=True and compute outside nervenet.no_grad()"
            )
        initial = _initial_grad(output, grad)
        if output.creator is None and wanted is None:
            output.grad = initial.data if output.grad is None else output.grad + initial.data
        accumulate(output, initial)
        if output.creator is not None:
            schedule(output.creator)

    with set_grad_enabled(create_graph):
        while heap:
            function = heapq.heappop(heap)[2]
            if function.released:
                raise RuntimeError(
                    f"backward: trying to backward through {type(function).__name__} a second "
                    "time, but its saved values were freed after the first backward; call "
                    "backward(retain_graph=True) the first time if you need to do this"
                )
            if create_graph and not function.differentiable_backward:
                raise RuntimeError(
                    f"{type(function).__name__} has no second derivative: "
                    "create_graph=True is not supported through it"
                )
            output_grads = []
            for ref in function.outputs:
                y = ref()
                g = take(y)
                if g is not None and y.retains_grad and wanted is None:
                    y.grad = g.data if y.grad is None else y.grad + g.data
                output_grads.append(g)
            if all(g is None for g in output_grads):
                continue
            if len(output_grads) > 1:
                output_grads = [
                    g if g is not None else Tensor.from_array(np.zeros_like(ref().data))
                    for g, ref in zip(output_grads, function.outputs)
                ]
            input_grads = function.backward(*output_grads)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for x, gx in zip(function.inputs, input_grads):
                if gx is None or not x.requires_grad:
                    continue
                if gx.shape != x.shape:
                    gx = gx.sum_to(x.shape)
                if x.creator is None:
                    if wanted is None:
                        x.grad = gx.data if x.grad is None else x.grad + gx.data
                    elif id(x) in wanted:
                        accumulate(x, gx)
                else:
                    accumulate(x, gx)
                    schedule(x.creator)
            if not retain_graph:
                function.release()
    if inputs is None:
        return None
    return tuple(entry[1] if (entry := pending.get(id(x))) else None for x in inputs)


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
