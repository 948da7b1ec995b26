"""The ``nervenet`` command line, driven as a user drives it (subprocesses of the real command,
tiny data): every run gets its own folder, Ctrl-C keeps the last epoch and --resume finishes it
bit for bit, own CSV/NPZ data, models that carry their preprocessing and class names, and one
line with status 2 for every error."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nervenet import cli, models

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(NERVENET_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def _nervenet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nervenet", *args], capture_output=True,
                          text=True, env=_env(), cwd=cwd, timeout=300, stdin=subprocess.DEVNULL)


def _history(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _weights(path: Path) -> list[np.ndarray]:
    return models.load_model(path).get_weights()


def test_xor_trains_evaluates_predicts_in_its_own_run_folder(tmp_path):
    done = _nervenet("train", "--dataset", "xor", "--epochs", "120", "--batch-size", "4",
                     "--learning-rate", "0.1", "--verbose", "0", "--out", "runs",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "runs" / "xor_mlp" / "version_0"
    assert "test: loss:" in done.stdout and "accuracy: 1.0000" in done.stdout
    assert str(Path("runs/xor_mlp/version_0")) in done.stdout.splitlines()[-1]
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["epochs"] == 120 and run["architecture"]["hidden"] == [4]
    assert run["status"] == "completed" and run["test"]["accuracy"] == 1.0
    assert run["splits"] == {"train": 4, "validation": 0, "test": 4}
    assert set(run["versions"]) == {"nervenet", "numpy", "python"}
    rows = _history(out / "history.csv")
    assert len(rows) == 120 and list(rows[0]) == ["epoch", "loss", "accuracy"]
    assert float(rows[-1]["loss"]) < 0.1 < float(rows[0]["loss"])
    if pytest.importorskip("matplotlib"):
        for name in ("learning_curves.png", "gradient_flow.png"):
            assert (out / name).read_bytes()[:4] == b"\x89PNG"
    evaluated = _nervenet("evaluate", str(out), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "xor test:" in evaluated.stdout and "accuracy: 1.0000" in evaluated.stdout
    np.savetxt(tmp_path / "inputs.csv", [[0, 0], [0, 1], [1, 0], [1, 1]], delimiter=",")
    predicted = _nervenet("predict", str(out), str(tmp_path / "inputs.csv"), cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.split() == ["0", "1", "1", "0"]
    summary = _nervenet("summary", str(out), cwd=tmp_path)
    assert summary.returncode == 0 and "Total params: 17" in summary.stdout  # 2*4+4 + 4+1


def test_two_runs_leave_two_folders_and_a_run_folder_is_never_replaced_unasked(tmp_path,
                                                                              capsys):
    options = ["train", "--dataset", "moons", "--epochs", "2", "--verbose", "0", "--out",
               str(tmp_path / "runs"), "--name", "m"]
    assert cli.main(options) == 0 and cli.main(options) == 0
    first, second = (tmp_path / "runs" / "m" / f"version_{i}" for i in (0, 1))
    assert (first / "model.nervenet").is_file() and (second / "model.nervenet").is_file()
    assert sorted(p.name for p in (first / "logs").iterdir()) == ["train", "validation"]
    before = (first / "model.nervenet").read_bytes()
    capsys.readouterr()
    assert cli.main(options[:-4] + ["--out", str(first)]) == 2
    assert "holds a run" in capsys.readouterr().err
    assert (first / "model.nervenet").read_bytes() == before
    assert cli.main(options[:-4] + ["--out", str(first), "--overwrite", "--seed", "5"]) == 0
    assert json.loads((first / "run.json").read_text())["options"]["seed"] == 5


def test_the_test_split_is_evaluated_once_and_evaluate_reproduces_it(tmp_path, capsys):
    out = tmp_path / "iris"
    assert cli.main(["train", "--dataset", "iris", "--epochs", "4", "--verbose", "0",
                     "--out", str(out), "--overwrite", "--validation-split", "0.2"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["splits"] == {"train": 96, "validation": 24, "test": 30}
    assert cli.evaluate(str(out)) == run["test"]  # the same floats, not only 4 digits
    data = cli.load_data({**cli.DEFAULTS, **run["options"]})
    # stratified: every split keeps iris's 1/3 per class
    for key in ("y_train", "y_val", "y_test"):
        counts = np.bincount(data[key], minlength=3)
        assert counts.max() - counts.min() <= 1, (key, counts)
    # no sample is in two splits
    rows = [tuple(r) for key in ("x_train", "x_val", "x_test") for r in data[key].tolist()]
    assert len(rows) == 150


def _interrupt_at_epoch_2(cwd: Path, options: list[str], signum: int) -> None:
    """Run ``nervenet train OPTIONS`` (30 epochs, --verbose 2) in ``cwd``, send ``signum`` when
    epoch 2 starts, and check it stops as promised: status 130, one line naming --resume."""
    process = subprocess.Popen([sys.executable, "-m", "nervenet", "train", *options], cwd=cwd,
                               env=_env(), text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    for line in process.stdout:
        if line.startswith("Epoch 2/30"):
            process.send_signal(signum)
            break
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "--resume" in err, err


def test_sigint_keeps_the_last_epoch_and_resume_finishes_bit_identically(tmp_path):
    options = ["--dataset", "moons", "--epochs", "30", "--verbose", "2", "--hidden", "32,32",
               "--seed", "3", "--overwrite"]
    _interrupt_at_epoch_2(tmp_path, [*options, "--out", "stopped"], signal.SIGINT)
    stopped = tmp_path / "stopped"
    run = json.loads((stopped / "run.json").read_text())
    kept = run["epochs_completed"]
    assert run["status"] == "interrupted" and 2 <= kept < 30
    assert len(_history(stopped / "history.csv")) == kept
    assert models.load_model(stopped / "model.nervenet").metadata["class_names"] == ["0", "1"]
    assert cli.main(["train", "--resume", str(stopped), "--verbose", "0"]) == 0
    assert cli.main(["train", *options, "--verbose", "0", "--out", str(tmp_path / "full")]) == 0
    for a, b in zip(_weights(stopped / "model.nervenet"), _weights(tmp_path / "full" /
                                                                   "model.nervenet")):
        np.testing.assert_array_equal(a, b)
    assert _history(stopped / "history.csv") == _history(tmp_path / "full" / "history.csv")
    assert not (stopped / "checkpoint.nervenet").exists()


def test_sigterm_keeps_the_last_epoch_as_sigint_does(tmp_path):
    # what a cluster's scheduler or `kill` sends: the same one line, status and kept files
    _interrupt_at_epoch_2(tmp_path, ["--dataset", "moons", "--epochs", "30", "--verbose", "2",
                                     "--hidden", "16", "--out", "stopped", "--overwrite"],
                          signal.SIGTERM)
    run = json.loads((tmp_path / "stopped" / "run.json").read_text())
    assert run["status"] == "interrupted" and 2 <= run["epochs_completed"] < 30
    assert len(_history(tmp_path / "stopped" / "history.csv")) == run["epochs_completed"]
    models.load_model(tmp_path / "stopped" / "model.nervenet")
    assert (tmp_path / "stopped" / "checkpoint.nervenet").exists()


def _flowers(path: Path, n: int, seed: int) -> list[str]:
    """A CSV with a header: two numeric columns far apart per species, a nominal column."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["rosa", "tulipa", "viola"], size=n)
    centre = {"rosa": (10.0, 200.0), "tulipa": (20.0, 100.0), "viola": (30.0, 300.0)}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["petal mm", "stem mm", "colour", "species"])
        for name in species:
            a, b = centre[name]
            writer.writerow([f"{a + rng.normal():.2f}", f"{b + 5 * rng.normal():.1f}",
                             rng.choice(["red", "white"]), name])
    return list(species)


