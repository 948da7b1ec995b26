"""Learning-rate schedules: ``lr = schedule(step)``, accepted wherever a learning rate is.

An optimizer evaluates its schedule at ``optimizer.iterations`` (0 for the first step), so
``step`` counts optimizer steps (batches), as in Keras. Argument names follow Keras 3.

=========================  ===============================================================
schedule                   learning rate at step t
=========================  ===============================================================
ExponentialDecay           lr0 * r ** (t / s)                       (floor(t / s) if staircase)
InverseTimeDecay (power)   lr0 / (1 + r * t / s) ** c               (c = 1 is Keras's)
PiecewiseConstantDecay     values[i] for boundaries[i-1] < t <= boundaries[i]
CosineDecay                lr0 * ((1 - a) * (1 + cos(pi * t / s)) / 2 + a)   (+ linear warm-up)
OneCycle                   linear warm-up to max_lr, back down, then annealing (Smith's 1cycle)
=========================  ===============================================================

Performance scheduling (reduce the rate when the validation loss stalls) is the
``ReduceLROnPlateau`` callback, since it needs the loss.
"""

from __future__ import annotations

import bisect
import math

from nervenet.checks import check_int, check_number
from nervenet.registry import Registry


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float`` plus ``get_config()`` / ``from_config()``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        """Every constructor argument (JSON-serialisable)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class _StepRatioDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments and the ratio
    ``t / decay_steps`` (``t // decay_steps`` with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        owner = type(self).__name__
        self.initial_learning_rate = check_number(owner, "initial_learning_rate",
                                                  initial_learning_rate, 0.0)
        self.decay_steps = check_int(owner, "decay_steps", decay_steps, low=1)
        self.decay_rate = check_number(owner, "decay_rate", decay_rate, 0.0)
        self.staircase = bool(staircase)

    def _ratio(self, step: int) -> float:
        ratio = step / self.decay_steps
        return math.floor(ratio) if self.staircase else ratio

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class ExponentialDecay(_StepRatioDecay):
    """``lr(t) = initial_learning_rate * decay_rate ** (t / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0 (non-negative).
        decay_steps: the number of steps over which the rate is multiplied by ``decay_rate``
            (positive int).
        decay_rate: the factor per ``decay_steps`` (non-negative).
        staircase: decay in discrete jumps, ``t // decay_steps`` (default ``False``).

    Example:
        >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(20)
        0.025
    """

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._ratio(step)


class InverseTimeDecay(_StepRatioDecay):
    """Power scheduling: ``lr(t) = initial_learning_rate / (1 + decay_rate * t / decay_steps)
    ** power``.

    With ``power=1`` (the default) this is Keras's InverseTimeDecay; Geron's "power
    scheduling" ``lr0 / (1 + t / s) ** c`` is ``decay_rate=1, decay_steps=s, power=c``.

    Args:
        initial_learning_rate: the rate at step 0 (non-negative).
        decay_steps: the step scale ``s`` (positive int).
        decay_rate: ``r`` (non-negative).
        staircase: use ``t // decay_steps`` instead of ``t / decay_steps`` (default ``False``).
        power: the exponent ``c`` (default 1.0, positive).

    Example:
        >>> InverseTimeDecay(0.1, decay_steps=10, decay_rate=1.0)(10)
        0.05
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 power=1.0):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase)
        self.power = check_number(type(self).__name__, "power", power, 0.0, low_open=True)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._ratio(step)) \
            ** self.power

    def get_config(self) -> dict:
        return {**super().get_config(), "power": self.power}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` for ``t <= boundaries[0]``, ``values[i]`` for ``boundaries[i-1] < t <=
    boundaries[i]``, ``values[-1]`` after the last boundary (as Keras).

    Args:
        boundaries: increasing step numbers (``n`` ints).
        values: the ``n + 1`` learning rates (non-negative).

    Example:
        >>> schedule = PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])
        >>> schedule(100), schedule(101), schedule(500)
        (0.1, 0.01, 0.001)
    """

    def __init__(self, boundaries, values):
        owner = type(self).__name__
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"{owner}: values must have one more entry than boundaries, got "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        if any(isinstance(b, bool) or not isinstance(b, int) for b in boundaries) \
                or any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: boundaries must be increasing ints, got {boundaries}")
        self.boundaries = boundaries
        self.values = [check_number(owner, f"values[{i}]", v, 0.0) for i, v in enumerate(values)]

    def __call__(self, step: int) -> float:
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def get_config(self) -> dict:
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


class CosineDecay(LearningRateSchedule):
    """Cosine annealing (Loshchilov & Hutter, SGDR without restarts), with optional warm-up.

    After ``warmup_steps`` steps of linear warm-up from ``initial_learning_rate`` to
    ``warmup_target`` (only when ``warmup_target`` is given), with ``t`` counted from the end
    of the warm-up and ``lr0`` the rate reached there::

        lr(t) = lr0 * ((1 - alpha) * (1 + cos(pi * min(t, decay_steps) / decay_steps)) / 2
                       + alpha)

    Args:
        initial_learning_rate: the starting rate (non-negative).
        decay_steps: the length of the cosine decay (positive int).
        alpha: the final rate as a fraction of ``lr0`` (default 0.0).
        warmup_target: the rate reached at the end of the warm-up (default ``None``: no
            warm-up).
        warmup_steps: the length of the warm-up (default 0).

    Example:
        >>> CosineDecay(0.1, decay_steps=100)(50)
        0.05
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = check_number(owner, "initial_learning_rate",
                                                  initial_learning_rate, 0.0)
        self.decay_steps = check_int(owner, "decay_steps", decay_steps, low=1)
        self.alpha = check_number(owner, "alpha", alpha, 0.0, 1.0)
        self.warmup_target = check_number(owner, "warmup_target", warmup_target, 0.0,
                                          allow_none=True)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or warmup_steps < 0:
            raise ValueError(f"{owner}: warmup_steps must be a non-negative int, got "
                             f"{warmup_steps!r}")
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        start = self.initial_learning_rate
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                return start + (self.warmup_target - start) * step / self.warmup_steps
            start = self.warmup_target
            step = step - self.warmup_steps
        t = min(step, self.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * t / self.decay_steps))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class OneCycle(LearningRateSchedule):
    """Smith's 1cycle policy: the rate rises to ``max_learning_rate`` and comes back down while
    momentum does the opposite, then a last phase anneals the rate far below its start.

    With ``three_phase=True`` (the default), for ``T = total_steps`` and ``p = pct_start``:

    * steps 0 .. pT-1: rate ``max_lr / div_factor -> max_lr``, momentum ``max -> base``;
    * .. 2pT-2: rate back to ``max_lr / div_factor``, momentum back to ``max_momentum``;
    * .. T-1: rate down to ``max_lr / div_factor / final_div_factor`` (momentum stays).

    ``three_phase=False`` has the two phases of torch's default (up, then straight down to the
    final rate). Phase boundaries and interpolation are exactly torch.optim.lr_scheduler.
    OneCycleLR's; steps past ``T - 1`` keep the final rate.

    When ``cycle_momentum`` is true an optimizer using this schedule takes its momentum (SGD,
    RMSprop) or ``beta_1`` (Adam family) from ``momentum(step)`` instead of its own argument,
    as torch's OneCycleLR does.

    Args:
        max_learning_rate: the peak rate (positive).
        total_steps: the length of the cycle in optimizer steps (int >= 2).
        pct_start: the fraction of the cycle spent rising (default 0.45).
        anneal_strategy: ``"linear"`` (default) or ``"cos"``.
        three_phase: see above (default ``True``).
        div_factor: the starting rate is ``max_learning_rate / div_factor`` (default 25).
        final_div_factor: the final rate is the starting rate / this (default 1e4).
        cycle_momentum: cycle the optimizer's momentum (default ``True``).
        base_momentum: the lowest momentum, reached at the peak rate (default 0.85).
        max_momentum: the highest momentum (default 0.95).

    Example:
        >>> schedule = OneCycle(0.1, total_steps=100)
        >>> round(schedule(0), 6), round(schedule(44), 6), round(schedule(99), 9)
        (0.004, 0.1, 4e-07)
    """

    def __init__(self, max_learning_rate, total_steps, pct_start=0.45, anneal_strategy="linear",
                 three_phase=True, div_factor=25.0, final_div_factor=1e4, cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95):
        owner = type(self).__name__
        self.max_learning_rate = check_number(owner, "max_learning_rate", max_learning_rate,
                                              0.0, low_open=True)
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 2:
            raise ValueError(f"{owner}: total_steps must be an int >= 2, got {total_steps!r}")
        self.total_steps = total_steps
        self.pct_start = check_number(owner, "pct_start", pct_start, 0.0, 1.0, low_open=True,
                                      high_open=True)
        if anneal_strategy not in ("linear", "cos"):
            raise ValueError(f"{owner}: anneal_strategy must be 'linear' or 'cos', got "
                             f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        self.div_factor = check_number(owner, "div_factor", div_factor, 0.0, low_open=True)
        self.final_div_factor = check_number(owner, "final_div_factor", final_div_factor, 0.0,
                                             low_open=True)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = check_number(owner, "base_momentum", base_momentum, 0.0, 1.0,
                                          high_open=True)
        self.max_momentum = check_number(owner, "max_momentum", max_momentum, 0.0, 1.0,
                                         high_open=True)
        if self.base_momentum > self.max_momentum:
            raise ValueError(f"{owner}: base_momentum ({self.base_momentum}) must not exceed "
                             f"max_momentum ({self.max_momentum})")
        initial = self.max_learning_rate / self.div_factor
        final = initial / self.final_div_factor
        peak, low, high = self.max_learning_rate, self.base_momentum, self.max_momentum
        rise_end = self.pct_start * total_steps - 1
        if self.three_phase:
            fall_end = 2 * self.pct_start * total_steps - 2
            if not 0 < rise_end < fall_end < total_steps - 1:
                raise ValueError(f"{owner}: pct_start={self.pct_start} leaves an empty phase "
                                 f"with total_steps={total_steps}; use pct_start < 0.5 and more "
                                 "steps")
            # (end step, rate from, rate to, momentum from, momentum to)
            self._phases = [(rise_end, initial, peak, high, low),
                            (fall_end, peak, initial, low, high),
                            (total_steps - 1, initial, final, high, high)]
        else:
            if not 0 < rise_end < total_steps - 1:
                raise ValueError(f"{owner}: pct_start={self.pct_start} leaves an empty phase "
                                 f"with total_steps={total_steps}")
            self._phases = [(rise_end, initial, peak, high, low),
                            (total_steps - 1, peak, final, low, high)]

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _interpolate(self, step: int, rate: bool) -> float:
        step = min(step, self.total_steps - 1)
        start_step = 0.0
        for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
            if step <= end_step or i == len(self._phases) - 1:
                fraction = (step - start_step) / (end_step - start_step)
                if rate:
                    return self._anneal(lr_from, lr_to, fraction)
                return self._anneal(m_from, m_to, fraction)
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")

    def __call__(self, step: int) -> float:
        return self._interpolate(step, rate=True)

    def momentum(self, step: int) -> float:
        """The momentum (or Adam's beta_1) prescribed at ``step``."""
        return self._interpolate(step, rate=False)

    def get_config(self) -> dict:
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                "three_phase": self.three_phase, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor,
                "cycle_momentum": self.cycle_momentum, "base_momentum": self.base_momentum,
                "max_momentum": self.max_momentum}


#: The built-in schedules by class name (what ``serialize`` writes and model files hold).
registry = Registry("schedule")
for _cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay, OneCycle):
    registry.add(_cls.__name__, _cls)


def serialize(schedule) -> dict:
    """``{"class_name": ..., "config": ...}`` for a built-in schedule."""
    if registry.name_of(schedule) is None:
        raise TypeError(f"serialize: only the built-in schedules {registry.names()} can be "
                        f"saved, got {type(schedule).__name__}")
    return registry.serialize(schedule)


def deserialize(config: dict) -> LearningRateSchedule:
    """Rebuild a schedule from ``serialize()``'s dict (registered class names only)."""
    return registry.from_config(config)


__all__ = [
    "CosineDecay", "ExponentialDecay", "InverseTimeDecay", "LearningRateSchedule", "OneCycle",
    "PiecewiseConstantDecay", "deserialize", "registry", "serialize",
]
