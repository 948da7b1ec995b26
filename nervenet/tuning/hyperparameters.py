"""Hyperparameters and their search space, as KerasTuner's ``HyperParameters``.

A model-building function asks for each hyperparameter where it needs it::

    def build(hp):
        units = hp.Int("units", 16, 256, sampling="log")
        rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        ...

Called with a fresh ``HyperParameters``, every call registers its hyperparameter in the space
and returns its default; a tuner then calls it again with values it chose. Conditional
hyperparameters are registered inside ``with hp.conditional_scope(parent, values):`` and are
active only when the parent has one of ``values``.

Each hyperparameter can be sampled at random (``sample``), enumerated on a grid
(``grid(q)``: ``q`` points of a continuous range, every choice of a discrete one), and
described as JSON (``get_config``). A grid over ``m`` hyperparameters of ``q`` values each has
``q**m`` points: ``grid_size`` counts them, which is the curse of dimensionality that random
search avoids (Bergstra & Bengio, 2012).
"""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class HyperParameter:
    """Base class: a name, a default, and the conditions under which it is active."""

    kind = "hyperparameter"

    def __init__(self, name: str, default=None, conditions=()):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, got "
                             f"{name!r}")
        self.name = name
        self.default = default
        self.conditions = [(parent, list(values)) for parent, values in conditions]

    def is_active(self, values: dict) -> bool:
        """Whether every condition holds for the chosen ``values`` of the parents."""
        return all(parent in values and values[parent] in allowed
                   for parent, allowed in self.conditions)

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError

    def grid(self, q: int) -> list:
        raise NotImplementedError

    def contains(self, value) -> bool:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"class_name": type(self).__name__, "name": self.name, "default": self.default,
                "conditions": [[p, list(v)] for p, v in self.conditions]}

    def __repr__(self) -> str:
        config = {k: v for k, v in self.get_config().items() if k != "class_name"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


class _Range(HyperParameter):
    """A numeric range ``[min_value, max_value]``, linear or log-scaled, with an optional
    step."""

    def __init__(self, name, min_value, max_value, step=None, sampling="linear", default=None,
                 conditions=()):
        owner = f"{type(self).__name__} {name!r}"
        for label, value in (("min_value", min_value), ("max_value", max_value)):
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"{owner}: {label} must be a finite number, got {value!r}")
        if min_value > max_value:
            raise ValueError(f"{owner}: min_value must be <= max_value, got min_value="
                             f"{min_value} > max_value={max_value}")
        if sampling not in ("linear", "log"):
            raise ValueError(f"{owner}: sampling must be 'linear' or 'log', got {sampling!r}")
        if sampling == "log" and min_value <= 0:
            raise ValueError(f"{owner}: sampling='log' needs min_value > 0, got min_value="
                             f"{min_value}")
        if step is not None and (not _is_number(step) or not step > 0):
            raise ValueError(f"{owner}: step must be a positive number or None, got {step!r}")
        if default is None:
            default = min_value
        super().__init__(name, default, conditions)
        self.min_value, self.max_value = min_value, max_value
        self.step, self.sampling = step, sampling
        if not self.contains(default):
            raise ValueError(f"{owner}: default {default!r} is outside [{min_value}, "
                             f"{max_value}]")

    def _from_unit(self, u: float) -> float:
        """The value at position ``u`` in [0, 1] of the range (log-uniform for "log")."""
        low, high = self.min_value, self.max_value
        if self.sampling == "log":
            return float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
        return float(low + u * (high - low))

    def _snap(self, value: float) -> float:
        if self.step is None:
            return value
        k = round((value - self.min_value) / self.step)
        return min(self.min_value + k * self.step, self.max_value)

    def sample(self, rng):
        return self.cast(self._snap(self._from_unit(rng.random())))

    def grid(self, q: int) -> list:
        if self.step is not None:
            count = int(math.floor((self.max_value - self.min_value) / self.step + 1e-9)) + 1
            values = [self.min_value + k * self.step for k in range(count)]
            if count > q:                            # q evenly spread steps
                values = [values[round(i * (count - 1) / (q - 1))] for i in range(q)] if q > 1 \
                    else [values[0]]
        else:
            values = [self._from_unit(i / (q - 1)) for i in range(q)] if q > 1 else [
                self._from_unit(0.5)]
        out = []
        for value in values:
            value = self.cast(value)
            if value not in out:
                out.append(value)
        return out

    def contains(self, value) -> bool:
        return _is_number(value) and self.min_value <= value <= self.max_value

    def get_config(self) -> dict:
        return {**super().get_config(), "min_value": self.min_value,
                "max_value": self.max_value, "step": self.step, "sampling": self.sampling}