def test_own_csv_trains_and_the_model_file_alone_predicts_raw_rows(tmp_path):
    _flowers(tmp_path / "flowers.csv", 150, 0)
    done = _nervenet("train", "--data", "flowers.csv", "--target", "species", "--categorical",
                     "colour", "--epochs", "30", "--learning-rate", "0.01", "--verbose", "0",
                     "--out", "runs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "runs" / "flowers_mlp" / "version_0"
    run = json.loads((folder / "run.json").read_text())
    assert run["data"]["sha256"] and run["data"]["class_names"] == ["rosa", "tulipa", "viola"]
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    (alone / "flowers.nervenet").write_bytes((folder / "model.nervenet").read_bytes())
    truth = _flowers(alone / "new.csv", 40, 1)  # raw rows, unscaled, the target included
    predicted = _nervenet("predict", "flowers.nervenet", "new.csv", cwd=alone)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.split() == truth
    written = _nervenet("predict", "flowers.nervenet", "new.csv", "--output", "p.csv",
                        cwd=alone)
    assert written.returncode == 0, written.stderr
    rows = _history(alone / "p.csv")
    assert list(rows[0]) == ["prediction", "p(rosa)", "p(tulipa)", "p(viola)"]
    assert [r["prediction"] for r in rows] == truth
    evaluated = _nervenet("evaluate", "flowers.nervenet", "--data", "new.csv", cwd=alone)
    assert evaluated.returncode == 0 and "accuracy: 1.0000" in evaluated.stdout


def test_npz_data_infers_regression_and_images_keep_their_rescaling(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1, 10, 100] + [0, 50, -300]
    np.savez(tmp_path / "d.npz", x=x, y=x @ [1.0, 0.1, 0.01])
    assert cli.main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "2", "--verbose",
                     "0", "--out", str(tmp_path / "r"), "--overwrite"]) == 0
    model = models.load_model(tmp_path / "r" / "model.nervenet")
    assert model.metadata["task"] == "regression"
    assert model.layers[0].name == "normalization"
    np.testing.assert_allclose(model.layers[0].mean.data, x.mean(0), rtol=0.2, atol=0.3)
    assert cli.main(["train", "--dataset", "mnist5k", "--model", "perceptron", "--epochs",
                     "3", "--max-samples", "300", "--verbose", "0", "--out",
                     str(tmp_path / "p"), "--overwrite"]) == 0
    history = _history(tmp_path / "p" / "history.csv")
    assert [r["epoch"] for r in history] == ["1", "2", "3"]
    assert len({r["val_accuracy"] for r in history}) > 1  # measured each epoch
    perceptron = models.load_model(tmp_path / "p" / "model.nervenet")
    assert perceptron.layers[0].name == "rescaling"


