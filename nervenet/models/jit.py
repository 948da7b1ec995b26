"""``Model.compile(jit_compile=...)``: captured training and inference steps.

The first two batches of a kind (the same input shapes and dtypes, the same layers, weights
and trainable flags, the same optimizer) run eagerly while ``autograd.capture.Tape`` records
them; from the third on, ``autograd.capture.Program`` replays the recorded array calls, with
no Layer, Tensor or Function made, and the optimizer's ``apply_gradients`` updates the weights
as in an eager step (so a learning rate changed by a callback, or a schedule, holds at once).
Replay equals the eager step to the last bit on the same BLAS; ``jit_compile=False`` is that
eager reference.

Where a step cannot be captured (a subclassed model or custom layer whose ``call`` is Python
code that may branch on the data, a custom ``train_step``, an array computed outside the
recorded operations, ...), ``jit_compile="auto"`` runs it eagerly and says why in one log line
of the ``nervenet.jit`` logger; ``jit_compile=True`` raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np

from nervenet import backend
from nervenet.autograd.capture import CaptureError, Program, Tape
from nervenet.layers.base import (
    nested_layers,
    state_transaction,
    structure_version,
    update_state,
)
from nervenet.models import data_adapter

logger = logging.getLogger("nervenet.jit")

#: the most input signatures captured per kind of step (each holds one batch's Functions)
MAX_SIGNATURES = 8

#: the values ``compile(jit_compile=...)`` accepts
MODES = ("auto", True, False)


def check_mode(value):
    """``value`` if it is a ``jit_compile`` mode, else a ValueError naming the argument."""
    if not any(value is mode or (isinstance(value, str) and value == mode) for mode in MODES):
        raise ValueError(f"compile: jit_compile must be 'auto', True or False, got {value!r}")
    return value


class CapturedSteps:
    """The captured steps of one compiled model (``model.compile(jit_compile=mode)``).

    Args:
        model: the compiled Model.
        mode: ``"auto"`` (fall back to eager, with a log line) or ``True`` (raise).
        trainer: the class defining the eager ``train_step`` and ``test_step``: a subclass
            that overrides one of them runs it eagerly.
    """

    def __init__(self, model, mode, trainer):
        self.model = model
        self.mode = mode
        self.trainer = trainer
        # signature -> _Replay, or the recordings so far (a list), or the reason (a str)
        self.entries: dict[tuple, object] = {}
        self.reported: set[str] = set()
        self.lock = threading.Lock()
        self.retries: dict[tuple, int] = {}  # signature -> recordings dropped (see _record_again)
        if hasattr(model.optimizer, "minimize"):
            self._refuse(f"{type(model.optimizer).__name__} is a second-order optimizer, which "
                         "trains full-batch through its own minimize")

    def train_step(self, x, y, sample_weight=None) -> tuple[float, object]:
        """``model.train_step(x, y, sample_weight)``: replayed, captured, or eager."""
        return self._step("train", (x, y, sample_weight), _feeds(x, y, sample_weight))

    def test_step(self, x, y, sample_weight=None) -> tuple[float, object]:
        """``model.test_step(x, y, sample_weight)``: the loss and outputs of one batch."""
        return self._step("test", (x, y, sample_weight), _feeds(x, y, sample_weight))

    def predict_step(self, x):
        """The model's outputs (arrays) for the batch ``x``, in inference mode."""
        return self._step("predict", (x,), _feeds(x, None, None))

    def _eager(self, kind: str):
        return getattr(self.model, f"{kind}_step")

    def _step(self, kind: str, arguments: tuple, feeds: list[np.ndarray]):
        """Replay the step of this signature, or run it eagerly (recording it the first two
        times: the second recording makes the replay)."""
        model = self.model
        key = (kind, structure_version(), id(model.optimizer),
               tuple([(a.shape, a.dtype.str) for a in feeds]))
        entry = self.entries.get(key)
        if entry is None:
            entry = self._new_entry(key)
        if type(entry) is _Replay and self.lock.acquire(blocking=False):
            try:  # (another thread replaying this model's steps: this one runs eagerly)
                return entry(feeds)
            finally:
                self.lock.release()
        eager = self._eager(kind)
        if type(entry) in (_Replay, str):
            return eager(*arguments)
        reason = self._reason(kind)
        if reason is not None:
            self.entries[key] = reason
            self._refuse(reason)
            return eager(*arguments)
        states = [w.data.copy() for w in model.non_trainable_weights] if kind == "train" else []
        tape = Tape()
        with tape:
            result = eager(*arguments)
        if kind != "predict" and not math.isfinite(result[0]):
            return result  # a refused step: nothing was written; record another batch
        try:
            if not tape.state_updates:
                _check_state_unchanged(model, states)
            penalty = None if kind == "predict" else model.last_regularization_loss
            recordings = (entry or []) + [(tape, feeds, result, penalty)]
            if len(recordings) == 2 and not _every_array_differs(recordings):
                recordings = self._record_again(key, recordings)
            self.entries[key] = recordings if len(recordings) < 2 else _Replay(
                model, kind, recordings)
        except CaptureError as error:
            self.entries[key] = str(error)
            self._refuse(str(error))
        return result

    def _record_again(self, key: tuple, recordings: list) -> list:
        """Two batches that share an array (the same targets, constant sample weights) cannot
        tell an array derived from it from a constant: keep the newer recording and wait for
        a batch that differs in every array, ``MAX_SIGNATURES`` times at most."""
        self.retries[key] = self.retries.get(key, 0) + 1
        if self.retries[key] < MAX_SIGNATURES:
            return recordings[1:]
        raise CaptureError(f"{self.retries[key] + 1} batches in a row repeated one of their "
                           "arrays (inputs, targets or sample weights), so the arrays derived "
                           "from it cannot be told from constants")

    def _new_entry(self, key: tuple):
        """``None`` (record this signature), or why not: the steps of an older structure or
        optimizer are forgotten, and a kind of step has at most ``MAX_SIGNATURES``."""
        if any(other[1:3] != key[1:3] for other in self.entries):
            self.entries = {k: v for k, v in self.entries.items() if k[1:3] == key[1:3]}
        if sum(other[0] == key[0] for other in self.entries) < MAX_SIGNATURES:
            return None
        reason = (f"more than {MAX_SIGNATURES} input shapes for {key[0]} steps; the "
                  "others run eagerly")
        self._refuse(reason)
        return reason

    def _reason(self, kind: str) -> str | None:
        """Why this model's ``kind`` steps cannot be captured (``None``: they can)."""
        model = self.model
        for method in ("train", "test", "predict"):
            step = getattr(model, f"{method}_step")
            if kind == method and getattr(step, "__func__", step) is not getattr(
                    self.trainer, f"{method}_step"):  # overridden, or replaced on the model
                return f"{type(model).__name__} overrides {method}_step"
        if kind == "train" and model.data_parallel is not None:
            return "a data-parallel fit (nervenet.distributed) reduces gradients between ranks"
        devices = {backend.device_of(w.data) for w in model.weights} - {"cpu"}
        if devices:
            return f"captured steps run on the CPU; the model is on {devices.pop()!r}"
        if not model.has_fixed_outputs():
            return (f"{type(model).__name__} is a subclassed model: its call is Python code "
                    "that may depend on the data")
        for layer in nested_layers(model):
            if not type(layer).__module__.startswith("nervenet."):
                return (f"layer {layer.name!r} ({type(layer).__name__}) is not a built-in layer: "
                        "its call is Python code that may depend on the data")
        if kind != "predict":
            for loss in model._output_losses.losses:
                if loss is not None and not type(loss).__module__.startswith("nervenet."):
                    return f"the loss {loss!r} is not a built-in loss"
        return None

    def _refuse(self, reason: str) -> None:
        if self.mode is True:
            raise ValueError(f"jit_compile=True: the step of model {self.model.name!r} cannot "
                             f"be captured: {reason}")
        if reason not in self.reported:
            self.reported.add(reason)
            logger.info("jit_compile='auto': model %r runs eagerly: %s", self.model.name,
                        reason)


