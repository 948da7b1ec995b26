"""The first-order optimizer base: everything an update rule shares.

One step of every first-order optimizer is the same pipeline; only the rule in the middle
differs, and it is written once per parameter in a subclass's ``update_step``:

1. check every gradient is finite (before anything is written, so a NaN step changes nothing);
2. clip (``clipvalue``, per-variable ``clipnorm`` or ``global_clipnorm``), as
   ``torch.nn.utils.clip_grad_value_`` / ``clip_grad_norm_`` would before ``step()``;
3. coupled weight decay ``g <- g + weight_decay * w`` (L2 regularisation; torch's default),
   except for decoupled optimizers (AdamW);
4. ``delta = update_step(g, w, lr)``: the subclass's rule updates this variable's slots in
   place and returns the amount to subtract;
5. write ``w <- w - delta`` in place (after ``w <- w * (1 - lr * weight_decay)`` for decoupled
   weight decay).

A step is all or nothing: refused, it leaves every weight, slot and ``iterations`` as they were.
From finite gradients, weights and state, an update can only become NaN or infinite through an
overflow, an invalid operation (0/0, sqrt of a negative) or a division by zero; steps 3-5 run
under ``numpy.errstate(over="raise", invalid="raise", divide="raise")``, so such an update
raises FloatingPointError where it happens. Since the rules write their slots in place, the
step first proves it cannot happen: ``bound_step``, the rule replayed on upper bounds of
magnitudes (the largest gradient, from the squared norm of step 1; a running bound of each
slot's largest magnitude; the rate), every rounding accounted for (``bounds.Rounding``); while
the steps stay within slot bounds that a step with twice the gradient and rate provably keeps,
a few comparisons (``_enclose``). A step it cannot certify (rates or magnitudes near the
largest float) copies the slots of its variables aside first, puts them back if a rule fails,
and computes its new weights apart before writing them: the same arithmetic, bit for bit.

Optimizer state (moments, accumulators, momentum buffers) is created lazily the first time a
variable is seen and is keyed by the variable's index: the order in which variables are first
given (or passed to ``build``). ``get_state()`` returns it as a flat ``{name: ndarray}`` dict
(``"iterations"``, ``"0/m"``, ``"0/v"``, ...) that JSON or safetensors can store;
``set_state()`` restores it.

TF-Keras 2 spellings are accepted by every first-order optimizer (``keras2_arguments``):
``lr=`` for ``learning_rate`` (with a DeprecationWarning) and ``decay=``, the inverse-time
decay of TF-Keras 2 applied to the step's rate, ``lr_t = lr / (1 + decay * iterations)``.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from nervenet.autograd.tensor import Tensor
from nervenet.backend import (
    as_device_array,
    device_of,
    get_array_module,
    host_copy,
    to_device,
)
from nervenet.checks import check_number
from nervenet.kernels import squared_norm
from nervenet.optimizers import schedules
from nervenet.optimizers.bounds import (
    Envelope,
    Rounding,
    copy_slots,
    largest_magnitudes,
    restore_slots,
)

#: variables of at least this many bytes write their update into a buffer kept across steps:
#: a new array that large is mapped afresh by the allocator (page faults), while smaller ones
#: come from recently freed memory, where a kept buffer only adds a copy (the measurements are
#: in bench/README.md, "optimizers.py").
DELTA_BUFFER_BYTES = 2 << 20

# torch.nn.utils.clip_grad_norm_ divides by (norm + 1e-6); we do the same so that clipped
# trajectories equal torch's.
CLIP_NORM_EPSILON = 1e-6


def check_finite_state(owner: str, key: str, value: np.ndarray) -> None:
    """Optimizer state must be finite: the step guard relies on it (from finite gradients,
    weights and state, only an overflow can make an update non-finite, and that raises)."""
    if value.dtype.kind == "f" and math.isnan(squared_norm(value)):  # no temporary array
        raise ValueError(f"{owner}.set_state: slot {key} contains NaN or Inf; it would make "
                         "every later update non-finite")


def _describe(var: Tensor, index: int) -> str:
    named = f" {var.name!r}" if var.name is not None else ""
    return f"variable {index}{named} (shape {var.shape})"


def keras2_arguments(init):
    """Let an optimizer's ``__init__`` take TF-Keras 2's ``lr=`` and ``decay=`` keywords.

    ``lr`` is renamed ``learning_rate`` (a DeprecationWarning says so; giving both is an
    error); ``decay`` (default 0.0: none) is checked and stored as ``self.decay`` once the
    optimizer is constructed. Applied to every first-order optimizer's ``__init__``.
    """

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        owner = type(self).__name__
        if "lr" in kwargs:
            if args or "learning_rate" in kwargs:
                raise TypeError(f"{owner}: got both lr and learning_rate; lr is the TF-Keras 2 "
                                "name of learning_rate, give only learning_rate")
            warnings.warn(f"{owner}: the argument lr is deprecated, use learning_rate",
                          DeprecationWarning, stacklevel=2)
            kwargs["learning_rate"] = kwargs.pop("lr")
        decay = kwargs.pop("decay", 0.0)
        init(self, *args, **kwargs)
        self.decay = check_number(owner, "decay", decay, 0.0)

    return wrapper


class Optimizer:
    """Base class of the first-order optimizers (SGD, Adagrad, RMSprop, Adam, ...).

    Args:
        learning_rate: a non-negative float, or a schedule (``nervenet.optimizers.schedules``,
            or any callable ``step -> float``) evaluated at ``iterations``.
        weight_decay: L2 coefficient (default ``None``: none). Added to the gradient
            (``g + weight_decay * w``, coupled, as torch) except in AdamW, which decays the
            weights directly (``w * (1 - lr * weight_decay)``).
        clipnorm: clip each gradient to this L2 norm (default ``None``).
        clipvalue: clip each gradient element into ``[-clipvalue, clipvalue]`` (default
            ``None``).
        global_clipnorm: clip all gradients together so that their joint L2 norm is at most
            this (default ``None``). At most one of the three clipping arguments may be set.
        name: a label (default: the class name in lower case).
        decay: TF-Keras 2's learning-rate decay, a keyword of every subclass (default 0.0:
            none): each step uses ``learning_rate / (1 + decay * iterations)``, after a
            schedule is evaluated, exactly as TF-Keras 2's ``OptimizerV2``. ``lr`` is
            accepted for ``learning_rate`` (deprecated).

    Attributes:
        iterations: the number of steps applied so far.
        variables: the state as a list of arrays: ``iterations`` first, then every slot
            (moments, accumulators) in variable-index order.

    Subclasses implement ``init_slots(var)`` (the per-variable state) and
    ``update_step(grad, var, lr)`` (the rule; returns the amount subtracted from ``var``).
    """

    #: whether a momentum-cycling schedule (OneCycle) may drive momentum / beta_1
    cycles_momentum = True
    #: decoupled weight decay (AdamW) instead of an L2 term in the gradient
    decoupled_weight_decay = False

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        owner = type(self).__name__
        self.learning_rate = learning_rate
        self.weight_decay = check_number(owner, "weight_decay", weight_decay, 0.0,
                                         allow_none=True)
        self.clipnorm = check_number(owner, "clipnorm", clipnorm, 0.0, low_open=True,
                                     allow_none=True)
        self.clipvalue = check_number(owner, "clipvalue", clipvalue, 0.0, low_open=True,
                                      allow_none=True)
        self.global_clipnorm = check_number(owner, "global_clipnorm", global_clipnorm, 0.0,
                                            low_open=True, allow_none=True)
        given = [n for n in ("clipnorm", "clipvalue", "global_clipnorm")
                 if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"{owner}: only one of clipnorm, clipvalue and global_clipnorm "
                             f"can be set, got {', '.join(given)}")
        self.name = type(self).__name__.lower() if name is None else str(name)
        self.decay = 0.0                          # set by keras2_arguments
        self.iterations = 0
        self._tracked: list[Tensor] = []          # index -> variable
        self._index_of: dict[int, int] = {}       # id(variable) -> index
        self._slots: list[dict[str, np.ndarray]] = []
        # index -> the array each step's delta is written into (None: a new one each step,
        # see DELTA_BUFFER_BYTES): not state, never saved; no extra peak memory, since the
        # deltas of all variables coexist until the write anyway.
        self._deltas: list[np.ndarray | None] = []
        # while a step runs on gradients of its own (apply_own_gradients): the ids of those a
        # rule may write its delta over (delta_buffer)
        self._consumable: set[int] = set()
        self._restored: dict[int, dict[str, np.ndarray]] = {}  # set_state before build
        # the overflow bound (see bound_step): max|slot| per slot name over every variable,
        # advanced with each certified step; None: unknown (the slots were handed out or
        # replaced), measured at the next step. Not state, never saved.
        self._slot_bounds: dict[str, float] | None = None
        self._rounding: Rounding | None = None  # for the variables' dtype (None: several)
        # slot bounds that steps within a gradient and rate keep (see _enclose); None: none,
        # False: none found since the slots were measured. Not state, never saved.
        self._envelope: Envelope | None | bool = None
        self._cycled_momentum: float | None = None

    # ------------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule is evaluated at ``iterations``)."""
        return self._learning_rate_at(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        owner = type(self).__name__
        current = getattr(self, "_learning_rate", None)
        if current is not None and callable(current):
            raise TypeError(f"{owner}: the learning rate is a schedule "
                            f"({type(current).__name__}), which cannot be replaced")
        if callable(value):
            if getattr(value, "cycle_momentum", False) and not self.cycles_momentum:
                raise ValueError(f"{owner} has no momentum for {type(value).__name__} to "
                                 "cycle; pass cycle_momentum=False to the schedule")
            self._learning_rate = value
        else:
            self._learning_rate = check_number(owner, "learning_rate", value, 0.0)

    def _step_learning_rate(self, step: int) -> float:
        """The rate a step uses: the learning rate (schedule evaluated at ``step``) divided by
        ``1 + decay * step`` (TF-Keras 2's ``decay``; ``step`` counts the steps before it)."""
        lr = self._learning_rate_at(step)
        return lr / (1.0 + self.decay * step) if self.decay else lr

    @property
    def learning_rate_schedule(self):
        """The schedule given as ``learning_rate``, or ``None`` for a constant rate."""
        return self._learning_rate if callable(self._learning_rate) else None

    def _learning_rate_at(self, step: int) -> float:
        if not callable(self._learning_rate):
            return self._learning_rate
        value = self._learning_rate(step)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: the learning-rate schedule "
                             f"{type(self._learning_rate).__name__} gave {value} at step {step}; "
                             "expected a finite non-negative number")
        return float(value)

    def _momentum_term(self, configured: float) -> float:
        """This step's momentum (SGD, RMSprop) or beta_1 (Adam family): the configured value,
        or the one a momentum-cycling schedule (OneCycle) prescribes, as torch's OneCycleLR."""
        return configured if self._cycled_momentum is None else self._cycled_momentum

    # ------------------------------------------------------------------ state
    def init_slots(self, var: Tensor) -> dict[str, np.ndarray]:
        """The per-variable state (e.g. ``{"m": zeros, "v": zeros}``) of a new variable."""
        raise NotImplementedError

    def update_step(self, grad: np.ndarray, var: Tensor, lr: float) -> np.ndarray:
        """The rule: update this variable's slots (in place, read through ``slots(var)``) and
        return ``delta`` (``w <- w - delta``)."""
        raise NotImplementedError

    def build(self, variables) -> None:
        """Give ``variables`` their indices (in this order) and create their state now."""
        for var in variables:
            self._track(var)

    @property
    def tracked_variables(self) -> list[Tensor]:
        """The variables with state, in index order (what ``get_state`` keys refer to)."""
        return list(self._tracked)

    def delta_buffer(self, var: Tensor, grad: np.ndarray | None = None) -> np.ndarray:
        """Where ``update_step`` may write the delta of ``var`` (uninitialised): the buffer
        kept for a variable of ``DELTA_BUFFER_BYTES`` or more, a new array for a smaller one.
        A rule that reads its gradient no more once it writes the delta passes ``grad``: in a
        step on gradients of its own (``apply_own_gradients``) that is the buffer."""
        if grad is not None and id(grad) in self._consumable:
            return grad
        index = self._index_of[id(var)]
        buffer = self._deltas[index]
        if buffer is None:
            buffer = get_array_module(var.data).empty_like(var.data)
            if buffer.nbytes >= DELTA_BUFFER_BYTES:  # kept from the first step on (not made
                self._deltas[index] = buffer         # when tracked: a load needs no buffer)
        return buffer

    def move_state(self, device: str) -> None:
        """Move the state of every tracked variable to ``device`` (``Model.to`` does, with the
        weights): each slot of its variable's shape; the step counters (0-d) stay on the
        host. The update buffers are made again there on the next step."""
        for var, slots in zip(self._tracked, self._slots):
            for key, value in slots.items():
                if value.shape == var.shape:
                    slots[key] = to_device(value, device)
        self._deltas = [None] * len(self._deltas)

    def slots(self, var: Tensor) -> dict[str, np.ndarray]:
        """The state of ``var`` (its arrays, not copies: they may be written into until the
        next step; the overflow bound then measures the slots again)."""
        self._slot_bounds = None
        return self._slots[self._index_of[id(var)]]

    def _track(self, var: Tensor) -> int:
        if not isinstance(var, Tensor):
            raise TypeError(f"{type(self).__name__}: variables must be nervenet Tensors, got "
                            f"{type(var).__name__}")
        index = self._index_of.get(id(var))
        if index is not None:
            return index
        if var.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: variables must be floating tensors, got "
                            f"dtype {var.dtype} for {_describe(var, len(self._tracked))}")
        index = len(self._tracked)
        slots = self.init_slots(var)
        if index in self._restored:
            slots = self._adopt(self._restored.pop(index), slots, var, index)
        self._tracked.append(var)
        self._index_of[id(var)] = index
        self._slots.append(slots)
        self._deltas.append(None)
        self._slot_bounds = None
        return index

    def _untrack_from(self, count: int, restored: dict) -> None:
        """Forget the variables tracked from index ``count`` on (a step refused before any
        write: its new variables get no state), giving back the restored slots they adopted."""
        for var in self._tracked[count:]:
            del self._index_of[id(var)]
        for table in (self._tracked, self._slots, self._deltas):
            del table[count:]
        self._restored = restored
        self._slot_bounds = None

    def _adopt(self, restored, fresh, var, index):
        """Check restored slots against what this variable needs, and cast them to its dtype."""
        if set(restored) != set(fresh):
            raise ValueError(f"{type(self).__name__}.set_state: {_describe(var, index)} needs "
                             f"slots {sorted(fresh)}, the state has {sorted(restored)}")
        for key, value in restored.items():
            if value.shape != fresh[key].shape:
                raise ValueError(f"{type(self).__name__}.set_state: slot {index}/{key} has shape "
                                 f"{value.shape}, {_describe(var, index)} needs "
                                 f"{fresh[key].shape}")
        return {key: to_device(np.array(value, dtype=fresh[key].dtype), device_of(fresh[key]))
                for key, value in restored.items()}

    @property
    def variables(self) -> list[np.ndarray]:
        self._slot_bounds = None  # the slots themselves are handed out
        state = [np.array(self.iterations, dtype=np.int64)]
        for slots in self._slots:
            state.extend(slots.values())
        return state

    def get_state(self) -> dict[str, np.ndarray]:
        """The optimizer state as a flat ``{name: ndarray}`` dict of copies: ``"iterations"``
        and ``"<index>/<slot>"`` (e.g. ``"0/m"``). JSON- and safetensors-friendly; no pickle."""
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for index, slots in enumerate(self._slots):
            for key, value in slots.items():
                state[f"{index}/{key}"] = host_copy(value)  # a device's state: to the host
        return state

    def set_state(self, state: dict) -> None:
        """Restore a ``get_state()`` dict. Slots of variables not seen yet are kept and checked
        when each variable first arrives (same order as when the state was saved). Everything
        is checked (keys, shapes, finite values, ``iterations`` a non-negative integer scalar)
        before anything changes."""
        owner = type(self).__name__
        if "iterations" not in state:
            raise ValueError(f"{owner}.set_state: the state has no 'iterations' entry")
        iterations = np.asarray(state["iterations"])
        if iterations.shape != () or iterations.dtype.kind not in "iu" or iterations < 0:
            raise ValueError(f"{owner}.set_state: 'iterations' must be a non-negative integer "
                             f"scalar, got {iterations.dtype} of shape {iterations.shape}")
        per_index: dict[int, dict[str, np.ndarray]] = {}
        for key, value in state.items():
            if key == "iterations":
                continue
            index, _, slot = key.partition("/")
            if not index.isdigit() or not slot:
                raise ValueError(f"{owner}.set_state: unexpected key {key!r}; expected "
                                 "'iterations' or '<index>/<slot>'")
            value = np.asarray(value)
            check_finite_state(owner, key, value)
            per_index.setdefault(int(index), {})[slot] = value
        adopted = {index: self._adopt(restored, self._slots[index], self._tracked[index], index)
                   for index, restored in per_index.items() if index < len(self._tracked)}
        for index, slots in adopted.items():  # all checked first: all or nothing
            self._slots[index] = slots
        self._restored = {i: s for i, s in per_index.items() if i >= len(self._tracked)}
        self._slot_bounds = None
        self.iterations = int(iterations)

    # ------------------------------------------------------------------ the step
    def apply_gradients(self, grads_and_vars) -> None:
        """Apply one step: ``grads_and_vars`` is a list of ``(gradient, variable)`` pairs.

        A gradient is an ndarray or a Tensor of the variable's shape, or ``None`` (the variable
        is skipped, as Keras). Each variable (a Tensor) has its ``.data`` updated in place.

        Raises:
            FloatingPointError: a gradient or an update is NaN or infinite, or overflows; the
                step was refused (naming the variable): no weight, slot or ``iterations``
                changed.
            ValueError, TypeError: malformed pairs, shapes that differ, no gradient at all.
        """
        tracked, restored = len(self._tracked), dict(self._restored)
        grads, variables, squares = self._gradients(self._pairs(grads_and_vars))
        self._step(grads, variables, squares, tracked, restored)

    def apply_own_gradients(self, grads: list[np.ndarray], variables: list[Tensor]) -> None:
        """``apply_gradients(zip(grads, variables))`` for gradients that a captured step
        (``models.jit``) computed for this step alone: arrays of their variable's shape that
        the step drops afterwards, so that a rule may write its delta over one that owns its
        memory and is no other gradient's (``delta_buffer``). Every variable must be tracked
        already (the step ran eagerly before). The same results, and the same refusal of a
        gradient that is not finite."""
        grads = [g if g.dtype == var.dtype else g.astype(var.dtype)
                 for g, var in zip(grads, variables)]
        squares = [self._finite_square(grad, var, self._index_of[id(var)])
                   for grad, var in zip(grads, variables)]
        viewed = {id(g.base) for g in grads if g.base is not None}
        self._consumable = {id(g) for g in grads if g.base is None and g.flags.writeable
                            and id(g) not in viewed}
        if len({id(g) for g in grads}) < len(grads):  # one array given twice
            self._consumable -= {id(g) for g in grads if sum(h is g for h in grads) > 1}
        try:
            self._step(grads, variables, squares, len(self._tracked), dict(self._restored))
        finally:
            self._consumable = set()

    def _step(self, grads: list, variables: list, squares: list, tracked: int,
              restored: dict) -> None:
        """The step on checked gradients (finite, of their variable's shape and dtype) with
        their squared norms; ``tracked`` and ``restored``: the state to fall back to."""
        grads = self._clip(grads, squares)
        lr = self._step_learning_rate(self.iterations)
        schedule = self.learning_rate_schedule
        self._cycled_momentum = (schedule.momentum(self.iterations)
                                 if getattr(schedule, "cycle_momentum", False) else None)
        try:
            grads, squares = self._decay_gradients(grads, variables, squares, lr)
            bounds = self._certify(max(squares), lr, len(variables))
            if bounds is None:
                self._commit(self._step_transactionally(grads, variables, lr), variables)
            else:
                with np.errstate(over="raise", invalid="raise", divide="raise"):
                    self._write(self._run_rules(grads, variables, lr, bounds), variables, lr)
        except FloatingPointError:
            self._untrack_from(tracked, restored)  # the variables new in this step: no state
            raise
        self.iterations += 1

    def _gradients(self, pairs: list) -> tuple[list, list, list]:
        """The given gradients (as arrays of their variable's dtype), their variables and their
        squared norms; raises before anything is written when one is not finite."""
        owner = type(self).__name__
        grads, variables, squares, seen = [], [], [], set()
        for grad, var in pairs:
            index = self._index_of[id(var)]
            if grad is None:
                continue
            grad = grad.data if isinstance(grad, Tensor) else as_device_array(grad)
            if grad.shape != var.data.shape:
                raise ValueError(f"{owner}.apply_gradients: the gradient of "
                                 f"{_describe(var, index)} has shape {grad.shape}")
            if index in seen:
                raise ValueError(f"{owner}.apply_gradients: {_describe(var, index)} is given "
                                 "twice")
            if grad.dtype != var.data.dtype:
                grad = grad.astype(var.data.dtype)
            square = self._finite_square(grad, var, index)
            seen.add(index)
            grads.append(grad)
            variables.append(var)
            squares.append(square)
        if not grads:
            raise ValueError(f"{owner}.apply_gradients: no gradient was given for any variable")
        return grads, variables, squares

    def _finite_square(self, grad: np.ndarray, var: Tensor, index: int) -> float:
        """The squared norm of ``grad``, the gradient of variable ``index``; raises before
        anything is written when it is not finite."""
        square = squared_norm(grad)
        if square != square:                    # NaN
            raise FloatingPointError(f"{type(self).__name__}: the gradient of "
                                     f"{_describe(var, index)} contains NaN or inf; the step "
                                     "was refused")
        return square

    def _refused(self, var: Tensor, error: Exception, consequence: str = "no weight, slot or "
                 "iteration count changed") -> FloatingPointError:
        return FloatingPointError(
            f"{type(self).__name__}: the update of {_describe(var, self._index_of[id(var)])} is "
            f"not finite ({error}); the step was refused: {consequence}")

    def _decay_gradients(self, grads: list, variables: list, squares: list, lr: float):
        """Coupled weight decay ``g + weight_decay * w`` (and the squared norms of the decayed
        gradients, which the overflow bound needs), or the check that a decoupled decay
        factor below -1 cannot overflow: before any rule runs, so a failure changes nothing."""
        if not self.weight_decay:
            return grads, squares
        if self.decoupled_weight_decay:
            factor = 1.0 - lr * self.weight_decay
            for var in variables if factor < -1.0 else ():
                if not _decay_fits(var.data, factor):
                    raise self._refused(var, f"the weight decay factor {factor:g} overflows")
            return grads, squares
        decayed = []
        with np.errstate(over="raise", invalid="raise"):
            for grad, var in zip(grads, variables):
                try:
                    decayed.append(grad + self.weight_decay * var.data)
                except FloatingPointError as error:
                    raise self._refused(var, error) from None
        squares = [squared_norm(grad) for grad in decayed]  # outside: its dot may overflow
        for square, var in zip(squares, variables):
            if square != square:  # NaN: a weight is not finite
                raise self._refused(var, "the decayed gradient is NaN or infinite")
        return decayed, squares

    def _run_rules(self, grads: list, variables: list, lr: float, bounds=None) -> list:
        """Every variable's rule (under the caller's ``numpy.errstate``): the deltas, in order.
        ``bounds``: the slot bounds this step was certified with, kept for the next step."""
        deltas = []
        for grad, var in zip(grads, variables):
            try:
                deltas.append(self.update_step(grad, var, lr))
            except ArithmeticError as error:  # FloatingPointError, or a Python scalar's
                if bounds is None:  # the transactional step puts the slots back
                    raise self._refused(var, error) from None
                self._slot_bounds = None
                raise self._refused(var, error, (
                    "no weight was written, but the slots of the variables before this one "
                    "have advanced: the overflow bound (bound_step) missed it")) from None
        if bounds is not None:
            self._slot_bounds = bounds  # update_step's slots() calls marked them unknown
        return deltas

    def _write(self, deltas: list, variables: list, lr: float) -> None:
        """``w <- w - delta`` in place, after ``w <- w * (1 - lr * weight_decay)`` for decoupled
        weight decay. Cannot overflow a finite ``w`` once the step is certified (``_certify``)."""
        decoupled = self.decoupled_weight_decay and self.weight_decay
        factor = 1.0 - lr * self.weight_decay if decoupled else 1.0
        for delta, var in zip(deltas, variables):
            weights = var.data
            if decoupled:
                weights *= factor
            get_array_module(weights).subtract(weights, delta, out=weights)

    def _step_transactionally(self, grads: list, variables: list, lr: float) -> list:
        """The step the overflow bound could not certify: the rules run on the slots as they
        are, a copy of each put aside first and put back if one overflows; the new weights are
        computed apart (refused if one is not finite) and returned, nothing written yet."""
        saved = [copy_slots(self._slots[self._index_of[id(var)]]) for var in variables]
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                deltas = self._run_rules(grads, variables, lr)
            return [self._new_weights(var, delta, lr) for var, delta in zip(variables, deltas)]
        except BaseException:
            for var, (arrays, copies) in zip(variables, saved):
                restore_slots(self._slots[self._index_of[id(var)]], arrays, copies)
            raise
        finally:
            self._slot_bounds = None  # measured again at the next step

    def _new_weights(self, var: Tensor, delta: np.ndarray, lr: float) -> np.ndarray:
        """``w - delta`` (decoupled decay first) as a new array, refused if not finite."""
        if math.isnan(squared_norm(delta)):  # an infinite Python coefficient raises nothing
            raise self._refused(var, "the step is NaN or infinite")
        weights = var.data.copy()
        with np.errstate(over="raise", invalid="raise"):
            try:
                if self.decoupled_weight_decay and self.weight_decay:
                    weights *= 1.0 - lr * self.weight_decay
                return get_array_module(weights).subtract(weights, delta, out=weights)
            except FloatingPointError as error:
                raise self._refused(var, f"w - delta: {error}") from None

    @staticmethod
    def _commit(new_weights: list, variables: list) -> None:
        for weights, var in zip(new_weights, variables):
            var.data[...] = weights

    # ------------------------------------------------------------------ the overflow bound
    #: slots that must never be negative (a square root is taken of them); ``bound_step``
    #: relies on it, and a measured slot with a negative element is not certified
    nonnegative_slots: tuple[str, ...] = ()

    def bound_step(self, grad: float, slots: dict[str, float], lr: float,
                   op: Rounding) -> tuple[dict[str, float], float] | None:
        """``update_step`` on magnitudes: from ``grad`` >= max|g| over this step's gradients
        and ``slots`` (slot name -> an upper bound of max|slot| over every variable; a slot
        absent from the dict is absent from every variable), the bounds of the slots the rule
        changes and of max|delta|, every rounded operation of the rule taken through ``op`` in
        the rule's order (see ``Rounding``). It must be monotone: never smaller for a larger
        ``grad``, ``lr`` or slot bound (any composition of ``op``, sums, products, quotients by
        a fixed lower bound, ``sqrt`` and ``max`` is). ``None``: no bound is known (the
        default), every step is then transactional (its slots copied first)."""
        return None

    def _certify(self, square: float, lr: float, count: int) -> dict[str, float] | None:
        """The slot bounds after this step if it provably cannot overflow (``bound_step``
        with every intermediate and the new slots finite, and ``|delta| < ulp(max) / 2``, so
        that ``w - delta`` cannot overflow a finite ``w``), else None. ``square``: the largest
        squared norm of this step's gradients; ``count``: how many variables it updates."""
        envelope = self._envelope
        if envelope:
            if (envelope.bounds is self._slot_bounds and square <= envelope.square
                    and lr <= envelope.lr and self._cycled_momentum == envelope.momentum
                    and tuple(map(self.__dict__.get, envelope.names)) == envelope.values):
                return envelope.bounds
            self._envelope = None
        measured = self._slot_bounds is None
        for _ in range(2):
            if self._slot_bounds is None:
                dtypes = {var.dtype for var in self._tracked}
                self._rounding = Rounding(dtypes.pop()) if len(dtypes) == 1 else None
                self._slot_bounds = largest_magnitudes(self._slots, self.nonnegative_slots)
                self._envelope = None
            bounds = self._bound_once(square, lr, count)
            if bounds is not None:
                return self._enclose(bounds, square, lr)
            if measured:
                return None
            self._slot_bounds, measured = None, True  # the running bounds may have drifted
        return None

    def _bound_once(self, square: float, lr: float, count: int) -> dict[str, float] | None:
        """``bound_step`` from the running slot bounds: the new bounds if it certifies."""
        bounds, op = self._slot_bounds, self._rounding
        if op is None:
            return None
        op.fits = True
        try:
            certified = self.bound_step(op.root_of_square(square), bounds, lr, op)
        except ArithmeticError:  # a scalar of the rule divides by 0: the rule will, too
            return None
        if certified is None or not op.fits or not certified[1] < op.half_ulp:
            return None
        new = {**bounds, **certified[0]}
        if count < len(self._tracked):  # the slots of skipped variables stay
            new = {key: max(value, bounds.get(key, 0.0)) for key, value in new.items()}
        return new

    def _enclose(self, bounds: dict[str, float], square: float, lr: float) -> dict[str, float]:
        """``bounds``, or larger slot bounds ``E`` that a step with up to twice this gradient
        and rate provably keeps (``bound_step(E) <= E`` and certified): ``bound_step`` is
        monotone in the gradient, the rate and the slot bounds, so every later step within
        them, the hyperparameters unchanged, is certified by ``_certify``'s comparisons alone.
        ``E``: the bounds, raised to a power of two times what the gradient alone brings (a
        contracting recurrence ``s <- a s + c`` keeps ``s <= c / (1 - a)``). Tried once per
        measurement of the slots, and again when a kept ``E`` no longer applies; not under a
        momentum-cycling schedule (its momentum changes every step)."""
        if self._envelope is not None or self._cycled_momentum is not None:
            return bounds  # _envelope False: tried since the slots were measured
        self._envelope, op = False, self._rounding
        grad, rate = op.root_of_square(4.0 * square), 2.0 * lr
        op.fits = True
        try:
            seed = self.bound_step(grad, dict.fromkeys(bounds, 0.0), rate, op)
            for scale in (2.0 ** k for k in range(1, 14)) if seed and op.fits else ():
                candidate = {key: max(bounds.get(key, 0.0), scale * seed[0].get(key, 0.0))
                             for key in bounds.keys() | seed[0].keys()}
                new, delta = self.bound_step(grad, candidate, rate, op)
                if not op.fits or not delta < op.half_ulp:
                    break  # a larger scale only raises every bound
                if all(new[key] <= candidate[key] for key in new):
                    names = tuple(name for name, value in vars(self).items()
                                  if (value is None or isinstance(value, (int, float)))
                                  and not name.startswith("_") and name != "iterations")
                    self._envelope = Envelope(candidate, 4.0 * square, rate,
                                              self._cycled_momentum, names,
                                              tuple(map(self.__dict__.get, names)))
                    return candidate
        except ArithmeticError:
            pass
        return bounds

    def _pairs(self, grads_and_vars) -> list:
        """The ``(gradient, variable)`` pairs as a list, every variable tracked. Variables
        seen for the first time get their state only if every pair is well-formed and every
        gradient finite: a refused first step creates no state."""
        owner = type(self).__name__
        pairs = []
        for position, pair in enumerate(grads_and_vars):
            try:
                grad, var = pair
            except (TypeError, ValueError):
                raise TypeError(f"{owner}.apply_gradients: expected (gradient, variable) pairs, "
                                f"got {type(pair).__name__} at position {position}") from None
            pairs.append((grad, var))
        index = len(self._tracked)  # the index each new variable will get
        for grad, var in pairs:
            if id(var) in self._index_of or not isinstance(var, Tensor):
                continue  # a non-Tensor variable: _track says so
            grad = None if grad is None else as_device_array(getattr(grad, "data", grad))
            if grad is not None and grad.shape != var.shape:
                raise ValueError(f"{owner}.apply_gradients: the gradient of "
                                 f"{_describe(var, index)} has shape {grad.shape}")
            if grad is not None and not get_array_module(grad).isfinite(grad).all():
                raise FloatingPointError(f"{owner}: the gradient of {_describe(var, index)} "
                                         "contains NaN or inf; the step was refused")
            index += 1
        for _, var in pairs:
            if id(var) not in self._index_of:
                self._track(var)
        return pairs

    def _clip(self, grads: list[np.ndarray], squares: list[float]) -> list[np.ndarray]:
        """Clip as torch's clip_grad_value_ / clip_grad_norm_ (per variable for clipnorm);
        ``squares`` are the squared norms of ``grads``."""
        if self.clipvalue is not None:
            return [get_array_module(g).clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            return [_scale_to_norm(g, math.sqrt(sq), self.clipnorm)
                    for g, sq in zip(grads, squares)]
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(squares))
            return [_scale_to_norm(g, total, self.global_clipnorm) for g in grads]
        return grads

    # ------------------------------------------------------------------ configuration
    def get_config(self) -> dict:
        """Every constructor argument, JSON-serialisable (a schedule as its config dict)."""
        lr = self._learning_rate
        if callable(lr):
            lr = schedules.serialize(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "decay": self.decay}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """Rebuild an optimizer from ``get_config()``."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self._learning_rate!r})"


def _decay_fits(weights: np.ndarray, factor: float) -> bool:
    """Whether decoupled weight decay ``w <- w * factor`` (``1 - lr * weight_decay`` below -1:
    it grows the weights) stays finite."""
    largest = float(np.finfo(weights.dtype).max)
    return -factor <= largest and not (
        weights.size and float(abs(weights).max()) * -factor > largest)


def _scale_to_norm(g: np.ndarray, norm: float, max_norm: float) -> np.ndarray:
    """``g * max_norm / (norm + 1e-6)`` when that shrinks it (torch's clip_grad_norm_)."""
    coefficient = max_norm / (norm + CLIP_NORM_EPSILON)
    return g * coefficient if coefficient < 1.0 else g
