"""Training checkpoints: everything needed so that a resumed run equals one never stopped.

A checkpoint is an ordinary model file (``save_model``) whose ``metadata.json`` also holds a
``training_state``::

    {"epoch": 3,                       # the next epoch to run
     "step": 24,                       # optimizer.iterations, checked against the state
     "optimizer_variables": ["dense/kernel", ...],   # which weight each slot index belongs to
     "rng": {"fit": {...}, "global": {...}, "layers": {"dropout": {...}}}}

The random states are ``numpy.random.Generator.bit_generator.state`` dicts (plain JSON): the
generator ``fit`` shuffles with (``model.fit_state.rng``), the process-wide one of
``nervenet.backend``, and the own generator of every layer that has one (Dropout,
GaussianNoise, augmentation, stochastic pooling). Weights, optimizer state and random states
live in one file written atomically, so a kill at any moment leaves a checkpoint that is
entirely of one epoch or of the next.
"""

from __future__ import annotations

import os

import numpy as np

from nervenet import backend
from nervenet.saving import (
    ModelFormatError,
    _model_weights,
    _optimizer_state,
    check_optimizer_keys,
    open_model_file,
    save_model,
    split_tensors,
    stage_weights,
)

__all__ = ["load_training_state", "restore_checkpoint", "save_checkpoint"]


def _layer_generators(layer, prefix: str = "") -> dict[str, np.random.Generator]:
    """Every layer's own generator (attribute ``_rng``), keyed by the layer's path."""
    found = {}
    for sub in layer.sublayers:
        path = f"{prefix}{sub.name}"
        rng = getattr(sub, "_rng", None)
        if isinstance(rng, np.random.Generator):
            found[path] = rng
        found.update(_layer_generators(sub, path + "/"))
    return found


def _generators(model) -> dict:
    generators = {"global": backend.default_rng(), "layers": _layer_generators(model)}
    fit_state = getattr(model, "fit_state", None)  # a Model's (trainer.FitState)
    fit_rng = None if fit_state is None else fit_state.rng
    if fit_rng is not None:
        generators["fit"] = fit_rng
    return generators


def save_checkpoint(model, filepath, epoch: int) -> None:
    """Save ``model`` with its training state, as the start of epoch ``epoch`` (0-based: the
    next epoch to run), atomically.

    Example:
        >>> import nervenet, os, tempfile
        >>> from nervenet import layers, models
        >>> model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.nervenet")
        >>> save_checkpoint(model, path, epoch=0)
        >>> load_training_state(path)["epoch"]
        0
    """
    paths = _model_weights(model)
    _, order = _optimizer_state(model, paths)
    generators = _generators(model)
    rng = {"global": generators["global"].bit_generator.state,
           "layers": {path: g.bit_generator.state for path, g in generators["layers"].items()}}
    if "fit" in generators:
        rng["fit"] = generators["fit"].bit_generator.state
    optimizer = getattr(model, "optimizer", None)
    state = {"epoch": int(epoch), "step": int(getattr(optimizer, "iterations", 0)),
             "optimizer_variables": order, "rng": rng}
    save_model(model, filepath, training_state=state)


def load_training_state(filepath) -> dict:
    """The ``training_state`` of a checkpoint file (every format check of a model file done).

    Raises:
        ModelFormatError: not a checkpoint, or a malformed one.
    """
    where = os.fspath(filepath)
    with open_model_file(where) as (_, metadata, _):
        return _training_state(metadata, where)


def _training_state(metadata: dict, where: str) -> dict:
    state = metadata.get("training_state")
    if not isinstance(state, dict):
        raise ModelFormatError(f"{where}: not a training checkpoint (metadata.json has no "
                               "training_state)")
    for key, kind in (("epoch", int), ("step", int), ("optimizer_variables", list),
                      ("rng", dict)):
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise ModelFormatError(f"{where}: training_state[{key!r}] must be a "
                                   f"{kind.__name__}, got {state.get(key)!r}")
    if state["epoch"] < 0 or state["step"] < 0:
        raise ModelFormatError(f"{where}: training_state epoch and step must be >= 0, got "
                               f"{state['epoch']} and {state['step']}")
    return state


