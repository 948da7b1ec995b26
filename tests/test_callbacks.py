"""Callbacks, checked by numbers: EarlyStopping and ReduceLROnPlateau on scripted log values
(one shared monitor base), ModelCheckpoint, LearningRateScheduler, CSVLogger, LambdaCallback,
and TensorBoard event files read back with tensorboard's EventAccumulator."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models, optimizers


def regression(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))


def small_model(lr=0.05):
    nervenet.utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="mse", metrics=["mae"])
    return model


class Scripted(callbacks.Callback):
    """Puts scripted values into the logs (first in the list, so others see them), and records
    the weights after every epoch."""

    def __init__(self, values):
        super().__init__()
        self.values, self.weights = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def fit_with(values, *extra, epochs=None):
    x, y = regression()
    model = small_model()
    scripted = Scripted(values)
    history = model.fit(x, y, epochs=epochs or len(values), batch_size=8, verbose=0,
                        callbacks=[scripted, *extra])
    return model, scripted, history


def test_early_stopping_patience_min_delta_and_mode():
    stop = callbacks.EarlyStopping(monitor="score", patience=2, mode="min")
    _, _, history = fit_with([5, 4, 4.5, 4.2, 3, 2], stop)
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best == 4
    stop = callbacks.EarlyStopping(monitor="score", patience=1, min_delta=0.5)
    _, _, history = fit_with([5, 4.8, 4.0, 3.9], stop)  # 4.8 is not 0.5 better than 5
    assert history.epoch == [0, 1]
    stop = callbacks.EarlyStopping(monitor="val_accuracy", patience=0)
    assert stop.mode == "max" and callbacks.EarlyStopping(monitor="val_loss").mode == "min"
    with pytest.raises(ValueError, match="mode must be"):
        callbacks.EarlyStopping(mode="up")


def test_early_stopping_restores_the_best_weights_baseline_and_start_epoch():
    stop = callbacks.EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    model, scripted, _ = fit_with([3, 1, 2, 2.5, 0], stop)
    for a, b in zip(model.get_weights(), scripted.weights[1]):
        np.testing.assert_array_equal(a, b)
    assert stop.best_epoch == 1
    # without a baseline the first epoch resets the wait; with one it must beat the baseline
    _, _, history = fit_with([3, 3, 3, 0.5], callbacks.EarlyStopping(monitor="score",
                                                                     patience=2))
    assert history.epoch == [0, 1, 2]
    stop = callbacks.EarlyStopping(monitor="score", patience=2, baseline=1.0)
    _, _, history = fit_with([3, 3, 3, 0.5], stop)
    assert history.epoch == [0, 1]
    stop = callbacks.EarlyStopping(monitor="score", patience=0, start_from_epoch=3)
    _, _, history = fit_with([1, 2, 3, 4, 5, 6], stop)
    assert history.epoch == [0, 1, 2, 3, 4]


def test_reduce_lr_on_plateau_with_cooldown_and_min_lr():
    reduce = callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, cooldown=2,
                                         min_lr=0.01, min_delta=0.0)
    model, _, history = fit_with([1, 1, 1, 1, 1, 1, 1], reduce)
    # the logs hold the rate the epoch ran with. Epoch 1: no improvement -> 0.025; epoch 2 in
    # cooldown; epoch 3 -> 0.0125; epoch 4 in cooldown; epoch 5 -> 0.01 (min_lr), as Keras
    assert history.history["learning_rate"] == pytest.approx(
        [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.01])
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    assert issubclass(callbacks.ReduceLROnPlateau, callbacks.MonitorCallback)
    assert issubclass(callbacks.EarlyStopping, callbacks.MonitorCallback)


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    seen = []
    scheduler = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    spy = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(model.optimizer.learning_rate))
    x, y = regression()
    model = small_model()
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[scheduler, spy])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert history.history["learning_rate"] == pytest.approx(seen)
    with pytest.raises(ValueError, match="returned -1"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[callbacks.LearningRateScheduler(lambda epoch: -1)])


def test_model_checkpoint_formats_names_and_saves_the_best(tmp_path):
    x, y = regression()
    model = small_model()
    every = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{loss:.3f}.nervenet"),
                                      monitor="loss")
    best = callbacks.ModelCheckpoint(str(tmp_path / "best.weights.safetensors"),
                                     monitor="score", save_best_only=True,
                                     save_weights_only=True)
    scripted = Scripted([3.0, 1.0, 2.0])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0,
                        callbacks=[scripted, every, best])
    names = sorted(p.name for p in tmp_path.glob("m-*.nervenet"))
    assert names == [f"m-{e + 1:02d}-{history.history['loss'][e]:.3f}.nervenet"
                     for e in range(3)]
    loaded = models.load_model(tmp_path / names[-1])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    twin = models.clone_model(model)  # the same layer names
    twin.load_weights(tmp_path / "best.weights.safetensors")
    for a, b in zip(twin.get_weights(), scripted.weights[1]):  # epoch 1 had the best score
        np.testing.assert_array_equal(a, b)


def test_csv_logger_and_lambda_callback(tmp_path):
    path = tmp_path / "log.csv"
    ends = []
    x, y = regression()
    model = small_model()
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.CSVLogger(path),
        callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(logs["loss"]))])
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and list(rows[0]) == ["epoch", "loss",
                                                                                "mae"]
    assert [float(r["loss"]) for r in rows] == pytest.approx(history.history["loss"])
    assert ends == history.history["loss"]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    with open(path, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    with pytest.raises(ValueError, match="unknown hook"):
        callbacks.LambdaCallback(on_epoch_finish=print)


def test_tensorboard_event_files_hold_the_epoch_scalars_and_histograms(tmp_path):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = regression()
    model = small_model()
    board = callbacks.TensorBoard(log_dir=tmp_path, histogram_freq=1)
    history = model.fit(x, y, epochs=3, verbose=0, validation_data=(x[:8], y[:8]),
                        callbacks=[board])
    train = accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance={
        accumulator.HISTOGRAMS: 0, accumulator.SCALARS: 0, accumulator.TENSORS: 0})
    train.Reload()
    tags = train.Tags()
    assert {"epoch_loss", "epoch_mae"} <= set(tags["scalars"])
    losses = [event.value for event in train.Scalars("epoch_loss")]
    assert [event.step for event in train.Scalars("epoch_loss")] == [0, 1, 2]
    assert losses == pytest.approx(history.history["loss"], rel=1e-6)
    name = model.layers[0].name
    assert {f"{name}/kernel", f"{name}/bias"} <= set(tags["histograms"])
    assert train.Histograms(f"{name}/kernel")[0].histogram_value.num == 3
    validation = accumulator.EventAccumulator(str(tmp_path / "validation"))
    validation.Reload()
    assert [e.value for e in validation.Scalars("epoch_loss")] == pytest.approx(
        history.history["val_loss"], rel=1e-6)
