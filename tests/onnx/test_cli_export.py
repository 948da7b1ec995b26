"""``nervenet export MODEL --format onnx --out FILE.onnx`` and ``nervenet predict FILE.onnx``."""

from __future__ import annotations

import numpy as np

from nervenet import cli, layers, models, utils
from tests.onnx.common import run


def test_export_then_predict_from_the_onnx_file(tmp_path, capsys):
    utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(8, 8)), layers.Reshape((8, 8, 1)),
                               layers.Conv2D(3, 3, activation="relu"), layers.Flatten(),
                               layers.Dense(4, activation="softmax")])
    model.save(tmp_path / "model.nervenet")
    x = np.random.default_rng(0).uniform(size=(7, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(tmp_path / "model.nervenet"), "--format", "onnx",
                     "--out", str(out), "--opset", "18"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    np.testing.assert_allclose(run(out, [x])[0], model.predict(x), rtol=0, atol=1e-5)
    assert cli.main(["predict", str(out), str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / "p.csv")]) == 0
    np.testing.assert_allclose(np.loadtxt(tmp_path / "p.csv", delimiter=","), model.predict(x),
                               atol=1e-6)


def test_export_errors_are_reported(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "missing.nervenet"), "--out",
                     str(tmp_path / "m.onnx")]) == 2
    assert "nervenet export: error: MODEL" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float32))
    assert cli.main(["predict", str(tmp_path / "bad.onnx"), str(tmp_path / "x.npy")]) == 2
    assert "not a readable ONNX file" in capsys.readouterr().err
