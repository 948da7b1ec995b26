"""Rewrites of a captured step (``autograd.capture.Program``) that give the same arrays with
less memory traffic. A replay knows what no eager call can: which later calls read each
result. Two rewrites use that, each only where it provably changes no bit of any result the
step hands out (its outputs, its loss, its gradients):

* **Max pooling before ReLU.** ``maxpool(relu(x)) == relu(maxpool(x))``: both are maxima,
  which round nothing, and ReLU is monotone. Pooling first makes ReLU (forward and backward)
  run on the pooled array, a quarter of the size for 2x2 windows. The gradients are equal too,
  when the windows do not overlap (each cell's gradient comes from one window): where a
  window's maximum is positive both orders pick the same cell (ReLU leaves positive values as
  they are and the first maximum wins ties in both) and pass ``gy`` through unchanged; where
  it is not positive, both give the window zeros, of ``gy``'s sign, as the eager mask does.
  (Overlapping windows sum several gradients into one cell, and the sign of a zero could then
  differ: those are left alone.)
* **ReLU in place.** ReLU overwrites its input when that input is a result no other call
  reads and its producer's backward never reads it (``OVERWRITABLE``): the dense layer's or
  convolution's pre-activation, a pooled map. The values are those of a new array.

A result the step hands out (``keep``) is never rewritten.
"""

from __future__ import annotations

import weakref
from collections import Counter

import numpy as np

from nervenet.autograd.ops.activation import ReLU
from nervenet.autograd.ops.conv import Conv2d
from nervenet.autograd.ops.matmul import Linear
from nervenet.autograd.ops.pool import MaxPool2d

#: ops whose backward reads their inputs and what forward stored, never their own output:
#: another op may overwrite that output once they have computed it
OVERWRITABLE = (Linear, Conv2d, MaxPool2d)


def rewrite(calls: list[tuple], keep=()) -> list[tuple]:
    """The recorded ``calls`` (``(function, inputs, outputs, several, aliases)``, in order),
    rewritten; the Functions and Tensors are rewired in place (inputs, outputs, creators)."""
    kept = {id(t) for t in keep}
    calls = _pool_before_relu(calls, kept)
    _relu_in_place(calls, kept)
    return calls


def _readers(calls: list[tuple]) -> Counter:
    """How many times each Tensor (by id) is read: as a call's input, or through an alias."""
    readers = Counter(id(t) for call in calls for t in call[1])
    readers.update(id(source) for call in calls for _, source in call[4])
    return readers


def _only_reader(tensor, readers: Counter, kept: set) -> bool:
    return readers[id(tensor)] == 1 and id(tensor) not in kept


def _pool_before_relu(calls: list[tuple], kept: set) -> list[tuple]:
    """Swap each ``y = maxpool(relu(x))`` into ``y = relu(maxpool(x))`` where the ReLU's
    result is read by the pooling alone."""
    readers = _readers(calls)
    calls = list(calls)
    for position in range(len(calls) - 1):
        relu, pool = calls[position], calls[position + 1]
        if not (type(relu[0]) is ReLU and type(pool[0]) is MaxPool2d
                and pool[1][0] is relu[2][0] and _only_reader(relu[2][0], readers, kept)
                and pool[0].geometry.disjoint):
            continue
        x, middle, y = relu[1][0], relu[2][0], pool[2][0]
        # the Tensor between them now holds the pooled map (shaped so, for the backward plan)
        middle.data = np.empty_like(y.data)
        first, second = relu[0].generation, pool[0].generation
        _rewire(pool[0], x, middle, first)
        _rewire(relu[0], middle, y, second)
        calls[position] = (pool[0], (x,), (middle,), False, pool[4])
        calls[position + 1] = (relu[0], (middle,), (y,), False, relu[4])
    return calls


def _rewire(function, x, y, generation: int) -> None:
    """Make ``function`` the op ``y = function(x)`` at ``generation`` of the graph."""
    function.generation = generation
    y.generation = generation + 1
    if getattr(function, "inputs", None) is not None:  # linked: gradients flow through it
        function.inputs = (x,)
        function.outputs = [weakref.ref(y)]
        y.creator = function


def _relu_in_place(calls: list[tuple], kept: set) -> None:
    """Let each ReLU overwrite an input that only it reads, made by an ``OVERWRITABLE`` op."""
    readers = _readers(calls)
    producer = {id(t): call[0] for call in calls for t in call[2]}
    for function, inputs, _, _, _ in calls:
        if type(function) is ReLU and _only_reader(inputs[0], readers, kept) and isinstance(
                producer.get(id(inputs[0])), OVERWRITABLE):
            function.in_place = True
