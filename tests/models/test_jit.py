"""compile(jit_compile=...): a captured step replays the eager step bit for bit.

Each case trains the same model twice from the same seed, eagerly (``jit_compile=False``, the
reference) and captured (``"auto"``), and compares with ``np.array_equal``: the weights, the
optimizer's state, the history (losses and metrics) and the predictions. ``_replayed`` checks
that the captured run did replay (a step that falls back to eager would trivially agree).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nervenet import callbacks, constraints, layers, losses, models, optimizers, regularizers
from nervenet.models.jit import _Replay
from nervenet.utils import set_random_seed


def _data(n=48, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    return x, rng.integers(0, classes, n)


def _mlp(dropout=0.0, **dense):
    entries = [layers.Input(shape=(6,)), layers.Dense(8, activation="relu", **dense)]
    if dropout:
        entries.append(layers.Dropout(dropout))
    entries += [layers.Dense(5, activation="tanh"), layers.Dense(3)]
    return models.Sequential(entries)


def _compiled(build, jit, optimizer="sgd", loss=None, metrics=None, loss_weights=None):
    """``build()`` from seed 3, compiled with ``jit_compile=jit`` (the loss defaults to the
    sparse cross-entropy on logits)."""
    set_random_seed(3)
    model = build()
    model.compile(optimizer=optimizers.get(optimizer) if isinstance(optimizer, str) else
                  optimizer(), loss=loss or losses.SparseCategoricalCrossentropy(
                      from_logits=True), metrics=metrics, loss_weights=loss_weights,
                  jit_compile=jit)
    return model


def _train(build, jit, optimizer="sgd", loss=None, metrics=None, epochs=3, batch_size=16,
           x=None, y=None, loss_weights=None, **fit):
    model = _compiled(build, jit, optimizer, loss, metrics, loss_weights)
    if x is None:
        x, y = _data()
    fit.setdefault("validation_split", 0.25)  # evaluate's step, each epoch
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, **fit)
    history.history["evaluate"] = model.evaluate(x, y, batch_size=batch_size, verbose=0)
    return model, history.history, model.predict(x, batch_size=batch_size, verbose=0)


def _assert_same(eager, captured):
    (m1, h1, p1), (m2, h2, p2) = eager, captured
    assert all(np.array_equal(a, b) for a, b in zip(m1.get_weights(), m2.get_weights()))
    s1, s2 = m1.optimizer.get_state(), m2.optimizer.get_state()
    assert s1.keys() == s2.keys()
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert h1 == h2
    p1, p2 = (p if isinstance(p, list) else [p] for p in (p1, p2))
    assert len(p1) == len(p2) and all(map(np.array_equal, p1, p2))


def _replayed(model, kind="train") -> bool:
    return any(type(entry) is _Replay and key[0] == kind
               for key, entry in model.captured_steps.entries.items())


def _same_both_ways(build, **kwargs):
    eager, captured = _train(build, False, **kwargs), _train(build, "auto", **kwargs)
    _assert_same(eager, captured)
    return captured[0]


@pytest.mark.parametrize("optimizer", [
    "sgd", lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True), "adagrad",
    lambda: optimizers.RMSprop(momentum=0.5, centered=True), "adam",
    lambda: optimizers.AdamW(weight_decay=0.1), "adamax", "nadam",
    lambda: optimizers.Adam(amsgrad=True) if "amsgrad" in optimizers.Adam.__init__.__code__
    .co_varnames else optimizers.Adam(weight_decay=0.01),
])
def test_every_first_order_optimizer_replays_the_eager_steps(optimizer):
    model = _same_both_ways(lambda: _mlp(dropout=0.25), optimizer=optimizer,
                            metrics=["accuracy"])
    assert _replayed(model) and _replayed(model, "test") and _replayed(model, "predict")


@pytest.mark.parametrize("options", [
    {"clipnorm": 0.01}, {"clipvalue": 0.001}, {"global_clipnorm": 0.02},
    {"weight_decay": 0.1}])
def test_clipping_and_weight_decay(options):
    model = _same_both_ways(_mlp, optimizer=lambda: optimizers.SGD(0.1, **options))
    assert _replayed(model)


def test_regularizers_constraints_and_activity_penalties():
    def build():
        return _mlp(kernel_regularizer=regularizers.L1L2(0.01, 0.02),
                    bias_regularizer="l2", activity_regularizer=regularizers.L2(0.001),
                    kernel_constraint=constraints.MaxNorm(0.5))
    model = _same_both_ways(build, optimizer="adam")
    assert _replayed(model)


def test_sample_and_class_weights():
    x, labels = _data()
    weights = np.linspace(0.5, 2.0, len(x)).astype(np.float32)
    y = x[:, :3] * 0.5
    model = _same_both_ways(_mlp, loss="mse", x=x, y=y, sample_weight=weights,
                            metrics=["mae"])
    assert _replayed(model)
    # NOTE: the weighted sparse cross-entropy makes its one-hot targets in NumPy, outside the
    # recorded operations: it is run eagerly (and must still agree)
    _same_both_ways(_mlp, x=x, y=labels, class_weight={0: 1.0, 1: 3.0, 2: 0.5})


@pytest.mark.parametrize("loss, metric, targets", [
    ("mse", "mae", "regression"), ("mae", "rmse", "regression"),
    (losses.Huber(0.5), "mse", "regression"),
    ("categorical_crossentropy", "categorical_accuracy", "onehot"),
    (losses.CategoricalCrossentropy(from_logits=True), "top_k_categorical_accuracy", "onehot"),
    ("sparse_categorical_crossentropy", "sparse_categorical_accuracy", "sparse"),
    ("binary_crossentropy", "binary_accuracy", "binary"),
    (losses.BinaryCrossentropy(from_logits=True), "auc", "binary"),
    ("hinge", "precision", "signs"),
])
def test_every_loss_and_metric(loss, metric, targets):
    x, labels = _data()
    probabilities = loss in ("categorical_crossentropy", "sparse_categorical_crossentropy",
                             "binary_crossentropy")
    outputs = 1 if targets in ("binary", "signs") else 3
    y = {"regression": x[:, :3] * 0.5, "onehot": np.eye(3, dtype=np.float32)[labels],
         "sparse": labels, "binary": (labels > 0).astype(np.float32)[:, None],
         "signs": np.where(labels > 0, 1.0, -1.0).astype(np.float32)[:, None]}[targets]
    activation = ("softmax" if outputs == 3 else "sigmoid") if probabilities else None

    def build():
        return models.Sequential([layers.Input(shape=(6,)), layers.Dense(8, activation="elu"),
                                  layers.Dense(outputs, activation=activation)])
    model = _same_both_ways(build, loss=loss, metrics=[metric], x=x, y=y)
    assert _replayed(model)


def _images(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, n)


LAYER_MODELS = {
    "conv_pool": lambda: [layers.Conv2D(4, 3, padding="same", activation="relu"),
                          layers.MaxPooling2D(), layers.Conv2D(3, 2, strides=2),
                          layers.AveragePooling2D(), layers.Flatten()],
    "global_pools": lambda: [layers.ZeroPadding2D(1), layers.Conv2D(3, 3),
                             layers.GlobalMaxPooling2D()],
    "global_average": lambda: [layers.Conv2D(3, 3), layers.GlobalAveragePooling2D()],
    "activations": lambda: [layers.Flatten(), layers.Dense(12), layers.LeakyReLU(0.1),
                            layers.PReLU(), layers.ELU(), layers.ReLU(), layers.Dense(6),
                            layers.Maxout(3), layers.Activation("gelu")],
    "normalization": lambda: [layers.Rescaling(0.5), layers.Reshape((16, 8)),
                              layers.LayerNormalization(), layers.Flatten(),
                              layers.ScaleShift() if hasattr(layers, "ScaleShift") else
                              layers.Activation("linear")],
    "batch_norm": lambda: [layers.Conv2D(3, 3), layers.BatchNormalization(),
                           layers.Flatten(), layers.Dense(4), layers.BatchNormalization()],
    "noise": lambda: [layers.Flatten(), layers.Dense(8), layers.GaussianNoise(0.1),
                      layers.GaussianDropout(0.2), layers.AlphaDropout(0.1)],
    "spatial_dropout": lambda: [layers.Dropout(0.3, noise_shape=(None, 1, 1, None)),
                                layers.Flatten()],
    "alpha_dropout": lambda: [layers.Flatten(), layers.Dense(8, activation="selu"),
                              layers.AlphaDropout(0.2, noise_shape=(None, 1))],
    "stochastic": lambda: [layers.Normalization(mean=0.5, variance=2.0), layers.ReLU(),
                           layers.StochasticPooling2D(2, seed=1), layers.RandomFlip(seed=2),
                           layers.Flatten(), layers.Dense(6), layers.Softmax()],
    "augmentation": lambda: [layers.RandomRotation(0.1, seed=1), layers.RandomZoom(0.1, seed=1),
                             layers.RandomTranslation(0.1, 0.1, seed=1),
                             layers.RandomCrop(6, 6, seed=1), layers.Flatten()],
}

#: layers whose training step draws or updates state outside the recorded operations (noise
#: drawn in NumPy, moving statistics): the capture sees it and the step runs eagerly (the
#: dropout masks, spatial and alpha ones too, are drawn inside the op's forward: replayed)
RUN_EAGERLY = {"noise", "stochastic", "augmentation"}
#: ... and at inference (a window picked in NumPy, a centre crop sliced in NumPy)
INFER_EAGERLY = {"stochastic", "augmentation"}


@pytest.mark.parametrize("name", sorted(LAYER_MODELS))
def test_every_built_in_layer_trains_as_eager(name):
    x, y = _images()

    def build():
        return models.Sequential([layers.Input(shape=(8, 8, 2)), *LAYER_MODELS[name](),
                                  layers.Dense(3)])
    model = _same_both_ways(build, optimizer="adam", x=x, y=y, batch_size=8)
    assert _replayed(model) == (name not in RUN_EAGERLY)
    assert _replayed(model, "predict") == (name not in INFER_EAGERLY)


def test_functional_model_with_branches_and_merges():
    def build():
        inputs = layers.Input(shape=(6,))
        a = layers.Dense(4, activation="relu")(inputs)
        b = layers.Dense(4, activation="sigmoid")(inputs)
        merged = layers.Concatenate()([layers.Add()([a, b]), layers.Multiply()([a, b]), inputs])
        return models.Model(inputs, layers.Dense(3)(merged))
    model = _same_both_ways(build, optimizer="rmsprop")
    assert _replayed(model)


def test_several_outputs_with_their_own_losses_weights_and_metrics():
    x, labels = _data()
    targets = [labels, x[:, :2] * 0.5]

    def build():
        inputs = layers.Input(shape=(6,))
        hidden = layers.Dense(8, activation="relu")(inputs)
        return models.Model(inputs, [layers.Dense(3, name="kind")(hidden),
                                     layers.Dense(2, name="size")(hidden)])
    model = _same_both_ways(build, x=x, y=targets, loss=[
        losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
        metrics=[["accuracy"], ["mae"]], loss_weights=[1.0, 0.5])
    assert _replayed(model) and _replayed(model, "test")


# ------------------------------------------------------------------ invalidation
class _Freeze(callbacks.Callback):
    """Freezes the first layer at the start of epoch 1 and changes the learning rate."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.layers[0].trainable = False
            self.model.optimizer.learning_rate = 0.5


