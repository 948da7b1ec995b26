"""The first-order optimizer base: everything an update rule shares.

One step of every first-order optimizer is the same pipeline; only the rule in the middle
differs, and it is written once per parameter in a subclass's ``update_step``:

1. check every gradient is finite (before anything is written, so a NaN step changes nothing);
2. clip (``clipvalue``, per-variable ``clipnorm`` or ``global_clipnorm``), as
   ``torch.nn.utils.clip_grad_value_`` / ``clip_grad_norm_`` would before ``step()``;
3. coupled weight decay ``g <- g + weight_decay * w`` (L2 regularisation; torch's default),
   except for decoupled optimizers (AdamW);
4. ``delta = update_step(g, w, lr)``: the subclass's rule returns the amount to subtract;
5. write ``w <- w - delta`` in place (after ``w <- w * (1 - lr * weight_decay)`` for decoupled
   weight decay).

From finite gradients, weights and state, an update can only become NaN or infinite through an
overflow, an invalid operation (0/0, sqrt of a negative) or a division by zero. Steps 3-5 run
under ``numpy.errstate(over="raise", invalid="raise", divide="raise")``, so such an update
raises FloatingPointError where it happens, before any weight is written, for the price of one
context manager per step instead of another pass over every update; the variables seen for the
first time in a refused step get no state. The slots of the variables whose rule ran before the
failing one have advanced, though (the rules update them in place; see docs/reliability.md).

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
from nervenet.checks import check_number
from nervenet.optimizers import schedules

#: variables of at least this many bytes write their update into a buffer kept across steps:
#: a new array that large is mapped afresh by the allocator (page faults), while smaller ones
#: come from recently freed memory, where a kept buffer only adds a copy (the measurements are
#: in bench/README.md, "optimizers.py").
DELTA_BUFFER_BYTES = 2 << 20

# torch.nn.utils.clip_grad_norm_ divides by (norm + 1e-6); we do the same so that clipped
# trajectories equal torch's.
CLIP_NORM_EPSILON = 1e-6


def squared_norm(array: np.ndarray) -> float:
    """``sum(array ** 2)``, or NaN when an element is NaN or infinite.

    One dot product (about twice as fast as ``np.isfinite(a).all()``, and no temporary) both
    checks the gradient and gives its norm for clipping. When it overflows we fall back to the
    exact elementwise test and to float64.
    """
    flat = array.reshape(-1)
    value = float(np.dot(flat, flat))
    if math.isfinite(value):
        return value
    if not np.isfinite(array).all():
        return math.nan
    flat = flat.astype(np.float64)
    return float(np.dot(flat, flat))


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
        self._restored: dict[int, dict[str, np.ndarray]] = {}  # set_state before build
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
        """The rule: update this variable's slots and return ``delta`` (``w <- w - delta``)."""
        raise NotImplementedError

    def build(self, variables) -> None:
        """Give ``variables`` their indices (in this order) and create their state now."""
        for var in variables:
            self._track(var)

    @property
    def tracked_variables(self) -> list[Tensor]:
        """The variables with state, in index order (what ``get_state`` keys refer to)."""
        return list(self._tracked)

    def delta_buffer(self, var: Tensor) -> np.ndarray:
        """Where ``update_step`` may write the delta of ``var`` (uninitialised): the buffer
        kept for a variable of ``DELTA_BUFFER_BYTES`` or more, a new array for a smaller one."""
        index = self._index_of[id(var)]
        buffer = self._deltas[index]
        if buffer is None:
            buffer = np.empty_like(var.data)
            if buffer.nbytes >= DELTA_BUFFER_BYTES:  # kept from the first step on (not made
                self._deltas[index] = buffer         # when tracked: a load needs no buffer)
        return buffer

    def slots(self, var: Tensor) -> dict[str, np.ndarray]:
        """The state of ``var`` (its arrays, not copies)."""
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
        return index

    def _untrack_from(self, count: int, restored: dict) -> None:
        """Forget the variables tracked from index ``count`` on (a step refused before any
        write: its new variables get no state), giving back the restored slots they adopted."""
        for var in self._tracked[count:]:
            del self._index_of[id(var)]
        for table in (self._tracked, self._slots, self._deltas):
            del table[count:]
        self._restored = restored

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
        return {key: np.array(value, dtype=fresh[key].dtype) for key, value in restored.items()}

    @property
    def variables(self) -> list[np.ndarray]:
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
                state[f"{index}/{key}"] = value.copy()
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
        self.iterations = int(iterations)

    # ------------------------------------------------------------------ the step
    def apply_gradients(self, grads_and_vars) -> None:
        """Apply one step: ``grads_and_vars`` is a list of ``(gradient, variable)`` pairs.

        A gradient is an ndarray or a Tensor of the variable's shape, or ``None`` (the variable
        is skipped, as Keras). Each variable (a Tensor) has its ``.data`` updated in place.

        Raises:
            FloatingPointError: a gradient or an update is NaN or infinite; nothing is written
                to the weights (naming the variable).
            ValueError, TypeError: malformed pairs, shapes that differ, no gradient at all.
        """
        owner = type(self).__name__
        grads, variables, indices, squares = [], [], [], []
        seen = set()
        tracked, restored = len(self._tracked), dict(self._restored)
        pairs = self._pairs(grads_and_vars)
        for grad, var in pairs:
            index = self._index_of[id(var)]
            if grad is None:
                continue
            grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            weights = var.data
            if grad.shape != weights.shape:
                raise ValueError(f"{owner}.apply_gradients: the gradient of "
                                 f"{_describe(var, index)} has shape {grad.shape}")
            if index in seen:
                raise ValueError(f"{owner}.apply_gradients: {_describe(var, index)} is given "
                                 "twice")
            if grad.dtype != weights.dtype:
                grad = grad.astype(weights.dtype)
            square = squared_norm(grad)
            if square != square:                    # NaN: checked before anything is written
                raise FloatingPointError(f"{owner}: the gradient of {_describe(var, index)} "
                                         "contains NaN or inf; the step was refused")
            seen.add(index)
            grads.append(grad)
            variables.append(var)
            indices.append(index)
            squares.append(square)
        if not grads:
            raise ValueError(f"{owner}.apply_gradients: no gradient was given for any variable")
        grads = self._clip(grads, squares)
        lr = self._step_learning_rate(self.iterations)
        schedule = self.learning_rate_schedule
        self._cycled_momentum = (schedule.momentum(self.iterations)
                                 if getattr(schedule, "cycle_momentum", False) else None)
        coupled = self.weight_decay and not self.decoupled_weight_decay
        decoupled = self.decoupled_weight_decay and self.weight_decay
        factor = 1.0 - lr * self.weight_decay if decoupled else 1.0
        grows = factor < -1.0  # lr * weight_decay > 2: the decay can overflow
        deltas = []
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for grad, var, index in zip(grads, variables, indices):
                try:
                    if coupled:
                        grad = grad + self.weight_decay * var.data
                    deltas.append(self.update_step(grad, var, lr))
                    if grows:
                        _check_decay(var.data, factor)
                except FloatingPointError as error:
                    self._untrack_from(tracked, restored)
                    raise FloatingPointError(
                        f"{owner}: the update of {_describe(var, index)} is not finite "
                        f"({error}); the step was refused: no weight was written, but the "
                        "state of the variables up to this one may have advanced") from None
            for delta, var in zip(deltas, variables):
                weights = var.data
                if decoupled:
                    weights *= factor
                np.subtract(weights, delta, out=weights)
        self.iterations += 1

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
            grad = None if grad is None else np.asarray(getattr(grad, "data", grad))
            if grad is not None and grad.shape != var.shape:
                raise ValueError(f"{owner}.apply_gradients: the gradient of "
                                 f"{_describe(var, index)} has shape {grad.shape}")
            if grad is not None and not np.isfinite(grad).all():
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
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
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


def _check_decay(weights: np.ndarray, factor: float) -> None:
    """Decoupled weight decay ``w <- w * factor`` (``1 - lr * weight_decay`` below -1) grows
    the weights: raise, before any weight is written, if it would overflow."""
    if weights.size and (
            float(np.abs(weights).max()) * -factor > float(np.finfo(weights.dtype).max)):
        raise FloatingPointError(f"the weight decay factor {factor:g} overflows")


def _scale_to_norm(g: np.ndarray, norm: float, max_norm: float) -> np.ndarray:
    """``g * max_norm / (norm + 1e-6)`` when that shrinks it (torch's clip_grad_norm_)."""
    coefficient = max_norm / (norm + CLIP_NORM_EPSILON)
    return g * coefficient if coefficient < 1.0 else g
