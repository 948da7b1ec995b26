"""Resume equals not stopping: a run interrupted (by an exception, or a real SIGKILL of the
training process) and resumed from BackupAndRestore's checkpoint ends with weights bit-identical
to a run never stopped. The model uses Dropout (a layer generator), shuffling (fit's generator)
and Adam (optimizer state), so each part of the checkpoint matters."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models, optimizers
from nervenet.saving import ModelFormatError, checkpoint

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype(np.float32)
    y = (x[:, :2].sum(1) > 0).astype(np.int64)
    return x, y


def build():
    nervenet.utils.set_random_seed(7)
    # named layers: a checkpoint is matched by weight path, and automatic names count up
    # within a process (a restarted script gets the same ones again)
    model = models.Sequential([layers.Input(shape=(6,)),
                               layers.Dense(16, activation="relu", name="hidden"),
                               layers.Dropout(0.3, name="drop"),
                               layers.Dense(2, activation="softmax", name="out")])
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def digest(model) -> str:
    return hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()


class Interrupt(callbacks.Callback):
    """Raise KeyboardInterrupt at the end of epoch ``at`` (after the backup was written)."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def uninterrupted():
    model = build()
    x, y = data()
    history = model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0)
    return model, history


@pytest.mark.parametrize("stop_after", [0, 2, 4])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, stop_after):
    reference, reference_history = uninterrupted()
    x, y = data()
    model = build()
    backup = callbacks.BackupAndRestore(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0,
                  callbacks=[backup, Interrupt(stop_after)])
    assert checkpoint.load_training_state(backup.path)["epoch"] == stop_after + 1
    resumed = build()  # as a restarted script would: same seed, fresh objects
    history = resumed.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0,
                          callbacks=[callbacks.BackupAndRestore(tmp_path / "backup")])
    assert history.epoch == list(range(stop_after + 1, EPOCHS))
    assert history.history["loss"] == reference_history.history["loss"][stop_after + 1:]
    assert resumed.optimizer.iterations == reference.optimizer.iterations == EPOCHS * 6
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not os.path.exists(backup.path)  # deleted once training ended normally


def test_without_the_random_states_the_resumed_run_differs(tmp_path):
    """The check above can fail: restoring weights and optimizer alone is not enough."""
    reference, _ = uninterrupted()
    x, y = data()
    model = build()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0,
                  callbacks=[callbacks.BackupAndRestore(tmp_path), Interrupt(2)])
    resumed = build()
    resumed(x[:1])
    nervenet.saving.load_weights(resumed, tmp_path / "checkpoint.nervenet")
    resumed.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, initial_epoch=3)
    assert digest(resumed) != digest(reference)


def test_checkpoint_of_another_model_or_with_bad_random_states_is_refused(tmp_path):
    model = build()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "c.nervenet"
    checkpoint.save_checkpoint(model, path, epoch=1)
    other = models.Sequential([layers.Input(shape=(6,)), layers.Dense(16, name="hidden"),
                               layers.Dense(2, name="out")])
    other.compile("adam", "mse")
    with pytest.raises(ModelFormatError, match="random states for layers"):
        checkpoint.restore_checkpoint(other, path)
    with pytest.raises(ModelFormatError, match="no training_state"):
        model.save(tmp_path / "plain.nervenet")
        checkpoint.restore_checkpoint(model, tmp_path / "plain.nervenet")


TRAIN = """
import hashlib, sys, numpy as np
sys.path.insert(0, {tests!r})
from reliability.test_resume import EPOCHS, build, data
from nervenet import callbacks

class Report(callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("epoch", epoch, flush=True)

model = build()
x, y = data()
model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0,
          callbacks=[callbacks.BackupAndRestore(sys.argv[1]), Report()])
print(hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
"""


def test_training_process_killed_with_sigkill_resumes_bit_identically(tmp_path):
    script = TRAIN.format(tests=str(ROOT / "tests"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", script, str(tmp_path / "backup")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    while process.stdout.readline().strip() != "epoch 2":
        pass
    process.send_signal(signal.SIGKILL)  # somewhere in epoch 3, maybe inside its save
    process.wait()
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert checkpoint.load_training_state(tmp_path / "backup" / "checkpoint.nervenet")[
        "epoch"] in (3, 4)
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    lines = resumed.stdout.splitlines()
    assert lines[0] in ("epoch 3", "epoch 4") and lines[-2] == f"epoch {EPOCHS - 1}"
    assert lines[-1] == digest(uninterrupted()[0])