def test_trainable_flags_and_learning_rate_changed_by_a_callback():
    model = _same_both_ways(_mlp, callbacks=[_Freeze()], epochs=3)
    assert _replayed(model)


def test_learning_rate_schedule_and_batch_sizes_that_change():
    x, y = _data(n=50)  # batches of 16, 16, 16 and 2: two shapes
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model = _same_both_ways(_mlp, x=x, y=y, optimizer=lambda: optimizers.SGD(schedule),
                            epochs=4)
    assert sum(type(e) is _Replay and key[0] == "train"
               for key, e in model.captured_steps.entries.items()) == 2


def _same_after_a_change(change):
    """Fit, ``change(model)``, fit again: eager and captured end the same."""
    x, y = _data()
    runs = []
    for jit in (False, "auto"):
        model = _compiled(_mlp, jit)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        change(model)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        runs.append((model, {}, model.predict(x, verbose=0)))
    _assert_same(*runs)


def test_weights_assigned_from_outside_are_used():
    def assign(model):
        model.set_weights([w * 0.5 for w in model.get_weights()])  # new arrays or in place
        model.layers[1].kernel.data = model.layers[1].kernel.data.copy()  # a new array

    _same_after_a_change(assign)


def test_layers_added_after_capture_are_run():
    _same_after_a_change(lambda model: model.add(layers.Activation("tanh")))


