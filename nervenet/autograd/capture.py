"""Captured steps: record the Functions of one eager step, replay them on later batches.

The eager engine builds a graph of Tensors and Functions on every call and walks it backward.
A step whose structure does not change from batch to batch (the same layers, shapes and
dtypes) can skip that bookkeeping: ``Tape`` records, while an eager step runs, every Function
call (its type, what its constructor set, its input and output Tensors); ``Program`` turns two
such recordings into a flat list of array calls:

* forward: ``function.forward(*arrays)`` for each recorded call, in the recorded order, on the
  same Function objects, whose input and output Tensors are kept and have their ``.data``
  replaced by each batch's arrays (so a ``backward_array`` that reads ``self.inputs`` sees the
  batch's values);
* backward: ``function.backward_array(*grads)`` in the order ``engine.backward`` visits the
  Functions (a max-heap on generation), gradients added over fan-out and summed back over
  broadcast axes exactly as the engine does.

Because the replay calls the same array code on the same arrays in the same order, it gives
the eager step's results to the last bit; random draws (dropout) come from the same generator
in the same order, since they are drawn inside ``forward``.

Two recordings (on two different batches) are compared before a program is made, to sort each
input of each call into one of four kinds: the output of an earlier call, a parameter (read
live from the Tensor), an array of the batch (``feeds``: the same array, a view of it, or a
cast of it), or a constant (the same array, or equal values, in both recordings). An input that
is none of these (an array computed outside the recorded calls, which changes from batch to
batch) makes the step uncapturable: ``CaptureError`` says which call and why.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import weakref

import numpy as np

from nervenet.autograd import function as function_module
from nervenet.autograd.ops.shape import SumTo
from nervenet.autograd.rewrite import rewrite
from nervenet.autograd.tensor import Tensor
from nervenet.backend import get_array_module

#: what a released result holds until the next replay
_RELEASED = np.empty(0)


class CaptureError(Exception):
    """The step cannot be captured; the message says why."""


class Tape:
    """Records the Function calls made in this thread inside ``with tape:``.

    Only calls made in the recording mode the tape started in are kept: while training (graph
    recorded) the engine's own backward arithmetic, which runs without recording, is left out.
    """

    def __init__(self):
        # (function, constructor state, inputs, outputs, needs_input_grad, generation, state
        # after the call)
        self.records: list[tuple] = []
        #: the ``update_state`` closures of the step (BatchNormalization's moving statistics)
        self.state_updates: list = []
        self.mode = True

    def __enter__(self) -> Tape:
        self.mode = function_module.is_grad_enabled()
        self._outer = function_module._grad_mode.tape
        function_module._grad_mode.tape = self
        return self

    def __exit__(self, *exc_info) -> None:
        function_module._grad_mode.tape = self._outer

    def record(self, function, state: dict, inputs: tuple, outputs: tuple) -> None:
        if function_module.is_grad_enabled() == self.mode:
            self.records.append((function, state, inputs, outputs,
                                 function.needs_input_grad, function.generation,
                                 dict(function.__dict__)))

    def record_state_update(self, apply) -> None:
        """Keep a state update the step made (``layers.base.update_state``)."""
        if function_module.is_grad_enabled() == self.mode:
            self.state_updates.append(apply)

    def tensor_with(self, array: np.ndarray) -> Tensor:
        """The recorded output Tensor whose array is ``array`` (the same object)."""
        for outputs in reversed([record[3] for record in self.records]):
            for tensor in outputs:
                if tensor.data is array:
                    return tensor
        raise CaptureError("a result of the step was not computed by a recorded operation")


def _feed_source(array: np.ndarray, feeds: list[np.ndarray]):
    """``(index, how)`` when ``array`` is feed ``index`` itself (``how`` None), a view of it
    with its size (``"view"``), or equal to a cast of it (``"cast"``); else ``None``."""
    for index, feed in enumerate(feeds):
        if array is feed:
            return index, None
    for index, feed in enumerate(feeds):
        if array.size == feed.size and array.dtype == feed.dtype and _address(
                array) == _address(feed) and array.flags.c_contiguous and feed.flags.c_contiguous:
            return index, "view"
    for index, feed in enumerate(feeds):
        if array.size == feed.size and array.size > 1 and np.array_equal(
                array, feed.reshape(array.shape).astype(array.dtype)):
            return index, "cast"
    return None


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _same_constant(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same_constant, a, b))
    if isinstance(a, (int, float, str, bool, type(None), np.generic, np.dtype)) or (
            dataclasses.is_dataclass(a) and a.__dataclass_params__.frozen):  # values
        return bool(a == b)
    return False


class _Classifier:
    """Sorts the values a recorded call depends on, in both recordings at once."""

    def __init__(self, tapes, feeds, parameters):
        self.feeds = feeds  # per recording: the batch's arrays
        self.parameters = {id(p): index for index, p in enumerate(parameters)}
        self.parameter_arrays = {id(p.data): p for p in parameters}
        self.parameter_views = {(_address(p.data), p.data.nbytes, p.data.dtype.str): p
                                for p in parameters if p.data.flags.c_contiguous}
        self.produced = [{id(t): (i, k) for i, record in enumerate(tape.records)
                          for k, t in enumerate(record[3])} for tape in tapes]
        # a Tensor made around an output's array (``detach()``) reads that output
        self.arrays = [{id(t.data): (i, k) for i, record in enumerate(tape.records)
                        for k, t in enumerate(record[3])} for tape in tapes]

    def tensor(self, tensors: tuple[Tensor, Tensor], where: str):
        """``("op", i, k)``, ``("parameter", p)``, ``("feed", f, how)`` or ``("constant",)``."""
        kinds = []
        for run, tensor in enumerate(tensors):
            produced = self.produced[run].get(id(tensor))
            if produced is not None:
                kinds.append(("op",) + produced)
            elif id(tensor) in self.parameters:
                kinds.append(("parameter", self.parameters[id(tensor)]))
            elif id(tensor.data) in self.arrays[run] and not tensor.requires_grad:
                kinds.append(("alias",) + self.arrays[run][id(tensor.data)])
            elif tensor.requires_grad:
                raise CaptureError(f"{where} is a Tensor that requires gradients but is not a "
                                   "weight of the model")
            else:
                kinds.append(self.array(tuple(t.data for t in tensors), where))
                break
        if len(set(kinds)) != 1:
            raise CaptureError(f"{where} comes from different places in two batches")
        return kinds[0]

    def array(self, arrays: tuple, where: str):
        owners = [self._weight_viewed(a) for a in arrays]
        if owners[1] is not None and owners[0] is owners[1]:
            return ("parameter data", owners[1])  # a weight's array (BN's moving statistics)
        sources = [_feed_source(a, feeds) if isinstance(a, np.ndarray) else None
                   for a, feeds in zip(arrays, self.feeds)]
        if sources[0] is not None and sources[0] == sources[1]:
            return ("feed",) + sources[0]
        if arrays[0] is arrays[1] or (_same_constant(*arrays) and not (
                isinstance(arrays[1], np.ndarray) and arrays[1].ndim)):
            return ("constant",)  # one object, or a number (a literal of the code)
        if _same_constant(*arrays):
            raise CaptureError(f"{where} is an array made outside the recorded operations "
                               "(from a weight?) that a replay could not recompute")
        raise CaptureError(f"{where} is computed outside the recorded operations and changes "
                           "from batch to batch")

    def _weight_viewed(self, array):
        """The weight whose array ``array`` is, or views whole (a reshape), else ``None``."""
        if not isinstance(array, np.ndarray):
            return None
        owner = self.parameter_arrays.get(id(array))
        if owner is None and array.base is not None and array.flags.c_contiguous:
            owner = self.parameter_views.get((_address(array), array.nbytes, array.dtype.str))
        return owner


def _check_same_calls(first: Tape, second: Tape) -> None:
    if len(first.records) != len(second.records):
        raise CaptureError(f"two batches ran {len(first.records)} and {len(second.records)} "
                           "operations (Python control flow that depends on the data?)")
    for a, b in zip(first.records, second.records):
        if type(a[0]) is not type(b[0]) or len(a[2]) != len(b[2]) or a[4] != b[4]:
            raise CaptureError(f"two batches ran different operations ({type(a[0]).__name__} "
                               f"and {type(b[0]).__name__})")


class Program:
    """The replayable form of a recorded step.

    Args:
        tapes: two recordings of the same step on two batches.
        feeds: for each recording, the batch's arrays (inputs, targets, weights) in one list.
        parameters: the Tensors read live at every replay (the model's weights).
        wanted: the parameters whose gradients ``backward`` returns (empty: forward only).
        loss: the loss Tensor of the second recording (``None``: forward only).
        keep: the Tensors of the second recording that the step hands out (its outputs and
            losses): ``autograd.rewrite`` leaves them as they are.

    After ``forward(feeds)``, the second recording's Tensors hold this batch's values: read
    them as ``tensor.data``.
    """

    def __init__(self, tapes: list[Tape], feeds: list[list[np.ndarray]], parameters,
                 wanted=(), loss: Tensor | None = None, keep=()):
        first, second = tapes
        _check_same_calls(first, second)
        classify = _Classifier(tapes, feeds, parameters)
        self.feed_tensors: list[tuple] = []  # (tensor, feed index, how)
        self.feed_states: list[tuple] = []   # (function, attribute, feed index, how)
        self.weight_states: list[tuple] = []  # (function, attribute, weight Tensor, shape)
        self.calls: list[tuple] = []          # (function, inputs, outputs, several, aliases)
        seen = set()
        for position, (a, b) in enumerate(zip(first.records, second.records)):
            function, state, inputs, outputs, needs, generation, _ = b
            name = f"{type(function).__name__} (operation {position})"
            aliases = []
            for slot, pair in enumerate(zip(a[2], inputs)):
                kind = classify.tensor(pair, f"input {slot} of {name}")
                if kind[0] == "alias":
                    aliases.append((pair[1], second.records[kind[1]][3][kind[2]]))
                if kind[0] in ("feed", "parameter data") and id(pair[1]) not in seen:
                    seen.add(id(pair[1]))
                    if kind[0] == "feed":
                        self.feed_tensors.append((pair[1], kind[1], kind[2]))
                    else:
                        self.weight_states.append((pair[1], "data", kind[1],
                                                   pair[1].data.shape))
            if set(a[1]) != set(state):
                raise CaptureError(f"{name} was constructed differently in two batches")
            for key, value in state.items():
                kind = classify.array((a[1][key], value), f"{name}.{key}")
                if kind[0] == "feed":
                    self.feed_states.append((function, key, kind[1], kind[2]))
                elif kind[0] == "parameter data":
                    self.weight_states.append((function, key, kind[1], value.shape))
            _rearm(function, state, inputs, outputs, needs, generation)
            self.calls.append((function, inputs, outputs, len(outputs) > 1, tuple(aliases)))
        self.calls = rewrite(self.calls, keep)
        # (function, its attributes before a forward), taken once the rewrites are made
        self.armed = [(call[0], dict(call[0].__dict__)) for call in self.calls]
        self.updates = _state_updates(first, second)
        self.loss = loss
        self.wanted = list(wanted)
        self.plan = _backward_plan(self.calls, loss, self.wanted) if loss is not None else None

    def forward(self, feeds: list[np.ndarray]) -> None:
        """Run every recorded call's ``forward`` on this batch."""
        for tensor, index, how in self.feed_tensors:
            tensor.data = _derive(feeds[index], tensor.data, how)
        for function, key, index, how in self.feed_states:
            setattr(function, key, _derive(feeds[index], getattr(function, key), how))
        for function, key, weight, shape in self.weight_states:  # set_weights: new arrays
            setattr(function, key, weight.data.reshape(shape))
        for function, inputs, outputs, several, aliases in self.calls:
            for alias, source in aliases:
                alias.data = source.data
            try:
                results = function.forward(*[t.data for t in inputs])
            except (ValueError, TypeError, IndexError) as error:  # named as an eager call does
                raise function_module._with_shapes(function, error, inputs) from error
            if several:
                for tensor, result in zip(outputs, results):
                    tensor.data = result
            else:
                outputs[0].data = results

    def release(self, keep=()) -> None:
        """Drop what the last replay computed (the saved arrays of each Function, every
        result but those in ``keep``), as the engine releases a graph: a captured step
        holds no batch's arrays between its calls."""
        kept = {id(t) for t in keep}
        for function, armed in self.armed:
            function.__dict__.clear()
            function.__dict__.update(armed)
        for call in self.calls:
            for tensor in call[2]:
                if id(tensor) not in kept:
                    tensor.data = _RELEASED

    def state_updates(self) -> list:
        """The step's state updates (closures to give ``update_state``), each reading the
        arrays of this batch's forward."""
        for _, bindings in self.updates:
            for cell, function, key in bindings:
                cell.cell_contents = getattr(function, key)
        return [apply for apply, _ in self.updates]

    def backward(self) -> list[np.ndarray | None]:
        """The gradients of the loss with respect to ``wanted`` (``None`` for an unused one),
        computed as ``engine.backward`` computes them."""
        slots, loss_slot, steps, results = self.plan
        grads: list = [None] * slots
        grads[loss_slot] = get_array_module(self.loss.data).ones_like(self.loss.data)
        for function, gy_slots, dropped, specs, targets in steps:
            gys = [None if s is None else grads[s] for s in gy_slots]
            for s in dropped:
                grads[s] = None
            if specs is None:  # one output
                if gys[0] is None:
                    continue
            elif all(g is None for g in gys):
                continue
            else:
                xp = get_array_module(*[t.data for t in function.inputs])
                gys = [xp.zeros(shape, dtype) if g is None else g
                       for g, (shape, dtype) in zip(gys, specs)]
            result = _input_grads(function, gys)
            for position, slot, shape, sum_to in targets:
                g = result[position]
                if g is None:
                    continue
                if g.shape != shape:  # broadcasting undone, as the engine does
                    g = sum_to.forward(g)
                previous = grads[slot]
                grads[slot] = g if previous is None else previous + g
        return [None if s is None else grads[s] for s in results]


def current_tape() -> Tape | None:
    """The tape recording this thread's step, if one is and in the mode it records."""
    tape = function_module._grad_mode.tape
    return tape if tape is not None and function_module.is_grad_enabled() == tape.mode \
        else None


def _state_updates(first: Tape, second: Tape) -> list[tuple]:
    """``(closure, [(cell, function, attribute)])`` for each state update of the step: an
    array the closure holds that a recorded call left on its Function (BatchNormalization's
    batch statistics) is re-read from that Function at each replay; anything else it holds
    must be the same in both recordings."""
    if len(first.state_updates) != len(second.state_updates):
        raise CaptureError("two batches made different numbers of state updates")
    left = {id(value): (i, key) for i, record in enumerate(second.records)
            for key, value in record[6].items() if isinstance(value, np.ndarray)}
    right = {id(value): (i, key) for i, record in enumerate(first.records)
             for key, value in record[6].items() if isinstance(value, np.ndarray)}
    updates = []
    for a, b in zip(first.state_updates, second.state_updates):
        name = getattr(b, "__qualname__", type(b).__name__)
        if getattr(a, "__code__", None) is not getattr(b, "__code__", 0):
            raise CaptureError(f"two batches made different state updates ({name})")
        bindings = []
        for cell_a, cell_b in zip(a.__closure__ or (), b.__closure__ or ()):
            value = cell_b.cell_contents
            source = left.get(id(value))
            if source is not None and right.get(id(cell_a.cell_contents)) == source:
                bindings.append((cell_b, second.records[source[0]][0], source[1]))
            elif not (value is cell_a.cell_contents or _same_constant(value,
                                                                     cell_a.cell_contents)):
                raise CaptureError(f"the state update {name} uses a value computed outside "
                                   "the recorded operations")
        updates.append((b, bindings))
    return updates


def _derive(feed: np.ndarray, previous: np.ndarray, how):
    if how is None:
        return feed
    if how == "view":
        return feed.reshape(previous.shape)
    return feed.reshape(previous.shape).astype(previous.dtype)


def _rearm(function, state, inputs, outputs, needs, generation) -> None:
    """Put back what the call gave the Function (the engine released it after backward)."""
    function.__dict__.clear()
    function.__dict__.update(state)
    function.needs_input_grad = needs
    function.generation = generation
    if True in needs:
        function.inputs = inputs
        function.outputs = [weakref.ref(t) for t in outputs]  # kept alive by the Program
        if len(outputs) > 1:
            function.output_specs = [(t.data.shape, t.data.dtype) for t in outputs]


def _input_grads(function, gys: list) -> tuple:
    """The gradients of ``function``'s inputs (arrays or ``None``), one per input."""
    if function.backward_array is not None:
        result = function.backward_array(*gys)
        return result if type(result) is tuple else (result,)
    with function_module.no_grad():  # no array form: the Tensor backward, as the engine does
        result = function.backward(*map(Tensor.from_array, gys))
    result = result if type(result) is tuple else (result,)
    return tuple(None if g is None else g.data for g in result)


def _backward_plan(calls, loss: Tensor, wanted: list[Tensor]):
    """Visit the recorded calls as ``engine.backward`` would (deepest generation first, ties
    in the order scheduled) and write down, for each, where its upstream gradients are and
    where its input gradients go."""
    wanted_ids = {id(w) for w in wanted}
    slot_of: dict[int, int] = {}
    heap: list = []
    order = itertools.count()
    scheduled: set[int] = set()

    def add(x: Tensor) -> int | None:
        creator = x.creator
        if creator is None and id(x) not in wanted_ids:
            return None
        slot = slot_of.setdefault(id(x), len(slot_of))
        if creator is not None and id(creator) not in scheduled:
            scheduled.add(id(creator))
            heapq.heappush(heap, (-creator.generation, next(order), creator))
        return slot

    loss_slot = add(loss)
    outputs_of = {id(call[0]): call[2] for call in calls}
    steps = []
    while heap:
        function = heapq.heappop(heap)[2]
        outputs = outputs_of.get(id(function))
        if outputs is None:
            raise CaptureError(f"{type(function).__name__} is in the loss's graph but was not "
                               "recorded in this step")
        gy_slots = [slot_of.get(id(y)) for y in outputs]
        if all(s is None for s in gy_slots):
            continue
        # a gradient read here is dropped from its slot, unless it is a wanted one
        dropped = [slot_of[id(y)] for y in outputs
                   if id(y) in slot_of and id(y) not in wanted_ids]
        targets = []
        for position, x in enumerate(function.inputs):
            if x.requires_grad:
                slot = add(x)
                if slot is not None:  # (shapes are the recorded ones at every replay)
                    targets.append((position, slot, x.data.shape, SumTo(x.data.shape)))
        specs = function.output_specs if len(outputs) > 1 else None
        steps.append((function, gy_slots, dropped, specs, targets))
    results = [slot_of.get(id(w)) for w in wanted]
    return len(slot_of), loss_slot, steps, results
