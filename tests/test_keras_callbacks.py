"""Callbacks take every argument Keras's take (issue #15): those that do something here are
checked by their effect, TensorFlow-only ones warn; nervenet.summary's event files are read
back with tensorboard's EventAccumulator."""

from __future__ import annotations

import inspect
import os
import sys

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models, optimizers, summary

# The constructor arguments of Keras 3's callbacks (keras.callbacks, 3.x), plus TF-Keras 2's
# where the notes use them.
KERAS_ARGUMENTS = {
    callbacks.EarlyStopping: ["monitor", "min_delta", "patience", "verbose", "mode", "baseline",
                              "restore_best_weights", "start_from_epoch"],
    callbacks.ReduceLROnPlateau: ["monitor", "factor", "patience", "verbose", "mode",
                                  "min_delta", "cooldown", "min_lr", "epsilon"],
    callbacks.ModelCheckpoint: ["filepath", "monitor", "verbose", "save_best_only",
                                "save_weights_only", "mode", "save_freq",
                                "initial_value_threshold", "options", "period"],
    callbacks.TensorBoard: ["log_dir", "histogram_freq", "write_graph", "write_images",
                            "write_steps_per_second", "update_freq", "profile_batch",
                            "embeddings_freq", "embeddings_metadata"],
    callbacks.CSVLogger: ["filename", "separator", "append"],
    callbacks.LearningRateScheduler: ["schedule", "verbose"],
    callbacks.BackupAndRestore: ["backup_dir", "save_freq", "double_checkpoint",
                                 "delete_checkpoint", "save_before_preemption"],
}


@pytest.mark.parametrize("cls", list(KERAS_ARGUMENTS), ids=lambda c: c.__name__)
def test_every_keras_argument_is_accepted(cls):
    parameters = inspect.signature(cls).parameters
    assert [name for name in KERAS_ARGUMENTS[cls] if name not in parameters] == []


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, x @ np.array([[1.0], [-2.0], [0.5]], np.float32)


def _model():
    nervenet.utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(3,)),
                               layers.Dense(2, activation="tanh", name="hidden"),
                               layers.Dense(1, name="out")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


@pytest.fixture
def events():
    pytest.importorskip("tensorboardX", reason="the tensorboard extra writes event files")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard's EventAccumulator reads them back")

    def read(directory):
        reader = accumulator.EventAccumulator(str(directory), size_guidance={
            accumulator.SCALARS: 0, accumulator.HISTOGRAMS: 0, accumulator.IMAGES: 0,
            accumulator.TENSORS: 0})
        reader.Reload()
        return reader

    return read


# ------------------------------------------------------------------ nervenet.summary


def test_summary_writes_scalars_histograms_images_and_text(tmp_path, events):
    writer = summary.create_file_writer(tmp_path / "run_1")
    rng = np.random.default_rng(1)
    images = rng.random((4, 5, 6, 3))
    with writer.as_default():
        for step in range(1, 4):
            assert summary.scalar("my_scalar", np.sin(step / 10), step=step)
            summary.histogram("my_hist", rng.standard_normal(100) + step, buckets=20,
                              step=step)
            summary.image("my_images", images * step / 3, max_outputs=3, step=step)
            summary.text("my_text", f"The step is {step}", step=step)
    with writer.as_default(step=7):
        summary.scalar("defaulted", 2.5)
        summary.text("listed", ["The step is 7", b"Its square is 49"])
    writer.close()
    reader = events(tmp_path / "run_1")
    scalars = reader.Scalars("my_scalar")
    assert [e.step for e in scalars] == [1, 2, 3]
    np.testing.assert_allclose([e.value for e in scalars], np.sin(np.arange(1, 4) / 10),
                               rtol=1e-6)
    assert [(e.step, e.value) for e in reader.Scalars("defaulted")] == [(7, 2.5)]
    histogram = reader.Histograms("my_hist")[2].histogram_value
    assert histogram.num == 100 and 2.0 < histogram.sum / 100 < 4.0     # mean about 3
    assert sorted(reader.Tags()["images"]) == [f"my_images/image/{i}" for i in range(3)]
    first = reader.Images("my_images/image/0")[0]
    assert (first.width, first.height) == (6, 5)
    texts = reader.Tensors("my_text/text_summary")
    assert [t.tensor_proto.string_val[0].decode() for t in texts] == [
        f"The step is {s}" for s in (1, 2, 3)]
    listed = reader.Tensors("listed/text_summary")[0].tensor_proto.string_val[0].decode()
    assert listed == "The step is 7\n\nIts square is 49"


