"""The ``nervenet`` command line (also ``python -m nervenet``); see docs/cli.md.

    nervenet train [--dataset NAME | --data FILE.csv --target COLUMN | --data FILE.npz]
                   [--model mlp|cnn|perceptron] [--epochs N] ... [--out DIR] [--name NAME]
    nervenet train --resume RUN
    nervenet evaluate MODEL [--data FILE | --dataset NAME] [--output FILE.csv]
    nervenet predict MODEL FILE [--output FILE.csv]
    nervenet summary MODEL
    nervenet export MODEL --out FILE.onnx [--opset N]
    nervenet playground [--port P] [--host 127.0.0.1] [--no-browser]
    mpiexec -n P nervenet train ...      (one data-parallel run, written by rank 0)

``train`` writes every run to a new folder ``DIR/NAME/version_N`` (``--out`` default ``runs``;
NAME defaults to DATASET_MODEL): the model ``model.nervenet`` (its preprocessing, Rescaling or
Normalization adapted on the training split, inside it, and the class names in its metadata),
``run.json`` (every option, the data file's SHA-256, the split sizes, versions, the test
metrics), ``history.csv``, ``gradients.csv``, the plots ``learning_curves.png`` and
``gradient_flow.png`` (with matplotlib) and TensorBoard logs in ``logs/`` (with tensorboardX).
Validation data comes from the training split; the test split is evaluated once, at the end,
and ``nervenet evaluate RUN`` gives the same numbers. Ctrl-C (or SIGTERM) keeps the last
completed epoch (model, history, curves and a checkpoint) and exits with status 130;
``--resume RUN`` continues it to the weights an uninterrupted run reaches.

Errors are one line on stderr and exit status 2 (``--debug`` shows the traceback); a diverged
training exits with 1. MODEL is a run folder or a ``.nervenet`` file: the file alone predicts
raw inputs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tomllib
import traceback
import warnings
from pathlib import Path

import numpy as np

from nervenet import backend, callbacks, distributed, models, runs
from nervenet._version import __version__
from nervenet.models.perceptron import perceptron_rule
from nervenet.recipes import (
    DATASETS,
    MODELS,
    OWN_TEST_SET,
    accuracy,
    architecture,
    decide,
    encode_targets,
    load_data,
    make_model,
    perceptron_features,
    read_inputs,
    shaped,
    test_metrics,
)
from nervenet.saving import checkpoint
from nervenet.saving.archive import atomic_write

#: every option of ``train`` (the command line and ``--config`` TOML files), with its default
DEFAULTS = {"dataset": None, "data": None, "target": None, "categorical": None, "task": None,
            "model": "mlp", "optimizer": "adam", "learning_rate": None, "epochs": 5,
            "batch_size": 32, "hidden": None, "activation": None, "max_samples": None,
            "seed": 0, "validation_split": 0.1, "test_split": 0.2, "out": "runs", "name": None,
            "overwrite": False, "verbose": 1, "device": "cpu"}

CHECKPOINT = "checkpoint.nervenet"
MODEL_FILE = "model.nervenet"


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


# ---------------------------------------------------------------------------------- options
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


def _read_config(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"--config {path}: not valid TOML ({error})") from None
    config = config.get("train", config)
    config = {key.replace("-", "_"): value for key, value in config.items()}
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"--config {path}: unknown option(s) {unknown}; valid: "
                         f"{sorted(DEFAULTS)}")
    return config


def resolve_options(args: argparse.Namespace) -> tuple[dict, set[str]]:
    """``(options, given)``: the command line over the TOML config over the defaults, and the
    options the user set (on the command line or in the config)."""
    options = dict(DEFAULTS)
    config = _read_config(args.config) if getattr(args, "config", None) else {}
    options.update(config)
    given = set(config)
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None and value is not False:
            options[key] = value
            given.add(key)
    options["hidden"] = _hidden(options["hidden"])
    for key, low in (("epochs", 1), ("batch_size", 1), ("seed", 0)):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{_option(key)} must be an int >= {low}, got {value!r}")
    for key in ("validation_split", "test_split"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 <= value < 1):
            raise ValueError(f"{_option(key)} must be a fraction in [0, 1), got {value!r}")
    if options["verbose"] not in (0, 1, 2):
        raise ValueError(f"--verbose must be 0, 1 or 2, got {options['verbose']!r}")
    return options, given


def check_options(options: dict, given: set[str]) -> None:
    """Every option the user set must apply to what is trained; otherwise an error names it."""
    kind, data = options["model"], options["data"]
    if kind not in MODELS:
        raise ValueError(f"--model must be one of {MODELS}, got {kind!r}")
    not_for = {"perceptron": ("optimizer", "learning_rate", "batch_size", "hidden",
                              "activation"),
               "cnn": ("hidden", "activation"), "mlp": ()}[kind]
    why = {"perceptron": "the perceptron rule trains one sample at a time, from zero weights, "
                         "where the learning rate only scales the weights",
           "cnn": "the CNN's layers are fixed (two convolutions, a dense layer of 128)"}
    for key in not_for:
        if key in given:
            raise ValueError(f"{_option(key)} does not apply to --model {kind}: {why[kind]}")
    if kind == "perceptron" and options["device"] != "cpu":
        raise ValueError("--device does not apply to --model perceptron: the perceptron rule "
                         "runs on the CPU")
    backend.check_device(options["device"])  # a clear error before any data is loaded
    if data is not None and options["dataset"] is not None:
        raise ValueError("--dataset and --data both name the data: give one")
    if options["dataset"] is not None and options["dataset"] not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {options['dataset']!r}")
    csv_only = ("target", "categorical")
    for key in csv_only + ("task",):
        if key in given and (data is None or (key in csv_only and
                                              not str(data).lower().endswith(".csv"))):
            raise ValueError(f"{_option(key)} applies only to --data FILE"
                             + (".csv" if key in csv_only else ""))
    if "test_split" in given and (options["dataset"] or ("mnist5k" if data is None else "")
                                  ) in OWN_TEST_SET:
        raise ValueError(f"--test-split does not apply to --dataset "
                         f"{options['dataset'] or 'mnist5k'}: it comes with its own test set")
    if "name" in given and "overwrite" in given:
        raise ValueError("--name does not apply with --overwrite: the run goes to --out itself")


# ----------------------------------------------------------------------------------- train
def _default_name(options: dict) -> str:
    source = Path(options["data"]).stem if options["data"] else options["dataset"] or "mnist5k"
    return f"{source}_{options['model']}"


RUN_FILES = (MODEL_FILE, CHECKPOINT, "history.csv", "gradients.csv", "learning_curves.png",
             "gradient_flow.png", runs.RUN_FILE)


def run_folder(options: dict) -> Path:
    """A new ``OUT/NAME/version_N``, or with ``--overwrite`` OUT itself, emptied of an earlier
    run's files; never a folder that holds a run without ``--overwrite``."""
    out = Path(options["out"])
    if not options["overwrite"]:
        if runs.is_run_dir(out):
            raise ValueError(f"--out {out} holds a run (run.json); give --overwrite to replace "
                             "it, or name another folder")
        return runs.new_run_dir(out, options["name"] or _default_name(options))
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not runs.is_run_dir(out):
        raise ValueError(f"--out {out} holds files but no run (no run.json): --overwrite only "
                         "replaces a run folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    return out


def describe_run(options: dict, data: dict) -> dict:
    """What ``run.json`` records before training starts."""
    import platform  # noqa: PLC0415

    return {"status": "running", "epochs_completed": 0, "model_file": MODEL_FILE,
            "options": {k: options[k] for k in DEFAULTS},
            "architecture": dict(zip(("hidden", "activation"), architecture(options, data))),
            "data": {**data["source"], "task": data["task"], "class_names": data["class_names"],
                     "feature_names": data["feature_names"],
                     "input_shape": list(data["x_train"].shape[1:])},
            "splits": {"train": len(data["x_train"]),
                       "validation": 0 if data["x_val"] is None else len(data["x_val"]),
                       "test": len(data["x_test"])},
            "versions": {"nervenet": __version__, "numpy": np.__version__,
                         "python": platform.python_version()}}


def train(options: dict) -> int:
    """Train as the options say in a new run folder; returns the exit status."""
    data = load_data(options)
    model = make_model(options, data)
    if distributed.rank() != 0:  # under mpiexec: rank 0 alone makes the folder and writes
        return _train_run(model, data, options, None, {}, resumed_at=0)
    folder = run_folder(options)
    run = describe_run(options, data)
    runs.write_run(folder, run)
    print(f"run folder: {folder}", flush=True)
    return _train_run(model, data, options, folder, run, resumed_at=0)


def resume(folder: str, given: set[str], verbose: int | None) -> int:
    """Continue the interrupted run in ``folder`` from its checkpoint."""
    if given:
        raise ValueError(f"{_option(sorted(given)[0])} does not apply with --resume: the run "
                         "goes on with the options recorded in its run.json")
    folder = Path(folder)
    if not runs.is_run_dir(folder):
        raise FileNotFoundError(f"--resume {folder}: not a run folder (no run.json)")
    run = runs.read_run(folder)
    if run["status"] == "completed":
        raise ValueError(f"--resume {folder}: that run completed")
    if not (folder / CHECKPOINT).is_file():
        raise FileNotFoundError(f"--resume {folder}: no {CHECKPOINT} (the run stopped before "
                                "its first epoch ended); train it again")
    options = {**DEFAULTS, **run["options"], **({} if verbose is None else {"verbose": verbose})}
    data = load_data(options)
    if data["source"].get("sha256") != run["data"].get("sha256"):
        raise ValueError(f"--resume {folder}: {options['data']} changed since the run started "
                         "(its SHA-256 differs)")
    model = make_model(options, data)
    epoch = checkpoint.load_training_state(folder / CHECKPOINT)["epoch"]
    print(f"resuming {folder} after epoch {epoch}", flush=True)
    return _train_run(model, data, options, folder, run, resumed_at=epoch)


def _train_run(model, data: dict, options: dict, folder: Path | None, run: dict,
               resumed_at: int) -> int:
    """Fit (or run the perceptron rule), keeping every completed epoch; then test and save.
    ``folder`` is ``None`` on the ranks other than 0 under mpiexec: they write nothing."""
    history = runs.read_csv_columns(folder / "history.csv", resumed_at) if resumed_at else {}
    gradients = (runs.read_csv_columns(folder / "gradients.csv", resumed_at) if resumed_at
                 else {})
    with runs.InterruptGuard() as guard:
        try:
            if options["model"] == "perceptron":
                _fit_perceptron(model, data, options, folder, history, guard, resumed_at)
            else:
                _fit(model, data, options, folder, history, gradients, guard)
        except runs.Interrupted as stop:
            return _keep_interrupted(model, folder, run, history, gradients, str(stop))
    if history.get("loss") and not np.isfinite(history["loss"][-1]):
        run.update(status="diverged", epochs_completed=len(history["loss"]))
        if folder is not None:
            runs.write_run(folder, run)
        raise FloatingPointError(
            f"training diverged: the loss became {history['loss'][-1]} in epoch "
            f"{len(history['loss'])}; no model was saved in {folder}. Lower --learning-rate")
    results = test_metrics(model, data["x_test"], data["y_test"])
    if folder is None:  # a rank other than 0 under mpiexec
        return 0
    print("test: " + " - ".join(f"{key}: {value:.4f}" for key, value in results.items()))
    model.save(folder / MODEL_FILE)
    (folder / CHECKPOINT).unlink(missing_ok=True)
    epochs = len(next(iter(history.values()), []))
    run.update(status="completed", epochs_completed=epochs, test=results)
    runs.write_run(folder, run)
    _plots(folder, history, gradients)
    print(f"saved the model to {folder / MODEL_FILE}, the run to {folder}")
    return 0


def _fit(model, data, options, folder, history, gradients, guard) -> None:
    x_train, y_train = data["x_train"], data["y_train"]
    steps = [callbacks.TerminateOnNaN()]
    if folder is not None:  # None: a rank other than 0 under mpiexec, which writes nothing
        monitor = callbacks.GradientMonitor(x_train[:256], y_train[:256])
        steps = [monitor, runs.RunRecorder(folder, history, gradients, monitor),
                 callbacks.BackupAndRestore(folder, delete_checkpoint=False)] + steps
        try:
            steps.append(callbacks.TensorBoard(log_dir=str(folder / "logs")))
        except ImportError as error:
            print(f"note: no TensorBoard logs ({error})", file=sys.stderr)
    validation = None if data["x_val"] is None else (data["x_val"], data["y_val"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the gradient plot shows them
        model.fit(x_train, y_train, epochs=options["epochs"], batch_size=options["batch_size"],
                  validation_data=validation, verbose=options["verbose"],
                  callbacks=steps + [runs.StopOnSignal(guard)])


def _fit_perceptron(model, data, options, folder, history, guard, start: int) -> None:
    """The perceptron rule, epoch by epoch, each epoch's order from (seed, epoch) so that a
    resumed run repeats it; history: errors, accuracy and val_accuracy measured every epoch."""
    if start:
        checkpoint.restore_checkpoint(model, folder / CHECKPOINT)
    layer = model.get_layer("output")
    x, y, task = data["x_train"], data["y_train"], data["task"]
    features = perceptron_features(model, x)
    targets = y.reshape(-1, 1) if task == "binary" else np.eye(data["classes"])[y]
    for epoch in range(start, options["epochs"]):
        rng = np.random.default_rng([options["seed"], epoch])
        errors = perceptron_rule(layer, features, targets, epochs=1, seed=rng)[0]
        logs = {"errors": float(errors), "accuracy": accuracy(model, x, y)}
        if data["x_val"] is not None:
            logs["val_accuracy"] = accuracy(model, data["x_val"], data["y_val"])
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if folder is not None:  # None: a rank other than 0 under mpiexec
            runs.write_csv(history, folder / "history.csv")
            checkpoint.save_checkpoint(model, folder / CHECKPOINT, epoch + 1)
        if options["verbose"]:
            print(f"Epoch {epoch + 1}/{options['epochs']} - " + " - ".join(
                f"{k}: {v:.4g}" if k == "errors" else f"{k}: {v:.4f}" for k, v in logs.items()),
                flush=True)
        if guard.requested is not None:
            raise runs.Interrupted(guard.requested)
        if errors == 0:
            break


def _keep_interrupted(model, folder: Path, run: dict, history: dict, gradients: dict,
                      signal_name: str) -> int:
    """After a signal: the last completed epoch's model, history and curves beside its
    checkpoint; one line says where. Returns 130."""
    run["status"] = "interrupted"
    if not (folder / CHECKPOINT).is_file():
        runs.write_run(folder, run)
        print(f"\n{signal_name}: stopped before the first epoch ended; nothing to keep in "
              f"{folder}", file=sys.stderr)
        return 130
    epoch = checkpoint.restore_checkpoint(model, folder / CHECKPOINT)["epoch"]
    for columns in (history, gradients):
        for key in columns:
            del columns[key][epoch:]
    model.save(folder / MODEL_FILE)
    runs.write_csv(history, folder / "history.csv")
    run["epochs_completed"] = epoch
    runs.write_run(folder, run)
    _plots(folder, history, gradients)
    print(f"\n{signal_name}: stopped; kept epoch {epoch}'s model, history and checkpoint in "
          f"{folder} (continue with: nervenet train --resume {folder})", file=sys.stderr)
    return 130


def _plots(folder: Path, history: dict, gradients: dict) -> None:
    try:
        from nervenet import viz  # noqa: PLC0415  (matplotlib is optional)

        if history:
            viz.plot_history(history, folder / "learning_curves.png")
        if gradients:
            viz.plot_gradient_flow(gradients, folder / "gradient_flow.png")
    except ImportError as error:
        print(f"note: no plots ({error})", file=sys.stderr)


# ----------------------------------------------------------------------- evaluate/predict
def load_run(path: str | Path):
    """``(model, run)`` from a run folder (its model file and run.json), a ``.nervenet`` file
    (``run`` is then ``None``: a file ``train`` wrote has what predicting needs in its
    metadata; another predicts its raw outputs) or an ``.onnx`` file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MODEL {path} does not exist (a run folder or a .nervenet "
                                "file)")
    run = None
    if path.is_dir():
        if not runs.is_run_dir(path):
            raise FileNotFoundError(f"MODEL {path} is not a run folder: run.json is missing")
        run = runs.read_run(path)
        path = path / run["model_file"]
        if not path.is_file():
            raise FileNotFoundError(f"MODEL {path.parent}: no model file {path.name} (status "
                                    f"{run['status']!r})")
    if path.suffix == ".onnx":
        import nervenet.onnx  # noqa: PLC0415  (the optional onnx extra, on first use)

        model = nervenet.onnx.load(path)
        model.metadata = getattr(model, "metadata", None) or {}
        return model, run
    return models.load_model(path), run


def write_predictions(model, x, output: str | None, y=None) -> np.ndarray:
    """Predict ``x``: print one prediction a line (class names for a classifier), or write a
    CSV with a header (the target if given, the prediction, each class's probability)."""
    labels, scores = decide(model, x)
    names = model.metadata.get("class_names")
    if not model.metadata.get("task"):  # not from nervenet train: the raw outputs, a row each
        rows = np.asarray(labels).reshape(len(labels), -1)
        text = "".join(",".join(f"{v:.9g}" for v in row) + "\n" for row in rows)
        if output is None:
            sys.stdout.write(text)
        else:
            atomic_write(output, lambda handle: handle.write(text.encode()))
        return labels
    shown = [names[k] for k in labels] if names else [f"{v:.6g}" for v in np.ravel(labels)]
    if output is None:
        sys.stdout.write("".join(f"{v}\n" for v in shown))
        return labels
    header = (["target"] if y is not None else []) + ["prediction"]
    truth = None if y is None else [names[int(v)] if names else f"{v:.6g}" for v in np.ravel(y)]
    table = [[] for _ in shown] if truth is None else [[v] for v in truth]
    for row, value in zip(table, shown):
        row.append(value)
    if names and scores is not None:
        probabilities = (np.column_stack([1 - scores[:, 0], scores[:, 0]])
                         if scores.shape[1] == 1 else scores)
        header += [f"p({name})" for name in names]
        for row, p in zip(table, probabilities):
            row += [f"{v:.6g}" for v in p]
    text = "".join(",".join(_csv_cell(c) for c in row) + "\n" for row in [header] + table)
    atomic_write(output, lambda handle: handle.write(text.encode()))
    print(f"wrote {len(shown)} predictions to {output}")
    return labels


def _csv_cell(text: str) -> str:
    return f'"{text.replace(chr(34), 2 * chr(34))}"' if any(c in text for c in ',"\n') else text


def evaluate(model_path: str, data: str | None = None, dataset: str | None = None,
             output: str | None = None) -> dict:
    """The metrics of a saved model: on its run's test split (the numbers ``train`` printed),
    on a built-in dataset's test split, or on every row of a file with targets."""
    model, run = load_run(model_path)
    if data is not None and dataset is not None:
        raise ValueError("--dataset and --data both name the data: give one")
    if data is not None:
        x, y = read_inputs(data, model.metadata)
        if y is None:
            raise ValueError(f"--data {data}: no target values to evaluate against (a .csv "
                             "needs the target column, a .npz an array y)")
        x, y, label = shaped(model, x), encode_targets(model, y), data
    else:
        if dataset is None and run is None:
            raise ValueError("evaluate: give --data FILE or --dataset NAME (a .nervenet file "
                             "alone has no test split)")
        options = {**DEFAULTS, **(run["options"] if run else {})}
        if dataset is not None:
            options.update(dataset=dataset, data=None, target=None, categorical=None, task=None)
        split = load_data(options)
        if run and dataset is None and split["source"].get("sha256") != run["data"].get(
                "sha256"):
            raise ValueError(f"{options['data']} changed since {model_path} was trained (its "
                             "SHA-256 differs): give it with --data to evaluate on all of it")
        x, y = split["x_test"], split["y_test"]
        label = f"{split['source'].get('dataset') or split['source']['file']} test"
    results = test_metrics(model, x, y)
    print(f"{label}: " + " - ".join(f"{k}: {v:.4f}" for k, v in results.items()))
    if output is not None:
        write_predictions(model, x, output, y)
    return results


def predict(model_path: str, file: str, output: str | None = None) -> np.ndarray:
    """Predictions of a saved model for the raw inputs in ``file``."""
    model, _ = load_run(model_path)
    x, _ = read_inputs(file, model.metadata)
    return write_predictions(model, shaped(model, x), output)


# ------------------------------------------------------------------------------- argparse
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``nervenet train: error: ...``, status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_command(commands, name: str, help: str, handler) -> argparse.ArgumentParser:  # noqa: A002
    """A subcommand: ``handler(args)`` runs it and returns the exit status (``None``: 0).
    Every subcommand has ``--debug``; add yours the same way."""
    parser = commands.add_parser(name, help=help, description=help)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error")
    parser.set_defaults(handler=handler)
    return parser


def _option_argument(group, key: str, text: str, **kwargs) -> None:
    """A train option: absent from the namespace unless given (so that --config and run.json
    can fill it in), its default from DEFAULTS shown in --help."""
    if "(default" not in text:
        text += f" (default: {DEFAULTS[key]})"
    group.add_argument(_option(key), dest=key, default=argparse.SUPPRESS, help=text, **kwargs)


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    _option_argument(data, "dataset", f"a built-in dataset, one of {DATASETS} (default: "
                     "mnist5k unless --data is given)", metavar="NAME")
    _option_argument(data, "data", "your own data: a .csv with a --target column, or a .npz "
                     "with arrays x and y (default: none)", metavar="FILE")
    _option_argument(data, "target", "the CSV column to predict: its name in the header, or "
                     "its 0-based position without a header (default: none)", metavar="COLUMN")
    _option_argument(data, "categorical", "comma-separated CSV columns to one-hot encode; other "
                     "text columns are an error (default: none)", metavar="COLUMNS")
    _option_argument(data, "task", "with --data: what to learn (default: inferred: a text "
                     "target or at most 20 distinct integers is classification)",
                     choices=["classification", "regression"])
    _option_argument(data, "test_split", "fraction held out for the final test, stratified "
                     "for classification; mnist5k, mnist, fashion_mnist and xor have their own "
                     "test set", type=float, metavar="F")
    _option_argument(data, "validation_split", "fraction of the training split that "
                     "validates each epoch, stratified for classification", type=float,
                     metavar="F")
    _option_argument(data, "max_samples", "use only the first N training and N test samples "
                     "(default: all)", type=int, metavar="N")
    model = parser.add_argument_group("model and training")
    _option_argument(model, "model", "the network", choices=MODELS)
    _option_argument(model, "hidden", "MLP hidden layer sizes, e.g. 300,100 (default: 300,100 "
                     "for images, 64,32 for tables, the course's choice for iris/housing/moons/"
                     "xor)", metavar="SIZES")
    _option_argument(model, "activation", "MLP hidden activation (default: relu; tanh for "
                     "xor)", metavar="NAME")
    _option_argument(model, "optimizer", "an optimizer id (sgd, adam, rmsprop, ...)",
                     metavar="NAME")
    _option_argument(model, "learning_rate", "the step size (default: the optimizer's own)",
                     type=float, metavar="LR")
    _option_argument(model, "epochs", "passes over the training split", type=int, metavar="N")
    _option_argument(model, "batch_size", "samples per step", type=int, metavar="N")
    _option_argument(model, "seed", "seeds the splits, the weights and the shuffling",
                     type=int, metavar="S")
    _option_argument(model, "device", "where to train: cpu, gpu (needs CuPy, the gpu extra, "
                     "and a CUDA GPU) or fake (the NumPy-backed test device); the same seed "
                     "gives the same initial model on each", choices=list(backend.DEVICES))
    output = parser.add_argument_group("output")
    _option_argument(output, "out", "the run goes to OUT/NAME/version_N", metavar="DIR")
    _option_argument(output, "name", "the run's NAME (default: DATASET_MODEL, or FILE_MODEL)")
    _option_argument(output, "overwrite", "write the run to OUT itself, replacing the run "
                     "there", action="store_true")
    _option_argument(output, "verbose", "0 quiet, 1 progress bar (one line per epoch when not "
                     "a terminal), 2 one line per epoch", type=int, choices=[0, 1, 2])
    parser.add_argument("--resume", metavar="RUN", help="continue the interrupted run in folder "
                        "RUN with its recorded options (only --verbose may be given too)")
    parser.add_argument("--config", metavar="FILE.toml", help="a TOML file with these options "
                        "(at top level or in a [train] table); the command line wins")


def _run_train(args) -> int:
    options, given = resolve_options(args)
    if args.resume is not None and distributed.size() > 1:
        raise ValueError("--resume runs in one process (not under mpiexec)")
    if args.resume is not None:
        return resume(args.resume, given - {"verbose"} | ({"config"} if args.config else set()),
                      options["verbose"] if "verbose" in given else None)
    check_options(options, given)
    return train(options)


def _run_evaluate(args) -> None:
    evaluate(args.model, args.data, args.dataset, args.output)


def _run_predict(args) -> None:
    predict(args.model, args.file, args.output)


def _run_summary(args) -> None:
    load_run(args.model)[0].summary()


def export(model_path: str, out: str, format: str = "onnx",  # noqa: A002
           opset: int | None = None) -> None:
    """Write the model of a run folder or ``.nervenet`` file as an ONNX file."""
    model, _ = load_run(model_path)
    model.export(out, format=format, opset=opset)
    print(f"wrote {out} ({format})")


def _run_export(args) -> None:
    export(args.model, args.out, args.format, args.opset)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nervenet", description="Train, evaluate and inspect nervenet "
                     "models (see docs/cli.md).")
    parser.add_argument("--version", action="version", version=f"nervenet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_arguments(_add_command(commands, "train", "train a model; every run gets its own "
                                  "folder", _run_train))
    evaluate_parser = _add_command(commands, "evaluate", "test metrics of a saved model "
                                   "(default: on its run's test split)", _run_evaluate)
    evaluate_parser.add_argument("model", help="a run folder or a .nervenet file")
    evaluate_parser.add_argument("--data", metavar="FILE", help="evaluate on every row of this "
                                 ".csv (with the target column) or .npz (x and y) instead")
    evaluate_parser.add_argument("--dataset", choices=DATASETS, help="evaluate on this "
                                 "built-in dataset's test split instead")
    evaluate_parser.add_argument("--output", metavar="FILE.csv", help="also write the "
                                 "targets, predictions and class probabilities here")
    predict_parser = _add_command(commands, "predict", "predictions for the raw samples in "
                                  "FILE", _run_predict)
    predict_parser.add_argument("model", help="a run folder, a .nervenet or an .onnx file")
    predict_parser.add_argument("file", help="inputs: a .csv (header optional; a target "
                                "column is ignored), a .npz (array x) or a .npy")
    predict_parser.add_argument("--output", metavar="FILE.csv", help="write a CSV (prediction "
                                "and class probabilities) instead of one prediction a line")
    summary_parser = _add_command(commands, "summary", "print a saved model's layers",
                                  _run_summary)
    summary_parser.add_argument("model", help="a run folder or a .nervenet file")
    export_parser = _add_command(commands, "export", "write a saved model as an ONNX file",
                                 _run_export)
    export_parser.add_argument("model", help="a run folder or a .nervenet file")
    export_parser.add_argument("--format", choices=["onnx"], default="onnx")
    export_parser.add_argument("--out", required=True, help="the file to write (.onnx)")
    export_parser.add_argument("--opset", type=int, help="the ONNX opset, 13-21 (default 17)")
    add_playground_parser(commands)
    return parser


def add_playground_parser(commands) -> None:
    """``nervenet playground [--port P] [--host 127.0.0.1] [--no-browser]``."""
    playground = _add_command(commands, "playground", "the web playground: networks training "
                              "live in the browser (see docs/playground.md)", _run_playground)
    playground.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    playground.add_argument("--host", default="127.0.0.1", help="the address to listen on "
                            "(default 127.0.0.1: this machine only)")
    playground.add_argument("--no-browser", action="store_false", dest="browser",
                            help="print the URL without opening a browser")


def _run_playground(args) -> int:
    from nervenet.playground import serve  # noqa: PLC0415  (the web server only when asked for)

    return serve(args.host, args.port, open_browser=args.browser)


def _one_line(error: BaseException) -> str:
    text = str(error) if isinstance(error, (ValueError, OSError, TypeError)) else (
        f"{type(error).__name__}: {error}")
    return " ".join(text.split()) or type(error).__name__


def _quiet_stdout() -> None:
    """After a broken pipe (``nervenet predict ... | head``): send the rest to /dev/null so
    that the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 success, 1 training diverged, 2 an
    error (one line on stderr; ``--debug`` adds the traceback), 130 interrupted."""
    args = make_parser().parse_args(argv)
    command = f"nervenet {args.command}"
    if args.command == "train" and distributed.launched_by_mpi():  # mpiexec -n P nervenet
        distributed.init()                                         # train: one parallel run
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            status = args.handler(args) or 0
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (every error: one line, never a traceback)
        if args.debug:
            traceback.print_exc()
        print(f"{command}: error: {_one_line(error)}", file=sys.stderr)
        return _end_all_ranks(1 if isinstance(error, FloatingPointError) else 2)


def _end_all_ranks(status: int) -> int:
    """``status``; under mpiexec, end every rank with it (the others may be waiting for this
    one in a collective, which would hang the job)."""
    if distributed.size() > 1:
        distributed.abort(status)
    return status


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