class _Replay:
    """A captured step: ``"train"`` (forward, loss, backward and update, as ``train_step``),
    ``"test"`` (the loss and outputs, as ``test_step``) or ``"predict"`` (the outputs)."""

    def __init__(self, model, kind: str, recordings):
        (tape, feeds, _, _), (tape2, feeds2, result, penalty) = recordings
        self.model, self.kind = model, kind
        self.wanted = list(model.trainable_weights) if kind == "train" else []
        outputs = result if kind == "predict" else result[1]
        loss = self.penalty = None
        if kind != "predict":
            loss = tape2.records[-1][3][0] if tape2.records else None
            if loss is None or not _same_float(float(loss.data), result[0]):
                raise CaptureError("the loss is not the last recorded operation")
            if penalty is not None:
                function, _, inputs = tape2.records[-1][:3]
                if type(function).__name__ != "Add" or not _same_float(
                        float(inputs[1].data), penalty):
                    raise CaptureError("the regularization penalty is not the last term added")
                self.penalty = inputs[1]
        self.loss = loss
        # each output's loss (a model with several): the arrays compute_loss left in ``last``
        self.output_losses = [tape2.tensor_with(value) if isinstance(value, np.ndarray) else None
                              for value in model._output_losses.last] if (
            kind != "predict" and model._output_losses.multi) else []
        self.several = type(outputs) if isinstance(outputs, (list, tuple)) else None
        self.outputs = [tape2.tensor_with(array) for array in _listed(outputs)]
        handed_out = self.outputs + [t for t in (loss, self.penalty, *self.output_losses)
                                     if t is not None]
        self.program = Program([tape, tape2], [feeds, feeds2], model.weights, self.wanted,
                               loss if kind == "train" else None, keep=handed_out)

    def __call__(self, feeds):
        if self.kind == "train":
            return self._train(feeds)
        self.program.forward(feeds)
        result = self._outputs() if self.kind == "predict" else (self._loss(), self._outputs())
        self.program.release(self.outputs)
        return result

    def _outputs(self):
        if self.several is None:
            return self.outputs[0].data
        return self.several(t.data for t in self.outputs)

    def _loss(self) -> float:
        penalty = None if self.penalty is None else float(self.penalty.data)
        if penalty is not None or self.model.last_regularization_loss is not None:
            self.model.last_regularization_loss = penalty  # (a Layer attribute costs ~10 us)
        last = self.model._output_losses.last
        for index, tensor in enumerate(self.output_losses):
            if tensor is not None:
                last[index] = tensor.data
        return float(self.loss.data)

    def _train(self, feeds):
        try:
            return self._train_step(feeds)
        finally:
            self.program.release()

    def _train_step(self, feeds):
        model, program = self.model, self.program
        with state_transaction(model) as step:
            program.forward(feeds)
            for apply in program.state_updates():
                update_state(apply)
            value, predictions = self._loss(), self._outputs()
            if not math.isfinite(value):
                return value, predictions
            gradients = program.backward()
            pairs = [(g, w) for g, w in zip(gradients, self.wanted) if g is not None]
            model.optimizer.apply_own_gradients([g for g, _ in pairs], [w for _, w in pairs])
            step.commit()
        model.apply_constraints()
        return value, predictions


def _feeds(x, y, sample_weight) -> list[np.ndarray]:
    """The batch's arrays in one list: inputs, targets, sample weights."""
    feeds = list(data_adapter.flatten(x))
    if y is not None:
        feeds += data_adapter.flatten(y)
    if sample_weight is not None:
        feeds.append(sample_weight)
    return [np.asarray(getattr(a, "data", a)) for a in feeds]


def _every_array_differs(recordings) -> bool:
    """Whether the two recorded batches differ in every array."""
    (_, first, _, _), (_, second, _, _) = recordings
    return all(a is not b and not np.array_equal(a, b) for a, b in zip(first, second))


def _check_state_unchanged(model, before: list[np.ndarray]) -> None:
    for weight, value in zip(model.non_trainable_weights, before):
        if not np.array_equal(weight.data, value, equal_nan=True):
            raise CaptureError(f"the non-trainable weight {weight.name!r} changes outside the "
                               "recorded operations")


def _same_float(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def _listed(values) -> list:
    return list(values) if isinstance(values, (list, tuple)) else [values]