def test_summary_histogram_values_are_the_data(tmp_path, events):
    data = np.arange(10.0)
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default(step=0):
        summary.histogram("h", data)
    writer.close()
    value = events(tmp_path).Histograms("h")[0].histogram_value
    assert (value.num, value.sum, value.min, value.max) == (10, 45.0, 0.0, 9.0)
    assert value.sum_squares == pytest.approx(float((data ** 2).sum()))


def test_summary_without_a_default_writer_and_bad_input(tmp_path, events):
    assert summary.scalar("x", 1.0, step=0) is False
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default():
        with pytest.raises(ValueError, match="no step given"):
            summary.scalar("x", 1.0)
        with pytest.raises(ValueError, match="single number"):
            summary.scalar("x", [1.0, 2.0], step=0)
        with pytest.raises(ValueError, match=r"\(k, h, w, c\)"):
            summary.image("i", np.zeros((5, 6)), step=0)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            summary.image("i", np.full((1, 2, 2, 1), 3.0), step=0)
        with pytest.raises(ValueError, match="string"):
            summary.text("t", 3, step=0)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.scalar("x", 1.0, 0)


def test_summary_says_what_to_install_without_tensorboardx(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'nervenet\[tensorboard\]'"):
        summary.create_file_writer(tmp_path)
    with pytest.raises(ImportError, match="tensorboardX"):
        callbacks.TensorBoard(log_dir=tmp_path)


# ------------------------------------------------------------------ TensorBoard


@pytest.mark.parametrize("update_freq, steps", [("batch", list(range(1, 16))),
                                                (4, [4, 8, 12])])
def test_tensorboard_update_freq_writes_batch_scalars(tmp_path, events, update_freq, steps):
    x, y = _data()
    board = callbacks.TensorBoard(log_dir=tmp_path, update_freq=update_freq,
                                  write_steps_per_second=True)
    seen = []
    record = callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(logs["loss"]))
    _model().fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[record, board])
    train = events(tmp_path / "train")
    batch_losses = train.Scalars("batch_loss")
    assert [e.step for e in batch_losses] == steps                  # 5 batches per epoch
    np.testing.assert_allclose([e.value for e in batch_losses],
                               [seen[s - 1] for s in steps], rtol=1e-6)
    assert "batch_mae" in train.Tags()["scalars"]
    assert all(e.value > 0 for e in train.Scalars("epoch_steps_per_second"))


def test_tensorboard_epoch_update_freq_writes_no_batch_scalars(tmp_path, events):
    x, y = _data()
    _model().fit(x, y, epochs=2, batch_size=8, verbose=0,
                 callbacks=[callbacks.TensorBoard(log_dir=tmp_path)])
    tags = events(tmp_path / "train").Tags()["scalars"]
    assert "epoch_loss" in tags and not any(t.startswith("batch_") for t in tags)


def test_tensorboard_write_images_writes_each_weight(tmp_path, events):
    x, y = _data()
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[
        callbacks.TensorBoard(log_dir=tmp_path, histogram_freq=1, write_images=True)])
    train = events(tmp_path / "train")
    kernel = "hidden/kernel/image"
    assert kernel in train.Tags()["images"]
    image = train.Images(kernel)[-1]
    assert (image.height, image.width) == (3, 2)                    # the (3, 2) kernel


