"""The ``nervenet`` command line (also ``python -m nervenet``).

    nervenet train [--dataset mnist5k|mnist|fashion_mnist|iris|housing|xor|moons]
                   [--model mlp|cnn|perceptron] [--optimizer adam] [--learning-rate LR]
                   [--epochs N] [--batch-size N] [--hidden 300,100] [--activation relu]
                   [--max-samples N] [--seed S] [--out DIR] [--config FILE.toml]
    nervenet evaluate MODEL [--dataset NAME]
    nervenet predict MODEL FILE [--output FILE.csv]
    nervenet summary MODEL
    nervenet playground [--port P] [--host 127.0.0.1] [--no-browser]

``train`` prints a progress bar and the test metrics, and writes to DIR: the model
(``model.nervenet``, or ``model.weights.npz`` where the model cannot be saved whole),
``run.json`` (what was trained and how its inputs are preprocessed), ``history.csv``, the
learning curves ``learning_curves.png`` (with matplotlib) and TensorBoard logs in ``logs/``
(with the TensorBoard callback and tensorboardX). A TOML file given with ``--config`` holds the
same options (``epochs = 5``, ``hidden = [64, 32]``; at top level or in a ``[train]`` table);
options on the command line win over it.

MODEL is a run directory written by ``train`` or a ``.nervenet`` file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tomllib
from pathlib import Path

import numpy as np

import nervenet
from nervenet import callbacks, distributed, layers, models, optimizers
from nervenet.data import datasets
from nervenet.models.perceptron import perceptron_rule
from nervenet.saving.archive import atomic_write

DATASETS = ["mnist5k", "mnist", "fashion_mnist", "iris", "housing", "xor", "moons"]
MODELS = ["mlp", "cnn", "perceptron"]
IMAGE_DATASETS = {"mnist5k", "mnist", "fashion_mnist"}

DEFAULTS = {"dataset": "mnist5k", "model": "mlp", "optimizer": "adam", "learning_rate": None,
            "epochs": 5, "batch_size": 32, "hidden": None, "activation": None,
            "max_samples": None, "seed": 0, "out": None, "verbose": 1}

#: hidden layers and activation of the MLP, per dataset (the course's choices)
MLP_DEFAULTS = {"xor": ([4], "tanh"), "moons": ([16, 16], "relu"), "iris": ([16], "relu"),
                "housing": ([64, 32], "relu")}
IMAGE_MLP = ([300, 100], "relu")


# ------------------------------------------------------------------------------------ data
def _split(n: int, test_fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(n)
    cut = n - max(1, int(round(n * test_fraction)))
    return order[:cut], order[cut:]


def load_dataset(name: str, seed: int = 0) -> dict:
    """The raw train/test split of a CLI dataset and its task.

    Returns:
        A dict with ``x_train, y_train, x_test, y_test`` (unpreprocessed), ``task``
        ("binary", "multiclass" or "regression") and ``classes`` (the number of classes).
    """
    if name not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {name!r}")
    if name in IMAGE_DATASETS:
        loader = {"mnist5k": lambda: datasets.load_mnist("5k"),
                  "mnist": lambda: datasets.load_mnist("full"),
                  "fashion_mnist": datasets.load_fashion_mnist}[name]
        (x_train, y_train), (x_test, y_test) = loader()
        return {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test,
                "y_test": y_test.astype(np.int64), "task": "multiclass", "classes": 10}
    # NOTE: binary targets get the output's shape (n, 1): BinaryAccuracy compares y and the
    # prediction elementwise, and (n,) against (n, 1) would broadcast to (n, n).
    if name == "xor":
        x, y = datasets.xor()
        return {"x_train": x, "y_train": y[:, None], "x_test": x, "y_test": y[:, None],
                "task": "binary", "classes": 2}
    if name == "moons":
        x, y = datasets.make_moons(1000, noise=0.2, seed=seed)
        y = y.astype(np.float32)[:, None]
        train, test = _split(len(x), 0.2, seed)
        return {"x_train": x[train], "y_train": y[train], "x_test": x[test],
                "y_test": y[test], "task": "binary", "classes": 2}
    if name == "iris":
        x, y, _, _ = datasets.load_iris()
        train, test = _split(len(x), 0.2, seed)
        return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test],
                "task": "multiclass", "classes": 3}
    x, y, _ = datasets.load_california_housing()
    train, test = _split(len(x), 0.2, seed)
    return {"x_train": x[train], "y_train": y[train].astype(np.float32), "x_test": x[test],
            "y_test": y[test].astype(np.float32), "task": "regression", "classes": 0}


def fit_preprocessing(name: str, x_train: np.ndarray) -> dict:
    """How inputs are scaled, from the training set: pixels / 255, or z-scores (JSON-able)."""
    if name in IMAGE_DATASETS:
        return {"kind": "scale", "factor": 1 / 255}
    if name in ("iris", "housing"):
        return {"kind": "standardize", "mean": x_train.mean(axis=0).tolist(),
                "std": x_train.std(axis=0).tolist()}
    return {"kind": "none"}


def apply_preprocessing(spec: dict, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if spec["kind"] == "scale":
        return x * np.float32(spec["factor"])
    if spec["kind"] == "standardize":
        mean, std = np.asarray(spec["mean"]), np.asarray(spec["std"])
        if x.shape[-1] != len(mean):
            raise ValueError(f"the model expects {len(mean)} features per sample, got "
                             f"{x.shape[-1]}")
        return ((x - mean) / np.where(std == 0, 1, std)).astype(np.float32)  # z-scores
    return x


# ---------------------------------------------------------------------------------- models
def _output_layer(task: str, classes: int, activation=None) -> layers.Dense:
    if task == "binary":
        return layers.Dense(1, activation=activation or "sigmoid", name="output")
    if task == "multiclass":
        return layers.Dense(classes, activation=activation or "softmax", name="output")
    return layers.Dense(1, name="output")


def build_model(kind: str, input_shape: tuple, task: str, classes: int, hidden=None,
                activation: str | None = None) -> models.Sequential:
    """The CLI's models: an MLP, a small CNN (images) or a one-layer perceptron (step units)."""
    if kind not in MODELS:
        raise ValueError(f"--model must be one of {MODELS}, got {kind!r}")
    stack = [layers.Input(shape=input_shape)]
    if kind == "perceptron":
        if task == "regression":
            raise ValueError("--model perceptron classifies: it cannot fit the regression "
                             "dataset 'housing'")
        if len(input_shape) > 1:
            stack.append(layers.Flatten())
        units = 1 if task == "binary" else classes
        stack.append(layers.Dense(units, activation="step", kernel_initializer="zeros",
                                  name="output"))
        return models.Sequential(stack)
    if kind == "cnn":
        if len(input_shape) != 2:
            raise ValueError("--model cnn needs an image dataset (mnist5k, mnist, "
                             "fashion_mnist)")
        stack += [layers.Reshape(input_shape + (1,)),
                  layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal"),
                  layers.MaxPooling2D(2),
                  layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_normal"),
                  layers.MaxPooling2D(2),
                  layers.Flatten(),
                  layers.Dropout(0.3),
                  layers.Dense(128, activation="relu", kernel_initializer="he_normal"),
                  _output_layer(task, classes)]
        return models.Sequential(stack)
    if len(input_shape) > 1:
        stack.append(layers.Flatten())
    for units in hidden:
        stack.append(layers.Dense(int(units), activation=activation,
                                  kernel_initializer="he_normal" if activation == "relu"
                                  else "glorot_uniform"))
    stack.append(_output_layer(task, classes))
    return models.Sequential(stack)


