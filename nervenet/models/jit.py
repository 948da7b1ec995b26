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

import numpy as np

from nervenet.autograd import no_grad
from nervenet.autograd.capture import CaptureError, Program, Tape
from nervenet.layers.base import nested_layers, state_transaction, structure_version
from nervenet.models import data_adapter

logger = logging.getLogger("nervenet.jit")

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
        eager_train_step: the ``train_step`` of the Model class: a subclass that overrides it
            is run eagerly.
    """

    def __init__(self, model, mode, eager_train_step):
        self.model = model
        self.mode = mode
        self.eager_train_step = eager_train_step
        # signature -> Program, or the recordings so far (a list), or the reason (a str)
        self.entries: dict[tuple, object] = {}
        self.reported: set[str] = set()
        if hasattr(model.optimizer, "minimize"):
            self._refuse(f"{type(model.optimizer).__name__} is a second-order optimizer, which "
                         "trains full-batch through its own minimize")

    # ------------------------------------------------------------------ training
    def train_step(self, x, y, sample_weight=None):
        """``model.train_step(x, y, sample_weight)``: replayed, captured, or eager."""
        feeds = _feeds(x, y, sample_weight)
        key = self._signature(feeds, True)
        entry = self.entries.get(key)
        if type(entry) is _TrainReplay:
            return entry(feeds)
        if entry is None or type(entry) is list:
            entry = self._capture_train(key, entry or [], feeds, x, y, sample_weight)
            if type(entry) is tuple:
                return entry
        return self.model.train_step(x, y, sample_weight)

    def _capture_train(self, key, recordings, feeds, x, y, sample_weight):
        """Run the step eagerly while recording it; the second recording makes the replay."""
        model = self.model
        reason = self._reason()
        if reason is not None:
            self.entries[key] = reason
            self._refuse(reason)
            return None
        states = [w.data.copy() for w in model.non_trainable_weights]
        tape = Tape()
        with tape:
            value, predictions = model.train_step(x, y, sample_weight)
        if not math.isfinite(value):  # nothing was written: record another batch
            self.entries[key] = recordings
            return value, predictions
        try:
            _check_state_unchanged(model, states)
            recordings.append((tape, feeds, value, predictions, model.last_regularization_loss))
            self.entries[key] = recordings
            if len(recordings) == 2:
                self.entries[key] = _TrainReplay(model, recordings)
        except CaptureError as error:
            self.entries[key] = str(error)
            self._refuse(str(error))
        return value, predictions

    # ------------------------------------------------------------------ inference
    def predict_batch(self, x):
        """The model's outputs (arrays) for the batch ``x``, in inference mode."""
        feeds = _feeds(x, None, None)
        key = self._signature(feeds, False)
        entry = self.entries.get(key)
        if type(entry) is _InferenceReplay:
            return entry(feeds)
        if entry is None or type(entry) is list:
            reason = self._reason(training=False)
            if reason is None:
                return self._capture_inference(key, entry or [], feeds, x)
            self.entries[key] = reason
            self._refuse(reason)
        with no_grad():
            return _arrays(self.model(x, training=False))

    def _capture_inference(self, key, recordings, feeds, x):
        tape = Tape()
        with no_grad(), tape:
            outputs = self.model(x, training=False)
        recordings.append((tape, feeds, outputs))
        self.entries[key] = recordings
        if len(recordings) == 2:
            try:
                self.entries[key] = _InferenceReplay(self.model, recordings)
            except CaptureError as error:
                self.entries[key] = str(error)
                self._refuse(str(error))
        return _arrays(outputs)

    # ------------------------------------------------------------------ checks
    def _signature(self, feeds, training: bool) -> tuple:
        return (training, structure_version(), id(self.model.optimizer),
                tuple([(a.shape, a.dtype.str) for a in feeds]))

    def _reason(self, training: bool = True) -> str | None:
        """Why this model's steps cannot be captured (``None``: they can)."""
        model = self.model
        if training and type(model).train_step is not self.eager_train_step:
            return f"{type(model).__name__} overrides train_step"
        if training and model.data_parallel is not None:
            return "a data-parallel fit (nervenet.distributed) reduces gradients between ranks"
        if training and model._output_losses.multi:
            return "the model has several outputs"
        if not model.has_fixed_outputs():
            return (f"{type(model).__name__} is a subclassed model: its call is Python code "
                    "that may depend on the data")
        for layer in nested_layers(model):
            if not type(layer).__module__.startswith("nervenet."):
                return (f"layer {layer.name!r} ({type(layer).__name__}) is not a built-in layer: "
                        "its call is Python code that may depend on the data")
        if training:
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


class _TrainReplay:
    """A captured training step: forward, loss, backward and update, as ``train_step``."""

    def __init__(self, model, recordings):
        (tape, feeds, _, _, _), (tape2, feeds2, value, predictions, penalty) = recordings
        self.model = model
        self.wanted = list(model.trainable_weights)
        loss = tape2.records[-1][3][0] if tape2.records else None
        if loss is None or not _same_float(float(loss.data), value):
            raise CaptureError("the loss is not the last recorded operation")
        self.program = Program([tape, tape2], [feeds, feeds2], model.weights, self.wanted, loss)
        self.outputs = [tape2.tensor_with(p) for p in _listed(predictions)]
        self.single = not isinstance(predictions, list)
        self.penalty = None
        if penalty is not None:
            function, _, inputs, _, _, _ = tape2.records[-1]
            if type(function).__name__ != "Add" or not _same_float(
                    float(inputs[1].data), penalty):
                raise CaptureError("the regularization penalty is not the last term added")
            self.penalty = inputs[1]

    def __call__(self, feeds):
        model, program = self.model, self.program
        with state_transaction(model) as step:
            program.forward(feeds)
            value = float(program.loss.data)
            predictions = [t.data for t in self.outputs]
            predictions = predictions[0] if self.single else predictions
            model.last_regularization_loss = (None if self.penalty is None
                                              else float(self.penalty.data))
            if not math.isfinite(value):
                return value, predictions
            gradients = program.backward()
            model.optimizer.apply_gradients(
                [(g, w) for g, w in zip(gradients, self.wanted) if g is not None])
            step.commit()
        model.apply_constraints()
        return value, predictions


class _InferenceReplay:
    """A captured inference forward (predict)."""

    def __init__(self, model, recordings):
        (tape, feeds, _), (tape2, feeds2, outputs) = recordings
        self.program = Program([tape, tape2], [feeds, feeds2], model.weights)
        self.kind = type(outputs) if isinstance(outputs, (list, tuple)) else None
        self.outputs = [tape2.tensor_with(o.data) for o in _listed(outputs)]

    def __call__(self, feeds):
        self.program.forward(feeds)
        if self.kind is None:
            return self.outputs[0].data
        return self.kind(t.data for t in self.outputs)


def _feeds(x, y, sample_weight) -> list[np.ndarray]:
    """The batch's arrays in one list: inputs, targets, sample weights."""
    feeds = list(data_adapter.flatten(x))
    if y is not None:
        feeds += data_adapter.flatten(y)
    if sample_weight is not None:
        feeds.append(sample_weight)
    return [np.asarray(getattr(a, "data", a)) for a in feeds]


def _check_state_unchanged(model, before: list[np.ndarray]) -> None:
    for weight, value in zip(model.non_trainable_weights, before):
        if not np.array_equal(weight.data, value, equal_nan=True):
            raise CaptureError(f"the non-trainable weight {weight.name!r} changes outside the "
                               "recorded operations")


def _same_float(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def _listed(values) -> list:
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _arrays(outputs):
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(o.data for o in outputs)
    return outputs.data