def _one_error(capsys, argv: list[str], *words: str) -> None:
    assert cli.main(argv) == 2, argv
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_every_error_is_one_line_with_status_2(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("a,b,kind\n1,x,u\n2,y,v\n3,x,u\n4,y,v\n")
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "xor", "--epochs", "1", "--verbose", "0", "--out",
                     str(run), "--overwrite"]) == 0
    capsys.readouterr()
    cases = [
        (["train", "--model", "cnn", "--hidden", "8"], "--hidden", "cnn"),
        (["train", "--model", "perceptron", "--optimizer", "sgd"], "--optimizer"),
        (["train", "--model", "perceptron", "--dataset", "housing"], "regression"),
        (["train", "--target", "a"], "--target", "--data"),
        (["train", "--dataset", "iris", "--data", str(table)], "--data"),
        (["train", "--data", str(table)], "--target", "kind"),
        (["train", "--data", str(table), "--target", "kind"], str(table), "'b'",
         "--categorical"),
        (["train", "--data", str(table), "--target", "nope"], "--target", "'nope'"),
        (["train", "--data", str(tmp_path / "missing.csv"), "--target", "a"], "missing.csv"),
        (["train", "--dataset", "mnist5k", "--test-split", "0.3"], "--test-split"),
        (["train", "--validation-split", "1.5"], "--validation-split"),
        (["train", "--dataset", "xor", "--out", str(run)], str(run), "--overwrite"),
        (["train", "--resume", str(run)], "completed"),
        (["train", "--resume", str(run), "--epochs", "3"], "--epochs", "--resume"),
        (["evaluate", str(tmp_path / "none")], "does not exist"),
        (["predict", str(run), str(table)], str(table)),
        (["train", "--epochs", "many"], "--epochs", "many"),
        (["train", "--dataset", "cifar"], "--dataset", "cifar"),
    ]
    for argv, *words in cases:
        try:
            _one_error(capsys, argv, *words)
        except SystemExit as stop:  # argparse errors: one line, status 2
            assert stop.code == 2
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    config = tmp_path / "bad.toml"
    config.write_text("epochs = [\n")
    _one_error(capsys, ["train", "--config", str(config)], str(config), "TOML")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"options": {}')
    _one_error(capsys, ["evaluate", str(broken)], "run.json", "JSON")
    (broken / "run.json").write_text('{"options": {}, "data": {}}')
    _one_error(capsys, ["evaluate", str(broken)], "run.json", "model_file")