def test_a_nan_batch_changes_nothing_in_a_replay():
    x, y = _data()
    model = _mlp()
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert _replayed(model)
    before = model.get_weights()
    bad = x[:16].copy()
    bad[0, 0] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        loss, _ = model.captured_steps.train_step(bad, y[:16])
    assert not np.isfinite(loss)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ------------------------------------------------------------------ fallback
class _Subclassed(models.Model):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(3)

    def call(self, inputs, training=False):
        return self.dense(inputs)


def test_auto_falls_back_with_one_log_line_and_true_raises(caplog):
    x, y = _data()
    model = _Subclassed()
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    with caplog.at_level(logging.INFO, logger="nervenet.jit"):
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    lines = [r.getMessage() for r in caplog.records if r.name == "nervenet.jit"]
    assert len(lines) == 1 and "subclassed model" in lines[0]
    strict = _Subclassed()
    strict.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True),
                   jit_compile=True)
    with pytest.raises(ValueError, match="jit_compile=True.*subclassed model"):
        strict.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert all(np.array_equal(w, 0 * w) or True for w in strict.get_weights())


def test_an_array_made_outside_the_operations_is_refused():
    x, y = _images()
    model = models.Sequential([layers.Input(shape=(8, 8, 2)), layers.GaussianNoise(0.5),
                               layers.Flatten(), layers.Dense(3)])
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    with pytest.raises(ValueError, match="outside the recorded operations"):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)


