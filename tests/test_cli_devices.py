"""``nervenet train --device``: the fake device trains the same run as the CPU; a GPU that is
not there, or a device the perceptron rule cannot use, is one clear error."""

from __future__ import annotations

import json
import sys
import types

import numpy as np

from nervenet import cli, models


def _train(out, device):
    return cli.main(["train", "--dataset", "iris", "--epochs", "3", "--verbose", "0",
                     "--seed", "4", "--out", str(out), "--overwrite", "--device", device])


def test_train_on_the_fake_device_gives_the_cpu_run(tmp_path):
    assert _train(tmp_path / "cpu", "cpu") == 0
    assert _train(tmp_path / "fake", "fake") == 0
    runs = {d: json.loads((tmp_path / d / "run.json").read_text()) for d in ("cpu", "fake")}
    assert runs["fake"]["options"]["device"] == "fake"
    assert runs["fake"]["test"] == runs["cpu"]["test"]
    histories = [(tmp_path / d / "history.csv").read_text() for d in ("cpu", "fake")]
    assert histories[0] == histories[1]
    saved = [models.load_model(tmp_path / d / "model.nervenet") for d in ("cpu", "fake")]
    assert {w.device for w in saved[1].weights} == {"cpu"}  # files hold host arrays
    for a, b in zip(saved[0].get_weights(), saved[1].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_train_on_a_gpu_that_is_not_there_is_one_clear_error(tmp_path, capsys, monkeypatch):
    stub = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "cupy", stub)
    assert _train(tmp_path / "gpu", "gpu") == 2
    err = capsys.readouterr().err
    assert 'device "gpu"' in err and "is_available() is False" in err
    assert not (tmp_path / "gpu").exists()  # refused before any run folder is made
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert _train(tmp_path / "gpu", "gpu") == 2
    assert "nervenet[gpu]" in capsys.readouterr().err


def test_the_perceptron_rule_refuses_a_device(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "xor", "--model", "perceptron", "--device", "fake",
                     "--verbose", "0", "--out", str(tmp_path)]) == 2
    assert "--device does not apply to --model perceptron" in capsys.readouterr().err