def test_debug_shows_the_traceback_and_help_shows_defaults(tmp_path):
    done = _nervenet("train", "--model", "cnn", "--hidden", "4", "--debug", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" in done.stderr
    helped = " ".join(_nervenet("train", "--help", cwd=tmp_path).stdout.split())
    for default in ("(default: 0.1)", "(default: runs)", "(default: adam)", "(default: 32)"):
        assert default in helped


def test_a_closed_pipe_ends_quietly(tmp_path):
    assert cli.main(["train", "--dataset", "xor", "--epochs", "1", "--verbose", "0", "--out",
                     str(tmp_path / "r"), "--overwrite"]) == 0
    np.savetxt(tmp_path / "many.csv", np.tile([[0, 1]], (20000, 1)), delimiter=",")
    process = subprocess.Popen([sys.executable, "-m", "nervenet", "predict", "r", "many.csv"],
                               cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0 and err == "", err


def test_config_file_and_command_line_precedence(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[train]\ndataset = "moons"\nepochs = 7\nhidden = [8]\nseed = 3\n')
    args = cli.make_parser().parse_args(["train", "--config", str(config), "--epochs", "2"])
    options, given = cli.resolve_options(args)
    assert options["dataset"] == "moons" and options["hidden"] == [8] and options["seed"] == 3
    assert options["epochs"] == 2  # the command line wins
    assert given == {"dataset", "epochs", "hidden", "seed"}
    config.write_text('epochs = 3\nlayers = 4\n')
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['layers'\]"):
        cli.resolve_options(cli.make_parser().parse_args(["train", "--config", str(config)]))


def test_offline_full_mnist_says_what_to_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NERVENET_OFFLINE", "1")
    monkeypatch.setenv("NERVENET_HOME", str(tmp_path / "cache"))
    assert cli.main(["train", "--dataset", "mnist", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path / "cache" / "mnist") in err


def test_a_diverging_run_exits_1_and_saves_no_model(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "--dataset", "housing", "--optimizer", "sgd",
                       "--learning-rate", "1e12", "--epochs", "2", "--verbose", "0",
                       "--max-samples", "400", "--out", str(out), "--overwrite"])
    assert status == 1
    assert "training diverged" in capsys.readouterr().err
    assert not (out / "model.nervenet").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"


def test_sigterm_asks_to_stop_at_the_next_batch_end_and_a_second_signal_stops_at_once():
    from nervenet import runs

    before = signal.getsignal(signal.SIGTERM)
    with runs.InterruptGuard() as guard:
        stop = runs.StopOnSignal(guard)
        stop.on_train_batch_end(0, {})  # nothing asked: goes on
        os.kill(os.getpid(), signal.SIGTERM)
        assert guard.requested == "SIGTERM"
        with pytest.raises(runs.Interrupted, match="SIGTERM"):
            stop.on_train_batch_end(1, {})
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == before  # put back as it was