def compile_settings(task: str) -> tuple[str, list[str]]:
    if task == "binary":
        return "binary_crossentropy", ["accuracy"]
    if task == "multiclass":
        return "sparse_categorical_crossentropy", ["accuracy"]
    return "mse", ["mae"]


def _optimizer(name: str, learning_rate: float | None):
    optimizer = optimizers.get(name)
    if learning_rate is None:
        return optimizer
    try:
        return type(optimizer)(learning_rate=float(learning_rate))
    except TypeError:
        raise ValueError(f"--learning-rate: optimizer {name!r} takes no learning rate") from None


# ---------------------------------------------------------------------------------- config
def _hidden(value) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.replace(" ", "").split(",") if part]
    try:
        units = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"--hidden must be a comma-separated list of layer sizes, got "
                         f"{value!r}") from None
    if not units or min(units) < 1:
        raise ValueError(f"--hidden must list positive layer sizes, got {value!r}")
    return units


def resolve_options(args: argparse.Namespace) -> dict:
    """Command line over the TOML config over the defaults."""
    options = dict(DEFAULTS)
    if args.config:
        with open(args.config, "rb") as handle:
            config = tomllib.load(handle)
        config = config.get("train", config)
        config = {key.replace("-", "_"): value for key, value in config.items()}
        unknown = sorted(set(config) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"--config {args.config}: unknown option(s) {unknown}; valid: "
                             f"{sorted(DEFAULTS)}")
        options.update(config)
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    options["hidden"] = _hidden(options["hidden"])
    for key in ("epochs", "batch_size"):
        if isinstance(options[key], bool) or not isinstance(options[key], int) or (
                options[key] < 1):
            raise ValueError(f"--{key.replace('_', '-')} must be a positive int, got "
                             f"{options[key]!r}")
    return options


