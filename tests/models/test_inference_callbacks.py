"""evaluate and predict take callbacks and verbose as Keras: the on_test_* and on_predict_*
hooks fire in order with their logs, fit's validation fires on_test_*, and a progress bar is
shown by default."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events: list[tuple] = []

    def _record(name):  # noqa: N805  (builds the hook methods below)
        def hook(self, *args):
            self.events.append((name, *args))
        return hook

    for _name in [n for n in vars(callbacks.Callback) if n.startswith("on_")]:
        locals()[_name] = _record(_name)
    del _name


def model_and_data():
    nervenet.utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    return model, x, x.sum(1, keepdims=True)


def test_evaluate_fires_the_test_hooks_with_running_logs():
    model, x, y = model_and_data()
    recorder = Recorder()
    loss, mae = model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[recorder])
    names = [event[0] for event in recorder.events]
    assert names == ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 3 + [
        "on_test_end"]
    assert [event[1] for event in recorder.events[1:-1]] == [0, 0, 1, 1, 2, 2]
    final = recorder.events[-1][1]
    assert final == pytest.approx({"loss": loss, "mae": mae})
    assert recorder.events[-2][2] == pytest.approx(final)  # the last batch's running logs
    assert recorder.model is model and recorder.params["steps"] == 3


def test_predict_fires_the_predict_hooks_with_the_outputs():
    model, x, _ = model_and_data()
    recorder = Recorder()
    predictions = model.predict(x, batch_size=4, verbose=0, callbacks=[recorder])
    names = [event[0] for event in recorder.events]
    assert names == ["on_predict_begin"] + ["on_predict_batch_begin",
                                            "on_predict_batch_end"] * 3 + ["on_predict_end"]
    batches = [event[2]["outputs"] for event in recorder.events if
               event[0] == "on_predict_batch_end"]
    np.testing.assert_array_equal(np.concatenate(batches), predictions)


def test_fit_validation_fires_the_test_hooks_each_epoch():
    model, x, y = model_and_data()
    recorder = Recorder()
    model.fit(x, y, epochs=2, batch_size=5, verbose=0, validation_data=(x, y),
              callbacks=[recorder])
    names = [event[0] for event in recorder.events]
    assert names.count("on_test_begin") == names.count("on_test_end") == 2
    first_end = names.index("on_test_end")
    assert names[first_end + 1] == "on_epoch_end"  # validation runs before the epoch ends


def test_progress_is_shown_by_default_and_silenced_by_verbose_0(capsys):
    model, x, y = model_and_data()
    model.evaluate(x, y, batch_size=4)
    shown = capsys.readouterr().out
    assert "3/3" in shown and "loss:" in shown and "mae:" in shown and "Epoch" not in shown
    model.predict(x, batch_size=4)
    assert "3/3" in capsys.readouterr().out
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=1, batch_size=5, validation_data=(x, y))  # "auto": a bar
    shown = capsys.readouterr().out
    assert shown.count("Epoch 1/1") == 1 and "val_loss" in shown
    with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2"):
        model.predict(x, verbose=3)
