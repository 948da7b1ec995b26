"""All or nothing: a training step, a checkpoint restore and a load either complete or leave the
model exactly as it was. "Exactly" is checked by hashing the whole training state: weights
(BatchNormalization's moving statistics included), optimizer slots and iteration counter, and
the state of every random generator (each layer's, fit's, the process-wide one)."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest

import nervenet
from nervenet import backend, callbacks, layers, models, optimizers
from nervenet.saving import ModelFormatError, archive, checkpoint, safetensors


def state_digest(model) -> str:
    """SHA-256 of everything a training step, restore or load may change."""
    digest = hashlib.sha256()
    for path, weight in sorted(model.named_weights().items()):
        digest.update(path.encode() + weight.data.tobytes())
    if model.optimizer is not None:
        for key, value in sorted(model.optimizer.get_state().items()):
            digest.update(key.encode() + np.asarray(value).tobytes())
    generators = {"global": backend.default_rng(), "fit": model.fit_state.rng,
                  **checkpoint._layer_generators(model)}
    for name, generator in sorted(generators.items()):
        if generator is not None:
            digest.update(name.encode() + json.dumps(generator.bit_generator.state,
                                                     sort_keys=True).encode())
    return digest.hexdigest()


def bn_model(optimizer=None):
    nervenet.utils.set_random_seed(3)
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(8, name="hidden"),
                               layers.BatchNormalization(name="bn"),
                               layers.Dropout(0.25, name="drop"), layers.Dense(2, name="out")])
    model.compile(optimizer or optimizers.SGD(0.01, momentum=0.9), "mse")
    return model


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.standard_normal(
        (n, 2)).astype(np.float32)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflows are the point
@pytest.mark.parametrize("bad", ["inf loss", "nan statistics"])
def test_a_non_finite_step_changes_nothing_not_even_batch_norm_statistics(bad):
    model = bn_model()
    x, y = batch()
    model.train_on_batch(x, y)  # slots exist now
    before = state_digest(model)
    if bad == "inf loss":
        loss = model.train_on_batch(x, np.full_like(y, 1e30))  # squared: inf in float32
    else:
        loss = model.train_on_batch(np.full_like(x, 3e38), y)  # the batch variance overflows
    assert not np.isfinite(loss)
    assert state_digest(model) == before
    assert np.isfinite(model.predict(x)).all()
    model.train_on_batch(x, y)
    assert state_digest(model) != before  # a good step still commits everything


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fit_stopped_by_a_nan_batch_keeps_the_statistics_and_checkpoints_finite(tmp_path):
    model = bn_model()
    x, y = batch(32)
    y[20:] = 1e30  # the third batch of 8 has an infinite loss
    states = []

    class Record(callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            states.append(state_digest(model))

    model.fit(x, y, batch_size=8, shuffle=False, verbose=0,
              callbacks=[Record(), callbacks.TerminateOnNaN()])
    assert len(states) == 3 and states[2] == states[1]
    bn = model.get_layer("bn")
    assert np.isfinite(bn.moving_mean.data).all() and np.isfinite(bn.moving_variance.data).all()


def test_a_first_step_with_a_nan_gradient_creates_no_optimizer_state():
    weight = nervenet.tensor(np.ones(3, np.float32))
    optimizer = optimizers.Adam(0.1)
    with pytest.raises(FloatingPointError):
        optimizer.apply_gradients([(np.array([1.0, np.nan, 0.0], np.float32), weight)])
    assert optimizer.get_state().keys() == {"iterations"} and optimizer.iterations == 0
    np.testing.assert_array_equal(weight.data, 1.0)


def test_nan_in_an_optimizer_moment_is_refused_by_set_state_load_and_restore(tmp_path):
    model = bn_model(optimizers.Adam(0.01))
    x, y = batch()
    model.fit(x, y, epochs=1, verbose=0)
    state = model.optimizer.get_state()
    poisoned = {**state, "0/m": np.full_like(state["0/m"], np.nan)}
    before = state_digest(model)
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.optimizer.set_state(poisoned)
    assert state_digest(model) == before
    path = tmp_path / "ckpt.nervenet"
    checkpoint.save_checkpoint(model, path, epoch=1)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    tensors = safetensors.loads(members["weights.safetensors"])
    tensors["optimizer/0/m"] = np.full_like(tensors["optimizer/0/m"], np.nan)
    path.write_bytes(archive.zip_bytes({**members,
                                        "weights.safetensors": safetensors.dumps(tensors)}))
    with pytest.raises(ModelFormatError, match="NaN or Inf"):
        checkpoint.restore_checkpoint(model, path)
    assert state_digest(model) == before
    with pytest.raises(ModelFormatError, match="NaN or Inf"):
        models.load_model(path)  # (a new model's Dropout draws its seed from the global one)


def edited_checkpoint(model, path, edit) -> None:
    """Save a checkpoint of ``model`` at ``path``, then change its tensors with ``edit``."""
    checkpoint.save_checkpoint(model, path, epoch=1)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    tensors = safetensors.loads(members["weights.safetensors"])
    edit(tensors)
    path.write_bytes(archive.zip_bytes({**members,
                                        "weights.safetensors": safetensors.dumps(tensors)}))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.update({"optimizer/1/v": np.zeros((7,), np.float32)}), "shape"),
    (lambda t: t.update({"optimizer/iterations": np.array([1, 1])}), "integer scalar"),
    (lambda t: t.pop("optimizer/2/m"), "slots"),
])
def test_restore_checkpoint_checks_everything_before_writing_anything(tmp_path, edit, message):
    """A bad optimizer slot used to surface after the weights had been overwritten."""
    model = bn_model(optimizers.Adam(0.01))
    x, y = batch()
    model.fit(x, y, epochs=1, verbose=0)
    bad, good = tmp_path / "bad.nervenet", tmp_path / "good.nervenet"
    edited_checkpoint(model, bad, edit)
    edited_checkpoint(model, good, lambda tensors: None)
    model.fit(x, y, epochs=1, verbose=0)  # move on, so that a restore would change the state
    before = state_digest(model)
    with pytest.raises(ModelFormatError, match=message):
        checkpoint.restore_checkpoint(model, bad)
    assert state_digest(model) == before
    checkpoint.restore_checkpoint(model, good)  # the unedited checkpoint restores
    assert state_digest(model) != before


def test_a_failed_load_weights_leaves_the_model_as_it_was(tmp_path):
    model = bn_model()
    x, y = batch()
    model.fit(x, y, verbose=0)
    path = tmp_path / "w.weights.safetensors"
    other = bn_model()
    other.fit(x, y, epochs=3, verbose=0)
    other.save_weights(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # the checksum of the tensor data no longer matches
    path.write_bytes(bytes(data))
    before = state_digest(model)
    with pytest.raises(ModelFormatError, match="corrupted"):
        model.load_weights(path)
    assert state_digest(model) == before


# An overflow inside an update rule: the step is certified overflow-free from bounds, or run
# with the slots copied aside (optimizers/base.py, Rounding and bound_step).
def optimizer_digest(optimizer, weights, generator=True) -> str:
    """SHA-256 of the weights, every optimizer slot, ``iterations`` and the global generator."""
    digest = hashlib.sha256()
    for weight in weights:
        digest.update(weight.data.tobytes())
    for key, value in sorted(optimizer.get_state().items()):
        digest.update(key.encode() + np.asarray(value).tobytes())
    if generator:
        digest.update(json.dumps(backend.default_rng().bit_generator.state).encode())
    return digest.hexdigest()


# kind -> (the optimizer, attributes set for the refused step only, the second variable's
# weights, its gradient in the refused step): the first variable's update is fine, the
# second's overflows.
IN_RULE_OVERFLOWS = {
    "sgd momentum, learning rate 1e38": (lambda: optimizers.SGD(0.01, momentum=0.9),
                                         {"learning_rate": 1e38}, 0.5, 10.0),
    "sgd nesterov, learning rate 1e38": (lambda: optimizers.SGD(0.01, 0.9, nesterov=True),
                                         {"learning_rate": 1e38}, 0.5, 10.0),
    "adam, g**2 overflows float32": (lambda: optimizers.Adam(0.01), {}, 0.5, 1e20),
    "adam amsgrad, g**2 overflows": (lambda: optimizers.Adam(0.01, amsgrad=True), {}, 0.5,
                                     1e20),
    "adamw, decay factor 1 - lr * wd = -4e35": (lambda: optimizers.AdamW(0.01),
                                                {"learning_rate": 1e38}, 1e4, 1.0),
    "rmsprop centered momentum, g**2": (
        lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True), {}, 0.5, 1e20),
    "adagrad, g**2 overflows": (lambda: optimizers.Adagrad(0.01), {}, 0.5, 1e20),
    "adamax, coupled weight decay 10 * 1e38": (lambda: optimizers.Adamax(0.01),
                                               {"weight_decay": 10.0}, 1e38, 0.3),
    "nadam, g**2 overflows": (lambda: optimizers.Nadam(0.01), {}, 0.5, 1e20),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the gradient's norm overflows
@pytest.mark.parametrize("kind", sorted(IN_RULE_OVERFLOWS))
def test_an_overflow_inside_the_rule_changes_no_weight_slot_or_iteration(kind):
    """The slots of the variables updated before the failing one used to have advanced."""
    make, settings, second_weight, bad = IN_RULE_OVERFLOWS[kind]
    runs = []
    for refused_in_between in (True, False):
        first = nervenet.tensor(np.full(3, 0.5, np.float32))
        second = nervenet.tensor(np.full(2, second_weight, np.float32))
        optimizer = make()
        optimizer.apply_gradients([(np.full(3, 0.1, np.float32), first),
                                   (np.full(2, 0.1, np.float32), second)])
        if refused_in_between:
            kept = {name: getattr(optimizer, name) for name in settings}
            for name, value in settings.items():
                setattr(optimizer, name, value)
            before = optimizer_digest(optimizer, [first, second])
            with pytest.raises(FloatingPointError, match=r"variable 1 .*refused"):
                optimizer.apply_gradients([(np.full(3, 0.2, np.float32), first),
                                           (np.full(2, bad, np.float32), second)])
            assert optimizer_digest(optimizer, [first, second]) == before
            for name, value in kept.items():
                setattr(optimizer, name, value)
        optimizer.apply_gradients([(np.full(3, 0.2, np.float32), first),
                                   (np.full(2, 0.3, np.float32), second)])
        runs.append(optimizer_digest(optimizer, [first, second]))
    assert runs[0] == runs[1]  # the refused step left no trace in what followed


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # squared_norm's dot overflows
def test_a_first_step_refused_inside_the_rule_creates_no_optimizer_state():
    first, second = nervenet.tensor(np.ones(3, np.float32)), nervenet.tensor(np.ones(2, np.float32))
    optimizer = optimizers.Adam(0.1)
    optimizer.set_state({"iterations": np.array(0), "1/m": np.zeros(2, np.float32),
                         "1/v": np.zeros(2, np.float32), "1/step": np.array(0)})
    with pytest.raises(FloatingPointError, match="variable 1"):
        optimizer.apply_gradients([(np.ones(3, np.float32), first),
                                   (np.full(2, 1e20, np.float32), second)])
    assert optimizer.get_state().keys() == {"iterations"} and optimizer.tracked_variables == []
    optimizer.apply_gradients([(np.ones(3, np.float32), first), (np.ones(2, np.float32), second)])
    assert int(optimizer.get_state()["1/step"]) == 1  # the restored slots were kept for it


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # squared_norm's dot overflows
def test_train_on_batch_and_fit_report_an_in_rule_overflow_as_refused_and_change_nothing():
    """Weights grown to 1e18: the output kernel's gradient (~1e36) squared overflows in Adam,
    after the hidden layer's updates succeeded."""
    nervenet.utils.set_random_seed(3)
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(8, name="hidden"),
                               layers.Dropout(0.25, name="drop"), layers.Dense(2, name="out")])
    model.compile(optimizers.Adam(0.01), "mse")
    x, y = batch()
    model.train_on_batch(x, y)  # slots exist now
    model.get_layer("hidden").kernel.data[...] *= np.float32(1e18)
    before = state_digest(model)
    with pytest.raises(FloatingPointError, match=r"variable 2 .*step was refused"):
        model.train_on_batch(x, y)
    assert state_digest(model) == before
    before = optimizer_digest(model.optimizer, model.weights, generator=False)  # fit seeds its
    with pytest.raises(FloatingPointError, match="step was refused"):  # generator from it
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    assert optimizer_digest(model.optimizer, model.weights, generator=False) == before


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_adamw_decay_that_would_overflow_is_refused_before_any_weight_is_written():
    """lr * weight_decay = 4e35: the decay factor -4e35 times a weight of 1e4 overflows. The
    weights of the variables before used to be decayed already, and this one's to be inf."""
    first, second = nervenet.tensor(np.full(3, 0.5, np.float32)), nervenet.tensor(
        np.full(2, 1e4, np.float32))
    optimizer = optimizers.AdamW(0.01)
    optimizer.apply_gradients([(np.full(3, 0.1, np.float32), first),
                               (np.full(2, 0.1, np.float32), second)])
    weights = first.data.copy(), second.data.copy()
    optimizer.learning_rate = 1e38
    with pytest.raises(FloatingPointError, match=r"variable 1 .*factor -4e\+35 overflows"):
        optimizer.apply_gradients([(np.full(3, 0.2, np.float32), first),
                                   (np.full(2, 0.2, np.float32), second)])
    np.testing.assert_array_equal(first.data, weights[0])
    np.testing.assert_array_equal(second.data, weights[1])
    assert optimizer.iterations == 1