class Int(_Range):
    """An integer in ``[min_value, max_value]`` (both included)."""

    def __init__(self, name, min_value, max_value, step=None, sampling="linear", default=None,
                 conditions=()):
        for label, value in (("min_value", min_value), ("max_value", max_value)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ValueError(f"Int {name!r}: {label} must be an int, got {value!r}")
        super().__init__(name, int(min_value), int(max_value), step, sampling, default,
                         conditions)

    def cast(self, value) -> int:
        return int(min(max(round(value), self.min_value), self.max_value))

    def sample(self, rng):
        if self.sampling == "linear" and self.step is None:   # every integer equally likely
            return int(rng.integers(self.min_value, self.max_value + 1))
        return super().sample(rng)


class Float(_Range):
    """A real number in ``[min_value, max_value]``; ``sampling="log"`` spreads the samples
    evenly over orders of magnitude (for learning rates, L2 coefficients, ...)."""

    def cast(self, value) -> float:
        return float(min(max(value, self.min_value), self.max_value))


class Choice(HyperParameter):
    """One of a list of values (numbers, strings or booleans)."""

    def __init__(self, name, values, default=None, conditions=()):
        values = list(values) if isinstance(values, (list, tuple)) else values
        if not isinstance(values, list) or not values:
            raise ValueError(f"Choice {name!r}: values must be a non-empty list, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"Choice {name!r}: values must be distinct, got {values!r}")
        if default is None:
            default = values[0]
        super().__init__(name, default, conditions)
        self.values = values
        if default not in values:
            raise ValueError(f"Choice {name!r}: default {default!r} is not one of {values}")

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, q: int) -> list:
        return list(self.values)

    def contains(self, value) -> bool:
        return value in self.values

    def get_config(self) -> dict:
        return {**super().get_config(), "values": list(self.values)}


class Boolean(Choice):
    """True or False."""

    def __init__(self, name, default=False, conditions=()):
        super().__init__(name, [False, True], bool(default), conditions)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["values"]
        return config


class Fixed(Choice):
    """A constant recorded with the others (so that every trial lists it)."""

    def __init__(self, name, value, conditions=()):
        super().__init__(name, [value], value, conditions)

    def get_config(self) -> dict:
        config = super().get_config()
        config["value"] = config.pop("values")[0]
        del config["default"]
        return config


_CLASSES = {cls.__name__: cls for cls in (Int, Float, Choice, Boolean, Fixed)}


class HyperParameters:
    """The search space and the values of one trial.

    Example:
        >>> hp = HyperParameters()
        >>> hp.Int("units", 8, 64, step=8)
        8
        >>> hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        0.0001
        >>> hp.Choice("optimizer", ["adam", "sgd"])
        'adam'
        >>> with hp.conditional_scope("optimizer", "sgd"):   # only when optimizer == "sgd"
        ...     hp.Float("momentum", 0.0, 0.9) is None        # inactive in this trial
        True
        >>> hp.grid_size(q=5)            # 5 units x 5 rates x (adam + 5 momenta with sgd)
        150
    """

    def __init__(self):
        self.space: list[HyperParameter] = []
        self.values: dict = {}
        self._scopes: list[tuple[str, list]] = []
        #: names whose definition here overrides the hypermodel's (KerasTuner's predefined
        #: hyperparameters: ``Tuner(hyperparameters=...)``, e.g. narrowed by coarse_to_fine)
        self.predefined: set[str] = set()

    def override(self) -> HyperParameters:
        """A copy whose every hyperparameter overrides a definition of the same name by the
        hypermodel (how a tuner's ``hyperparameters=`` argument is used, as KerasTuner)."""
        copy = self.with_values(self.values)
        copy.predefined = {hp.name for hp in self.space}
        return copy

    # ------------------------------------------------------------------ registration
    def _register(self, hp: HyperParameter):
        existing = self._get(hp.name)
        if existing is None:
            self.space.append(hp)
            existing = hp
        elif existing.get_config() != hp.get_config() and hp.name not in self.predefined:
            raise ValueError(f"HyperParameters: {hp.name!r} is defined twice differently: "
                             f"{existing!r} and {hp!r}")
        if not existing.is_active(self.values):
            return None
        if existing.name not in self.values:
            self.values[existing.name] = existing.default
        return self.values[existing.name]

    def _get(self, name: str) -> HyperParameter | None:
        for hp in self.space:
            if hp.name == name:
                return hp
        return None

    def Int(self, name, min_value, max_value, step=None, sampling="linear",  # noqa: N802
            default=None) -> int:
        """Register an integer hyperparameter and return its value in this trial."""
        return self._register(Int(name, min_value, max_value, step, sampling, default,
                                  self._scopes))

    def Float(self, name, min_value, max_value, step=None, sampling="linear",  # noqa: N802
              default=None) -> float:
        """Register a real hyperparameter (``sampling="log"`` for scales) and return its
        value."""
        return self._register(Float(name, min_value, max_value, step, sampling, default,
                                    self._scopes))

    def Choice(self, name, values, default=None):  # noqa: N802
        """Register a choice among ``values`` and return the chosen one."""
        return self._register(Choice(name, values, default, self._scopes))

    def Boolean(self, name, default=False) -> bool:  # noqa: N802
        """Register a boolean hyperparameter and return its value."""
        return self._register(Boolean(name, default, self._scopes))

    def Fixed(self, name, value):  # noqa: N802
        """Register a constant and return it."""
        return self._register(Fixed(name, value, self._scopes))

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values):
        """Hyperparameters registered inside are active only when ``parent_name`` has one of
        ``parent_values`` (a value or a list)."""
        if self._get(parent_name) is None:
            raise ValueError(f"conditional_scope: the parent {parent_name!r} must be registered "
                             "first")
        values = parent_values if isinstance(parent_values, (list, tuple)) else [parent_values]
        self._scopes.append((parent_name, list(values)))
        try:
            yield
        finally:
            self._scopes.pop()

    # ------------------------------------------------------------------ values
    def get(self, name: str):
        """The value of ``name`` in this trial."""
        if name in self.values:
            return self.values[name]
        if self._get(name) is None:
            raise KeyError(f"HyperParameters: no hyperparameter named {name!r}; known: "
                           f"{[hp.name for hp in self.space]}")
        raise KeyError(f"HyperParameters: {name!r} is not active in this trial")

    def __getitem__(self, name: str):
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def active(self, values: dict | None = None) -> list[HyperParameter]:
        """The hyperparameters active for ``values`` (default: this trial's), in order."""
        values = self.values if values is None else values
        return [hp for hp in self.space if hp.is_active(values)]

    def with_values(self, values: dict) -> HyperParameters:
        """A copy of the space holding ``values`` (checked against the ranges)."""
        for name, value in values.items():
            hp = self._get(name)
            if hp is None:
                raise ValueError(f"HyperParameters: unknown hyperparameter {name!r}")
            if not hp.contains(value):
                raise ValueError(f"HyperParameters: value {value!r} of {name!r} is outside "
                                 f"{hp!r}")
        copy = HyperParameters()
        copy.space = list(self.space)
        copy.values = dict(values)
        copy.predefined = set(self.predefined)
        return copy

    def grid_size(self, q: int = 5) -> int:
        """The number of points of the grid (``q`` values per continuous range); with no
        conditions it is the product of the sizes, ``q**m`` for ``m`` continuous ranges."""
        return len(grid_points(self, q))

    # ------------------------------------------------------------------ JSON
    def get_config(self) -> dict:
        config = {"space": [hp.get_config() for hp in self.space], "values": dict(self.values)}
        if self.predefined:
            config["predefined"] = sorted(self.predefined)
        return config

    @classmethod
    def from_config(cls, config: dict) -> HyperParameters:
        hps = cls()
        for item in config.get("space", []):
            item = dict(item)
            kind = _CLASSES.get(item.pop("class_name", None))
            if kind is None:
                raise ValueError(f"HyperParameters.from_config: unknown class in {item!r}")
            item["conditions"] = [tuple(c) for c in item.get("conditions", [])]
            hps.space.append(kind(**item))
        hps.values = dict(config.get("values", {}))
        hps.predefined = set(config.get("predefined", []))
        return hps

    def __repr__(self) -> str:
        return f"HyperParameters({self.values})"


def grid_points(hps: HyperParameters, q: int = 5) -> list[dict]:
    """Every point of the grid, as value dicts, inactive hyperparameters left out.

    Each hyperparameter contributes its ``grid(q)`` values, and a conditional one only below
    the parent values that activate it, so the count is exact (no duplicate points).
    """
    if isinstance(q, bool) or not isinstance(q, int) or q < 1:
        raise ValueError(f"grid: q must be a positive int, got {q!r}")
    points = [{}]
    for hp in hps.space:
        expanded = []
        for point in points:
            if hp.is_active(point):
                expanded.extend({**point, hp.name: value} for value in hp.grid(q))
            else:
                expanded.append(point)
        points = expanded
    return points