# ----------------------------------------------------------------------------------- train
def _limit(data: dict, max_samples: int | None) -> dict:
    if max_samples is None:
        return data
    if max_samples < 1:
        raise ValueError(f"--max-samples must be >= 1, got {max_samples}")
    return {**data, **{key: data[key][:max_samples]
                       for key in ("x_train", "y_train", "x_test", "y_test")}}


def _train_perceptron(model, x, y, task, classes, epochs, seed, x_test, y_test, verbose):
    layer = model.get_layer("output")
    targets = y.reshape(-1, 1) if task == "binary" else np.eye(classes)[y.astype(int).ravel()]
    flat = x.reshape(len(x), -1)
    history = {"errors": [], "accuracy": []}
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        errors = perceptron_rule(layer, flat, targets, epochs=1, seed=rng)[0]
        accuracy = perceptron_accuracy(model, x, y, task)
        history["errors"].append(float(errors))
        history["accuracy"].append(accuracy)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs} - errors: {errors} - accuracy: {accuracy:.4f}")
        if errors == 0:
            break
    history["val_accuracy"] = [perceptron_accuracy(model, x_test, y_test, task)] * len(
        history["errors"])
    return history


def perceptron_accuracy(model, x, y, task) -> float:
    """Accuracy of a step-unit model; several units are read by their largest net input."""
    layer = model.get_layer("output")
    net = x.reshape(len(x), -1) @ layer.kernel.data + layer.bias.data
    predicted = (net[:, 0] > 0).astype(int) if task == "binary" else net.argmax(axis=1)
    return float(np.mean(predicted == np.asarray(y).astype(int).ravel()))


def write_history_csv(history: dict, path: Path) -> None:
    keys = list(history)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["epoch"] + keys)
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1] + [repr(float(history[k][epoch])) for k in keys])
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


def save_model(model, out: Path) -> Path:
    """``model.save`` (the safe zip format) where available; else the weights as a NumPy
    archive (no pickle) that ``load_run`` rebuilds with ``run.json``."""
    if hasattr(model, "save"):
        path = out / "model.nervenet"
        model.save(path)
        return path
    path = out / "model.weights.npz"
    atomic_write(path, lambda handle: np.savez(handle, *model.get_weights()))
    return path