def test_second_order_optimizers_and_bad_modes():
    model = _mlp()
    with pytest.raises(ValueError, match="second-order"):
        model.compile(optimizers.LBFGS(), "mse", jit_compile=True)
    with pytest.raises(ValueError, match="jit_compile must be 'auto', True or False"):
        model.compile("sgd", "mse", jit_compile="xla")


def test_a_replay_busy_in_another_thread_leaves_this_call_eager():
    x, y = _data()
    model = _mlp()
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    expected = model.predict(x, batch_size=16, verbose=0)
    assert _replayed(model, "predict")
    with model.captured_steps.lock:  # as if another thread were replaying
        assert np.array_equal(model.predict(x, batch_size=16, verbose=0), expected)


def test_at_most_a_few_input_shapes_are_captured(monkeypatch, caplog):
    monkeypatch.setattr("nervenet.models.jit.MAX_SIGNATURES", 2)
    x, y = _data()
    model = _mlp()
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    with caplog.at_level(logging.INFO, logger="nervenet.jit"):
        for batch_size in (4, 6, 8, 4):
            model.predict(x, batch_size=batch_size, verbose=0)
    kinds = [key[0] for key in model.captured_steps.entries]
    assert kinds.count("predict") == 2
    assert any("more than 2 input shapes" in r.getMessage() for r in caplog.records)


class _CustomStep(models.Sequential):
    def train_step(self, x, y, sample_weight=None):
        self.custom_steps = getattr(self, "custom_steps", 0) + 1
        return super().train_step(x, y, sample_weight)


def test_a_custom_train_step_runs_eagerly_every_batch(caplog):
    x, y = _data()
    model = _CustomStep([layers.Input(shape=(6,)), layers.Dense(3)])
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    with caplog.at_level(logging.INFO, logger="nervenet.jit"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert model.custom_steps == 9
    assert any("overrides train_step" in r.getMessage() for r in caplog.records)


def test_the_mode_is_saved_with_the_compile_settings(tmp_path):
    from nervenet.models import load_model

    x, y = _data()
    model = _mlp()
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "eager.nervenet")
    loaded = load_model(tmp_path / "eager.nervenet")
    assert loaded.jit_compile is False and loaded.captured_steps is None


def test_a_repeated_batch_is_not_taken_for_constants():
    """The weighted sparse cross-entropy makes its one-hot targets in NumPy: two recordings of
    the same batch would take them for a constant. Only batches that differ in every array
    make a replay; here the step stays eager and equal."""
    x, labels = _data()
    weights = np.ones(16, np.float32)
    runs = []
    for jit in (False, "auto"):
        model = _compiled(_mlp, jit)
        losses_seen = [model.train_on_batch(x[:16], labels[:16], sample_weight=weights)
                       for _ in range(3)]
        losses_seen += [model.train_on_batch(x[16:32], labels[16:32], sample_weight=weights)
                        for _ in range(2)]
        runs.append((model, losses_seen))
    (eager, l1), (captured, l2) = runs
    assert l1 == l2
    assert all(np.array_equal(a, b) for a, b in zip(eager.get_weights(), captured.get_weights()))
    assert not _replayed(captured)


