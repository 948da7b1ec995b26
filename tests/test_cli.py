"""The ``nervenet`` command line end to end, on tiny budgets: train writes the model, run.json,
history.csv, the learning-curve PNG; evaluate, predict and summary read the run back."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nervenet import cli

ROOT = Path(__file__).resolve().parents[1]


def _nervenet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NERVENET_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-m", "nervenet", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300, stdin=subprocess.DEVNULL)


def _history(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_xor_end_to_end(tmp_path):
    out = tmp_path / "xor"
    done = _nervenet("train", "--dataset", "xor", "--epochs", "300", "--batch-size", "4",
                     "--learning-rate", "0.05", "--verbose", "0", "--out", str(out),
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test: loss:" in done.stdout and "accuracy: 1.0000" in done.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"] == "xor" and run["hidden"] == [4] and run["test"]["accuracy"] == 1.0
    assert (out / run["model_file"]).exists()
    rows = _history(out / "history.csv")
    assert len(rows) == 300 and list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss",
                                                   "val_accuracy"]
    assert float(rows[-1]["loss"]) < 0.1 < float(rows[0]["loss"])
    if pytest.importorskip("matplotlib"):
        assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"

    evaluated = _nervenet("evaluate", str(out), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "xor test:" in evaluated.stdout and "accuracy: 1.0000" in evaluated.stdout
    np.savetxt(tmp_path / "inputs.csv", [[0, 0], [0, 1], [1, 0], [1, 1]], delimiter=",")
    predicted = _nervenet("predict", str(out), str(tmp_path / "inputs.csv"), cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.split() == ["0", "1", "1", "0"]
    summary = _nervenet("summary", str(out), cwd=tmp_path)
    assert summary.returncode == 0 and "Total params: 17" in summary.stdout  # 2*4+4 + 4+1


def test_train_mnist5k_mlp_one_epoch_on_a_subset(tmp_path):
    out = tmp_path / "mnist"
    done = _nervenet("train", "--dataset", "mnist5k", "--model", "mlp", "--epochs", "1",
                     "--max-samples", "600", "--hidden", "32", "--learning-rate", "0.005",
                     "--out", str(out),
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Epoch 1/1" in done.stdout  # the progress bar
    run = json.loads((out / "run.json").read_text())
    assert run["input_shape"] == [28, 28] and run["preprocessing"]["kind"] == "scale"
    assert run["test"]["accuracy"] > 0.4  # 10 classes: chance is 0.1
    assert len(_history(out / "history.csv")) == 1
    x = np.zeros((2, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "digits.npy", x)
    predicted = _nervenet("predict", str(out), str(tmp_path / "digits.npy"), "--output",
                          str(tmp_path / "pred.csv"), cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    labels = np.loadtxt(tmp_path / "pred.csv", dtype=int)
    assert labels.shape == (2,) and labels[0] == labels[1] and 0 <= labels[0] < 10


def test_config_file_and_command_line_precedence(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[train]\ndataset = "moons"\nepochs = 7\nhidden = [8]\nseed = 3\n')
    args = cli.make_parser().parse_args(["train", "--config", str(config), "--epochs", "2"])
    options = cli.resolve_options(args)
    assert options["dataset"] == "moons" and options["hidden"] == [8] and options["seed"] == 3
    assert options["epochs"] == 2  # the command line wins
    config.write_text('epochs = 3\nlayers = 4\n')
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['layers'\]"):
        cli.resolve_options(cli.make_parser().parse_args(["train", "--config", str(config)]))


def test_perceptron_on_iris_and_moons(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "moons", "--model", "perceptron", "--epochs", "5",
                     "--verbose", "0", "--out", str(tmp_path / "p")]) == 0
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert run["test"]["accuracy"] > 0.75  # moons are almost linearly separable
    assert cli.main(["evaluate", str(tmp_path / "p")]) == 0
    assert f"accuracy: {run['test']['accuracy']:.4f}" in capsys.readouterr().out


def test_errors_are_reported_with_exit_status_2(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "housing", "--model", "perceptron",
                     "--out", str(tmp_path / "h")]) == 2
    assert "cannot fit the regression" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--dataset", "cifar"])


def test_offline_full_mnist_says_what_to_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NERVENET_OFFLINE", "1")
    monkeypatch.setenv("NERVENET_HOME", str(tmp_path / "cache"))
    assert cli.main(["train", "--dataset", "mnist", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path / "cache" / "mnist") in err


def test_a_diverging_run_exits_non_zero_and_leaves_the_last_good_model(tmp_path, capsys):
    from nervenet import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "xor", "--epochs", "3", "--verbose", "0",
                     "--out", str(out)]) == 0
    model_file = out / "model.nervenet"
    good = model_file.read_bytes()
    status = cli.main(["train", "--dataset", "housing", "--optimizer", "sgd",
                       "--learning-rate", "1e12", "--epochs", "2", "--verbose", "0",
                       "--max-samples", "400", "--out", str(out)])
    assert status == 1
    assert "training diverged" in capsys.readouterr().err
    assert model_file.read_bytes() == good