def train(options: dict) -> dict:
    """Train as the options say; write the run directory; return the test metrics."""
    nervenet.utils.set_random_seed(options["seed"])
    name, kind = options["dataset"], options["model"]
    data = _limit(load_dataset(name, options["seed"]), options["max_samples"])
    prep = fit_preprocessing(name, np.asarray(data["x_train"], dtype=np.float64))
    x_train, x_test = (apply_preprocessing(prep, data[k]) for k in ("x_train", "x_test"))
    y_train, y_test = data["y_train"], data["y_test"]
    hidden, activation = MLP_DEFAULTS.get(name, IMAGE_MLP)
    hidden = options["hidden"] or hidden
    activation = options["activation"] or activation
    model = build_model(kind, x_train.shape[1:], data["task"], data["classes"], hidden,
                        activation)
    out = Path(options["out"] or f"runs/{name}_{kind}")
    out.mkdir(parents=True, exist_ok=True)
    verbose = int(options["verbose"])
    loss, metric_ids = compile_settings(data["task"])
    model.compile(optimizer=_optimizer(options["optimizer"], options["learning_rate"]),
                  loss=loss, metrics=metric_ids)
    if kind == "perceptron":
        history = _train_perceptron(model, x_train, y_train, data["task"], data["classes"],
                                    options["epochs"], options["seed"], x_test, y_test, verbose)
        results = {"accuracy": perceptron_accuracy(model, x_test, y_test, data["task"])}
    else:
        extra = [callbacks.TerminateOnNaN()]
        if hasattr(callbacks, "TensorBoard"):
            try:
                extra.append(callbacks.TensorBoard(log_dir=str(out / "logs")))
            except ImportError as error:
                print(f"note: no TensorBoard logs ({error})", file=sys.stderr)
        fit = model.fit(x_train, y_train, epochs=options["epochs"],
                        batch_size=options["batch_size"], validation_data=(x_test, y_test),
                        verbose=verbose, callbacks=extra)
        history = fit.history
        if not np.isfinite(history["loss"][-1]):
            raise FloatingPointError(
                f"training diverged: the loss became {history['loss'][-1]} in epoch "
                f"{len(history['loss'])}; the model was not saved (a model file already in "
                f"{out} is left as it was). Lower --learning-rate")
        results = model.evaluate(x_test, y_test, batch_size=256, return_dict=True)
    if distributed.rank() != 0:  # under mpiexec: one run, written by rank 0
        return results
    print("test: " + " - ".join(f"{key}: {value:.4f}" for key, value in results.items()))
    model_path = save_model(model, out)
    run = {"dataset": name, "model": kind, "task": data["task"], "classes": data["classes"],
           "input_shape": list(x_train.shape[1:]), "hidden": hidden, "activation": activation,
           "preprocessing": prep, "loss": loss, "metrics": metric_ids,
           "model_file": model_path.name, "seed": options["seed"], "test": results,
           "nervenet": nervenet.__version__}
    atomic_write(out / "run.json", lambda handle: handle.write((json.dumps(run, indent=2)
                                                                + "\n").encode()))
    write_history_csv(history, out / "history.csv")
    try:
        from nervenet import viz

        viz.plot_history(history, out / "learning_curves.png")
    except ImportError as error:
        print(f"note: no learning-curve PNG ({error})", file=sys.stderr)
    print(f"saved the model to {model_path}, the run to {out}")
    return results