def test_tensorboard_tensorflow_only_arguments_warn(tmp_path):
    pytest.importorskip("tensorboardX")
    with pytest.warns(UserWarning, match="profile_batch=.* has no effect .*profiler"):
        callbacks.TensorBoard(log_dir=tmp_path, profile_batch=(10, 20))
    with pytest.warns(UserWarning, match="embeddings_freq.* has no effect"):
        callbacks.TensorBoard(log_dir=tmp_path, embeddings_freq=1)
    with pytest.warns(UserWarning, match="write_grads=True has no effect"):
        callbacks.TensorBoard(log_dir=tmp_path, write_grads=True)
    with pytest.raises(TypeError, match="unexpected arguments"):
        callbacks.TensorBoard(log_dir=tmp_path, write_everything=True)
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(log_dir=tmp_path, update_freq="step")


# ------------------------------------------------------------------ the others


def test_model_checkpoint_save_freq_in_batches_and_period(tmp_path):
    x, y = _data()
    path = os.path.join(tmp_path, "b-{epoch}-{loss:.3f}.weights.safetensors")
    checkpoint = callbacks.ModelCheckpoint(path, save_weights_only=True, save_freq=3)
    _model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[checkpoint])
    saved = sorted(name.split("-")[1] for name in os.listdir(tmp_path))
    assert saved == ["1", "2", "2"]      # 5 batches an epoch: run batches 3, 6 and 9
    with pytest.warns(DeprecationWarning, match="period"):
        every_other = callbacks.ModelCheckpoint(os.path.join(tmp_path, "p{epoch}.nervenet"),
                                                period=2)
    _model().fit(x, y, epochs=4, verbose=0, callbacks=[every_other])
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("p")) == [
        "p2.nervenet", "p4.nervenet"]
    with pytest.warns(UserWarning, match="options=.* has no effect"):
        callbacks.ModelCheckpoint(os.path.join(tmp_path, "m.nervenet"), options=object())
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint(os.path.join(tmp_path, "m.nervenet"), save_freq="batch")


def test_reduce_lr_on_plateau_takes_tf_keras_2_epsilon():
    with pytest.warns(DeprecationWarning, match="use min_delta"):
        callback = callbacks.ReduceLROnPlateau(epsilon=0.05)
    assert callback.min_delta == 0.05


def test_keras_2_batch_hooks_run_at_every_training_batch():
    x, y = _data()
    seen = []
    old_style = callbacks.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(batch))

    class OldStyle(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

    _model().fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[old_style, OldStyle()])
    assert [s for s in seen if isinstance(s, int)] == [0, 1, 2, 3]
    assert [s for s in seen if isinstance(s, tuple)] == [("begin", b) for b in range(4)]


def test_backup_and_restore_double_checkpoint_falls_back_to_the_previous(tmp_path):
    x, y = _data()
    backup = callbacks.BackupAndRestore(tmp_path, double_checkpoint=True,
                                        delete_checkpoint=False)
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.nervenet",
                                            "checkpoint_previous.nervenet"]
    with open(backup.path, "r+b") as handle:                        # the latest is damaged
        handle.truncate(100)
    again = _model()
    with pytest.warns(UserWarning, match="restoring the previous one"):
        history = again.fit(x, y, epochs=3, verbose=0, callbacks=[backup])
    assert history.epoch == [1, 2]                  # the previous backup was after epoch 1
    with pytest.warns(UserWarning, match="save_before_preemption=True has no effect"):
        callbacks.BackupAndRestore(tmp_path, save_before_preemption=True)


def test_per_class_f1_scores_are_logged_and_printed():
    x, _ = _data(48)
    labels = (x[:, 0] > 0).astype(np.int64)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=[nervenet.metrics.F1Score()])
    history = model.fit(x, np.eye(2)[labels], epochs=1, verbose=2)
    assert np.shape(history.history["f1_score"][0]) == (2,)