def test_inference_after_the_weights_change_reads_them_anew():
    """A captured predict reads the weights (and BatchNormalization's moving statistics, which
    its op views) at each replay; Normalization's standard deviation, computed in NumPy from
    its variance, is not replayed at all."""
    x, y = _images()
    outputs = []
    for jit in (False, "auto"):
        model = _compiled(lambda: models.Sequential([
            layers.Input(shape=(8, 8, 2)), layers.Conv2D(3, 3), layers.BatchNormalization(),
            layers.Flatten(), layers.Dense(3)]), jit, optimizer="adam")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        first = model.predict(x, batch_size=4, verbose=0)
        model.set_weights([w * 1.5 for w in model.get_weights()])
        second = model.predict(x, batch_size=4, verbose=0)
        model.layers[1].moving_variance.data *= 2.0  # in place
        outputs.append((first, second, model.predict(x, batch_size=4, verbose=0)))
    assert all(map(np.array_equal, *outputs))
    assert _replayed(model, "predict")
    normalized = models.Sequential([layers.Input(shape=(6,)), layers.Normalization(),
                                    layers.Dense(3)])
    normalized.layers[0].adapt(_data()[0])
    normalized.compile("sgd", "mse")
    x6 = _data()[0]
    before = normalized.predict(x6, batch_size=8, verbose=0)
    normalized.layers[0].adapt(x6 * 3.0 + 1.0)
    after = normalized.predict(x6, batch_size=8, verbose=0)
    assert not np.array_equal(before, after)
    normalized.compile("sgd", "mse", jit_compile=False)
    assert np.array_equal(after, normalized.predict(x6, batch_size=8, verbose=0))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("bad, message", [(-1, "got -1"), (3, "got 3"), (1.5, "got 1.5")])
def test_a_replayed_step_checks_the_labels_of_its_batch_as_eager_does(from_logits, bad,
                                                                        message):
    """The labels are a value of the batch, not of the program: a captured step checks them
    at every replay (a label of -1 would otherwise pick the last class), raises the eager
    step's error, and changes nothing."""
    x, labels = _data(n=64)
    for jit in (False, "auto"):
        model = _compiled(lambda: models.Sequential([layers.Input(shape=(6,)), layers.Dense(3,
                          activation=None if from_logits else "softmax")]), jit,
                          loss=losses.SparseCategoricalCrossentropy(from_logits=from_logits))
        targets = labels.astype(np.float64) if isinstance(bad, float) else labels
        for start in range(0, 48, 16):
            model.train_on_batch(x[start:start + 16], targets[start:start + 16])
        assert jit is False or _replayed(model)
        before, iterations = model.get_weights(), model.optimizer.iterations
        wrong = targets[48:].copy()
        wrong[5] = bad
        with pytest.raises(ValueError, match=f"labels must be .*class indices.*{message}"):
            model.train_on_batch(x[48:], wrong)
        assert all(map(np.array_equal, before, model.get_weights()))
        assert model.optimizer.iterations == iterations


def test_hinge_labels_of_zero_and_one_are_converted_in_a_replayed_step():
    """Two batches of -1/1 labels make the replay; a later batch of 0/1 labels is converted
    to -1/1 as in eager (the conversion is the loss's forward, replayed), and a label of 2 is
    refused."""
    x, labels = _data(n=64)
    signs = np.where(labels > 0, 1.0, -1.0).astype(np.float32)[:, None]
    runs = []
    for jit in (False, "auto"):
        model = _compiled(lambda: models.Sequential([layers.Input(shape=(6,)),
                                                     layers.Dense(1)]), jit, loss="hinge")
        seen = [model.train_on_batch(x[s:s + 16], signs[s:s + 16]) for s in range(0, 48, 16)]
        seen.append(model.train_on_batch(x[48:], (signs[48:] > 0).astype(np.float32)))
        with pytest.raises(ValueError, match="hinge: y must hold labels"):
            model.train_on_batch(x[48:], signs[48:] * 2)
        runs.append((model, seen))
    (eager, l1), (captured, l2) = runs
    assert _replayed(captured) and l1 == l2
    assert all(map(np.array_equal, eager.get_weights(), captured.get_weights()))