# ----------------------------------------------------------------------- evaluate/predict
def load_run(path: str | os.PathLike):
    """``(model, run)`` from a run directory (``run.json`` and the model file) or from a
    ``.nervenet`` file (``run`` is then read from a ``run.json`` beside it, if any)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MODEL {path} does not exist (a run directory or a .nervenet "
                                "file)")
    folder = path if path.is_dir() else path.parent
    spec = folder / "run.json"
    run = json.loads(spec.read_text()) if spec.exists() else None
    if path.is_dir():
        if run is None:
            raise FileNotFoundError(f"{path} is not a run directory: run.json is missing")
        path = folder / run["model_file"]
    if path.suffix == ".npz":
        model = build_model(run["model"], tuple(run["input_shape"]), run["task"],
                            run["classes"], run["hidden"], run["activation"])
        with np.load(path, allow_pickle=False) as archive:
            model.set_weights([archive[f"arr_{i}"] for i in range(len(archive.files))])
    elif path.suffix == ".onnx":
        import nervenet.onnx  # the optional onnx extra, imported on first use

        model = nervenet.onnx.load(path)
    else:
        model = models.load_model(path)
    if run is not None and not getattr(model, "compiled", False):
        model.compile(optimizer="adam", loss=run["loss"], metrics=run["metrics"])
    return model, run


def _read_inputs(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if path.endswith(".csv"):
        return np.loadtxt(path, delimiter=",", ndmin=2)
    raise ValueError(f"FILE must be a .npy or .csv file of input samples, got {path!r}")


def evaluate(model_path: str, dataset: str | None) -> dict:
    model, run = load_run(model_path)
    if dataset is None:
        if run is None:
            raise ValueError("evaluate: give --dataset (there is no run.json beside the model)")
        dataset = run["dataset"]
    seed = run["seed"] if run else 0
    data = load_dataset(dataset, seed)
    prep = run["preprocessing"] if run else fit_preprocessing(dataset, data["x_train"])
    x_test, y_test = apply_preprocessing(prep, data["x_test"]), data["y_test"]
    if run and run["model"] == "perceptron":
        results = {"accuracy": perceptron_accuracy(model, x_test, y_test, run["task"])}
    else:
        if not getattr(model, "compiled", False):
            model.compile(optimizer="adam", loss=compile_settings(data["task"])[0],
                          metrics=compile_settings(data["task"])[1])
        results = model.evaluate(x_test, y_test, batch_size=256, return_dict=True)
    print(f"{dataset} test: " + " - ".join(f"{k}: {v:.4f}" for k, v in results.items()))
    return results


def predict(model_path: str, file: str, output: str | None = None) -> np.ndarray:
    model, run = load_run(model_path)
    x = _read_inputs(file)
    if run is not None:
        x = apply_preprocessing(run["preprocessing"], x)
    scores = model.predict(x.astype(np.float32), batch_size=256)
    task = run["task"] if run else None
    if task == "multiclass":
        result = scores.argmax(axis=1)
    elif task == "binary":
        result = (scores.reshape(len(scores), -1)[:, 0] > 0.5).astype(int)
    else:
        result = scores.reshape(len(scores), -1)
    if output:
        np.savetxt(output, result.reshape(len(result), -1), delimiter=",",
                   fmt="%d" if result.dtype.kind in "iu" else "%.6g")
    else:
        for row in result.reshape(len(result), -1):
            print(",".join(str(v) if result.dtype.kind in "iu" else f"{v:.6g}" for v in row))
    return result


def export(model_path: str, out: str, format: str = "onnx",  # noqa: A002
           opset: int | None = None) -> None:
    """Write the model of a run directory or ``.nervenet`` file as an ONNX file."""
    model, _ = load_run(model_path)
    model.export(out, format=format, opset=opset)
    print(f"wrote {out} ({format})")


# ------------------------------------------------------------------------------- argparse
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nervenet", description="Train, evaluate and inspect "
                                     "nervenet models.")
    parser.add_argument("--version", action="version", version=f"nervenet {nervenet.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train a model and save the run")
    train_parser.add_argument("--dataset", choices=DATASETS)
    train_parser.add_argument("--model", choices=MODELS)
    train_parser.add_argument("--optimizer", help="an optimizer id (default adam)")
    train_parser.add_argument("--learning-rate", type=float, dest="learning_rate")
    train_parser.add_argument("--epochs", type=int)
    train_parser.add_argument("--batch-size", type=int, dest="batch_size")
    train_parser.add_argument("--hidden", help="MLP hidden layer sizes, e.g. 300,100")
    train_parser.add_argument("--activation", help="MLP hidden activation, e.g. relu")
    train_parser.add_argument("--max-samples", type=int, dest="max_samples",
                              help="use only the first N training and N test samples")
    train_parser.add_argument("--seed", type=int)
    train_parser.add_argument("--out", help="the run directory (default runs/DATASET_MODEL)")
    train_parser.add_argument("--config", help="a TOML file with the same options")
    train_parser.add_argument("--verbose", type=int, choices=[0, 1, 2])
    evaluate_parser = commands.add_parser("evaluate", help="test metrics of a saved model")
    evaluate_parser.add_argument("model", help="a run directory or a .nervenet file")
    evaluate_parser.add_argument("--dataset", choices=DATASETS)
    predict_parser = commands.add_parser("predict", help="predictions for the samples in FILE")
    predict_parser.add_argument("model", help="a run directory, a .nervenet or an .onnx file")
    predict_parser.add_argument("file", help="inputs: a .npy array or a .csv of rows")
    predict_parser.add_argument("--output", help="write the predictions to this CSV")
    export_parser = commands.add_parser("export", help="write a saved model as an ONNX file")
    export_parser.add_argument("model", help="a run directory or a .nervenet file")
    export_parser.add_argument("--format", choices=["onnx"], default="onnx")
    export_parser.add_argument("--out", required=True, help="the file to write (.onnx)")
    export_parser.add_argument("--opset", type=int, help="the ONNX opset, 13-21 (default 17)")
    summary_parser = commands.add_parser("summary", help="print a saved model's layers")
    summary_parser.add_argument("model", help="a run directory or a .nervenet file")
    add_playground_parser(commands)
    return parser


def add_playground_parser(commands) -> None:
    """``nervenet playground [--port P] [--host 127.0.0.1] [--no-browser]``."""
    playground = commands.add_parser("playground", help="the web playground: networks training "
                                     "live in the browser (see docs/playground.md)")
    playground.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    playground.add_argument("--host", default="127.0.0.1", help="the address to listen on "
                            "(default 127.0.0.1: this machine only)")
    playground.add_argument("--no-browser", action="store_false", dest="browser",
                            help="print the URL without opening a browser")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 training diverged, 2 bad
    input)."""
    args = make_parser().parse_args(argv)
    if args.command == "playground":
        from nervenet.playground import serve  # the web server only when asked for

        try:
            return serve(args.host, args.port, open_browser=args.browser)
        except (OSError, OverflowError) as error:  # a port in use or out of range
            print(f"nervenet playground: error: {error}", file=sys.stderr)
            return 2
    if distributed.launched_by_mpi():  # mpiexec -n P nervenet train ...: one data-parallel run
        distributed.init()
    try:
        if args.command == "train":
            train(resolve_options(args))
        elif args.command == "evaluate":
            evaluate(args.model, args.dataset)
        elif args.command == "predict":
            predict(args.model, args.file, args.output)
        elif args.command == "export":
            export(args.model, args.out, args.format, args.opset)
        else:
            load_run(args.model)[0].summary()
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        print(f"nervenet {args.command}: error: {error}", file=sys.stderr)
        return _end_all_ranks(2)
    except FloatingPointError as error:
        print(f"nervenet {args.command}: error: {error}", file=sys.stderr)
        return _end_all_ranks(1)
    return 0


def _end_all_ranks(status: int) -> int:
    """``status``; under mpiexec, end every rank with it (the others may be waiting for this
    one in a collective, which would hang the job)."""
    if distributed.size() > 1:
        distributed.abort(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