def _set_generator(generator: np.random.Generator, value, what: str, where: str) -> None:
    try:
        generator.bit_generator.state = value
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ModelFormatError(f"{where}: the saved state of the {what} random generator "
                               f"does not fit it: {error}") from None


def restore_checkpoint(model, filepath) -> dict:
    """Load a checkpoint into ``model`` (built and compiled as when it was saved): weights,
    optimizer state and every random generator's state. Everything is read and checked
    (weights, the optimizer state on a scratch copy of the optimizer, the generator states on
    scratch generators) before anything changes: a bad checkpoint leaves the model exactly as
    it was.

    Returns:
        The training state (``epoch``: the next epoch to run, ``step``, ...).

    Raises:
        ModelFormatError: a malformed checkpoint, or one of another model.
    """
    where = os.fspath(filepath)
    with open_model_file(where) as (_, metadata, tensors):
        state = _training_state(metadata, where)
        paths = model.named_weights()
        weights, optimizer_tensors = split_tensors(tensors, paths)
        staged = stage_weights(model, weights, where)
        optimizer_state = {key: optimizer_tensors[key] for key in optimizer_tensors}
    order = state["optimizer_variables"]
    if not all(isinstance(p, str) and p in paths for p in order):
        raise ModelFormatError(f"{where}: optimizer_variables must name weights of the model, "
                               f"got {order!r}")
    variables = [paths[p] for p in order]
    _check_optimizer_state(model.optimizer, variables, optimizer_state, state["step"], where)
    generators = _generators(model)
    saved_rng = _check_generator_states(generators, state["rng"], where)
    for weight, value in staged:  # nothing below can fail: all was checked above
        backend.copy_into(weight.data, value)
    if optimizer_state and model.optimizer is not None:
        model.optimizer.build(variables)
        model.optimizer.set_state(optimizer_state)
    for what, generator in [("global", generators["global"]), ("fit", generators.get("fit")),
                            *generators["layers"].items()]:
        value = saved_rng.get(what) if what in ("global", "fit") else saved_rng["layers"][what]
        if generator is not None and value is not None:
            _set_generator(generator, value, what, where)
    return state


def _check_optimizer_state(optimizer, variables: list, state: dict, step: int,
                           where: str) -> None:
    """Check a checkpoint's optimizer state by restoring it into a scratch copy of
    ``optimizer`` (same class and configuration), so that the real one is not touched."""
    if not state or optimizer is None:
        return
    try:
        check_optimizer_keys(state, len(variables))
        iterations = np.asarray(state.get("iterations", -1))
        if iterations.shape != () or iterations.dtype.kind not in "iu":
            raise ValueError(f"'iterations' must be an integer scalar, got {iterations.dtype} "
                             f"of shape {iterations.shape}")
        if int(iterations) != step:
            raise ValueError(f"the optimizer state is at step {int(iterations)}, the training "
                             f"state says {step}")
        scratch = type(optimizer).from_config(optimizer.get_config())
        scratch.build(variables)
        scratch.set_state(state)
    except (ValueError, TypeError) as error:
        raise ModelFormatError(f"{where}: cannot restore the optimizer state: "
                               f"{error}") from None


def _check_generator_states(generators: dict, saved_rng: dict, where: str) -> dict:
    """Check every saved generator state on a scratch generator (all or nothing)."""
    if "global" not in saved_rng:
        raise ModelFormatError(f"{where}: the training state has no global random state")
    layers = saved_rng.get("layers", {})
    if not isinstance(layers, dict) or set(layers) != set(generators["layers"]):
        raise ModelFormatError(f"{where}: the checkpoint has random states for layers "
                               f"{sorted(layers) if isinstance(layers, dict) else layers!r}, "
                               f"the model's layers with generators are "
                               f"{sorted(generators['layers'])}")
    for what, value in [("global", saved_rng.get("global")), ("fit", saved_rng.get("fit")),
                        *layers.items()]:
        if value is not None:
            _set_generator(np.random.default_rng(0), value, what, where)
    return {**saved_rng, "layers": layers}
