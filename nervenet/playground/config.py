"""The playground's setup: every choice on the page, its default and its allowed values.

A setup is a flat JSON object. ``validate`` checks a (partial) one from a request and returns
the full, merged setup, or raises ``ValueError`` naming the field, what it accepts and what
came; nothing is coerced (``"3"`` is not 3, ``true`` is not 1).
"""

from __future__ import annotations

import math

from nervenet.playground.datasets import CLASSIFICATION, DATASETS, FEATURES, REGRESSION

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "step")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs", "newton")
SECOND_ORDER = ("lbfgs", "newton")
INITIALIZERS = ("glorot_uniform", "he_normal", "lecun_normal", "random_normal")
REGULARIZATIONS = ("none", "l1", "l2")
PROBLEMS = ("classification", "regression")
#: backprop: a network trained by its optimizer; perceptron: one step unit trained by
#: Rosenblatt's rule; fixed: the notes' XOR network of step units with hand-set weights
MODES = ("backprop", "perceptron", "fixed")
MAX_LAYERS, MAX_UNITS = 6, 8
#: Newton's method solves with the full Hessian: (parameters)^2 entries per step
NEWTON_MAX_PARAMS = 150

DEFAULTS = {
    "dataset": "circle", "problem": "classification", "noise": 0.0, "train_fraction": 0.5,
    "samples": 500, "batch_size": 10, "features": ["x1", "x2"], "hidden": [4, 2],
    "activation": "tanh", "sigmoid_a": 1.0, "learning_rate": 0.03, "optimizer": "sgd",
    "initializer": "glorot_uniform", "regularization": "none", "regularization_rate": 0.0,
    "batch_norm": False, "dropout": 0.0, "mode": "backprop", "seed": 0,
}

# field: (kind, allowed) with kind "choice" (a tuple of strings), "int"/"float" (a closed
# range), "bool", "features" or "hidden"
_FIELDS = {
    "dataset": ("choice", DATASETS), "problem": ("choice", PROBLEMS),
    "noise": ("float", (0.0, 0.5)), "train_fraction": ("float", (0.1, 0.9)),
    "samples": ("int", (20, 2000)), "batch_size": ("int", (1, 100)),
    "features": ("features", tuple(FEATURES)), "hidden": ("hidden", (0, MAX_LAYERS)),
    "activation": ("choice", ACTIVATIONS), "sigmoid_a": ("float", (0.1, 10.0)),
    "learning_rate": ("float", (1e-5, 10.0)), "optimizer": ("choice", OPTIMIZERS),
    "initializer": ("choice", INITIALIZERS), "regularization": ("choice", REGULARIZATIONS),
    "regularization_rate": ("float", (0.0, 10.0)), "batch_norm": ("bool", None),
    "dropout": ("float", (0.0, 0.9)), "mode": ("choice", MODES), "seed": ("int", (0, 2**31 - 1)),
}


def _check_field(name: str, value):
    kind, allowed = _FIELDS[name]
    if kind == "choice":
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif kind in ("int", "float"):
        low, high = allowed
        numeric = (int, float) if kind == "float" else (int,)
        if isinstance(value, bool) or not isinstance(value, numeric) or not (
                math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name} must be {'an int' if kind == 'int' else 'a number'} "
                             f"from {low} to {high}, got {value!r}")
        value = float(value) if kind == "float" else value
    elif kind == "features":
        if not isinstance(value, list) or not value or any(
                not isinstance(v, str) or v not in allowed for v in value) or (
                len(set(value)) != len(value)):
            raise ValueError(f"features must be a non-empty list of distinct names from "
                             f"{list(allowed)}, got {value!r}")
        value = [v for v in allowed if v in value]  # canonical order
    else:
        if not isinstance(value, list) or len(value) > MAX_LAYERS or any(
                isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_UNITS
                for v in value):
            raise ValueError(f"hidden must be a list of at most {MAX_LAYERS} layer sizes, each "
                             f"an int from 1 to {MAX_UNITS}, got {value!r}")
        value = list(value)
    return value


def _check_combination(setup: dict) -> None:
    problem, dataset = setup["problem"], setup["dataset"]
    if dataset not in (CLASSIFICATION if problem == "classification" else REGRESSION):
        raise ValueError(f"dataset {dataset!r} does not fit problem {problem!r}: choose one of "
                         f"{list(CLASSIFICATION if problem == 'classification' else REGRESSION)}")
    mode, activation = setup["mode"], setup["activation"]
    if mode == "backprop" and activation == "step":
        raise ValueError("activation 'step' has derivative 0 wherever it exists, so "
                         "backpropagation cannot train it: choose mode 'perceptron' "
                         "(Rosenblatt's rule) or 'fixed' (hand-set weights)")
    if mode == "perceptron" and (problem != "classification" or setup["hidden"]
                                 or activation != "step"):
        raise ValueError("mode 'perceptron' is one step unit: it needs problem "
                         "'classification', hidden [] and activation 'step', got "
                         f"{problem!r}, {setup['hidden']} and {activation!r}")
    if mode == "fixed" and (dataset != "xor_gate" or setup["hidden"] != [2]
                            or setup["features"] != ["x1", "x2"]
                            or activation not in ("step", "sigmoid")):
        raise ValueError("mode 'fixed' is the notes' XOR network: it needs dataset 'xor_gate', "
                         "features ['x1', 'x2'], hidden [2] and activation 'step' or "
                         "'sigmoid'")


def validate(update: dict, base: dict | None = None) -> dict:
    """The setup ``base`` (default ``DEFAULTS``) with the fields of ``update`` checked and set.

    Raises:
        ValueError: an unknown field, a value of the wrong type or out of range, or a
            combination that cannot be built (a regression dataset for classification, ...).
    """
    if not isinstance(update, dict):
        raise ValueError(f"the setup must be a JSON object, got {type(update).__name__}")
    unknown = sorted(set(update) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; the setup has {sorted(_FIELDS)}")
    setup = dict(DEFAULTS if base is None else base)
    for name, value in update.items():
        setup[name] = _check_field(name, value)
    _check_combination(setup)
    _check_trainable(setup)
    return setup


def parameter_count(setup: dict) -> int:
    """Weights and biases of the network the setup describes (batch-norm scales included)."""
    sizes = [len(setup["features"])] + setup["hidden"] + [1]
    count = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    return count + (2 * sum(setup["hidden"]) if setup["batch_norm"] else 0)


def _check_trainable(setup: dict) -> None:
    # Newton's Hessian grows with the square of the parameter count
    if setup["optimizer"] == "newton" and setup["mode"] == "backprop" and (
            parameter_count(setup) > NEWTON_MAX_PARAMS):
        raise ValueError(f"optimizer 'newton' is for small networks: at most "
                         f"{NEWTON_MAX_PARAMS} parameters, this one has "
                         f"{parameter_count(setup)}; use 'lbfgs'")
