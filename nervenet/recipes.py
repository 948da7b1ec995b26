"""The data and the models of the ``nervenet`` command: built-in datasets and your own CSV/NPZ
files split for training (``load_data``), the networks it trains with their preprocessing inside
(``make_model``), how a saved model reads raw inputs (``read_inputs``) and answers
(``decide``), and the test metrics ``train`` prints and ``evaluate`` reproduces."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import nervenet
from nervenet import layers, models, optimizers, runs
from nervenet.autograd import no_grad
from nervenet.callbacks import ProgbarLogger
from nervenet.data import datasets, tabular
from nervenet.models.perceptron import net_input

DATASETS = ["mnist5k", "mnist", "fashion_mnist", "iris", "housing", "xor", "moons"]
MODELS = ["mlp", "cnn", "perceptron"]
IMAGE_DATASETS = {"mnist5k", "mnist", "fashion_mnist"}
OWN_TEST_SET = IMAGE_DATASETS | {"xor"}  # datasets whose test set is fixed (no --test-split)
#: hidden layers and activation of the MLP, per dataset (the course's choices)
MLP_DEFAULTS = {"xor": ([4], "tanh"), "moons": ([16, 16], "relu"), "iris": ([16], "relu"),
                "housing": ([64, 32], "relu")}
IMAGE_MLP = ([300, 100], "relu")
TABLE_MLP = ([64, 32], "relu")

# ------------------------------------------------------------------------------------ data
def _builtin(name: str, seed: int) -> dict:
    """A built-in dataset, raw, as ``x, y`` (the whole set) or with its fixed test set."""
    if name in IMAGE_DATASETS:
        loader = {"mnist5k": lambda: datasets.load_mnist("5k"),
                  "mnist": lambda: datasets.load_mnist("full"),
                  "fashion_mnist": datasets.load_fashion_mnist}[name]
        (x_train, y_train), (x_test, y_test) = loader()
        names = (datasets.FASHION_MNIST_CLASSES if name == "fashion_mnist"
                 else [str(d) for d in range(10)])
        return {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test,
                "y_test": y_test.astype(np.int64), "class_names": list(names),
                "feature_names": None, "scaling": "rescale"}
    if name == "xor":  # the truth table is the whole world: train and test on it
        x, y = datasets.xor()
        y = y.astype(np.int64)
        return {"x_train": x, "y_train": y, "x_test": x, "y_test": y, "class_names": ["0", "1"],
                "feature_names": ["x1", "x2"], "scaling": "none"}
    if name == "moons":
        x, y = datasets.make_moons(1000, noise=0.2, seed=seed)
        found = {"x": x, "y": y.astype(np.int64), "class_names": ["0", "1"],
                 "feature_names": ["x1", "x2"]}
    elif name == "iris":
        x, y, features, classes = datasets.load_iris()
        found = {"x": x, "y": y, "class_names": classes, "feature_names": features}
    else:
        x, y, features = datasets.load_california_housing()
        found = {"x": x, "y": y, "class_names": None, "feature_names": features}
    return {**found, "scaling": "normalize"}


def _own_data(options: dict) -> dict:
    """``--data FILE.csv --target COLUMN`` or ``--data FILE.npz`` (arrays x and y), raw."""
    path = options["data"]
    suffix = Path(path).suffix.lower()
    if not Path(path).is_file():
        raise FileNotFoundError(f"--data {path}: no such file")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise ValueError(f"--data {path}: the archive needs arrays 'x' and 'y', it has "
                                 f"{sorted(archive.files)}")
            x, y = archive["x"], archive["y"]
        if x.dtype.kind not in "biuf" or len(x) != len(y):
            raise ValueError(f"--data {path}: x must be numeric with one row per y value, got "
                             f"dtype {x.dtype}, {len(x)} rows and {len(y)} targets")
        return {"x": x, "y": y, "feature_names": None, "encoding": {"format": "npz"},
                "scaling": "rescale" if x.dtype == np.uint8 else "normalize"}
    if suffix != ".csv":
        raise ValueError(f"--data {path}: expected a .csv or .npz file")
    columns, rows = tabular.read_csv(path)
    if options["target"] is None:
        raise ValueError(f"--target: name the column of {path} to predict (its columns: "
                         f"{columns})")
    j = tabular.column_index(columns, str(options["target"]), path, "--target")
    categorical = _names(options["categorical"])
    for name in categorical:
        if tabular.column_index(columns, name, path, "--categorical") == j:
            raise ValueError(f"--categorical {name!r}: that is the --target column")
    features = [c for k, c in enumerate(columns) if k != j]
    categories = {name: tabular.sorted_values([row[columns.index(name)] for row in rows])
                  for name in categorical}
    x = tabular.encode_columns(columns, rows, features, categories, path)
    encoding = {"format": "csv", "columns": columns, "features": features,
                "categories": categories, "target": columns[j]}
    return {"x": x, "y": np.array([row[j] for row in rows]), "feature_names": features,
            "encoding": encoding, "scaling": "normalize"}


def _names(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _targets(found: dict, task_option: str | None, where: str) -> dict:
    """The task and the targets as the losses want them (class indices, or floats)."""
    y = found["y"]
    if task_option not in (None, "classification", "regression"):
        raise ValueError(f"--task must be classification or regression, got {task_option!r}")
    kind = task_option or ("classification" if found.get("class_names") else
                           tabular.infer_task(y) if "encoding" in found else "regression")
    if kind == "regression":
        if np.asarray(y).dtype.kind not in "biuf" and not all(
                tabular.is_number(str(v)) for v in np.asarray(y).tolist()):
            raise ValueError(f"--task regression: the target of {where} is not numeric")
        return {"task": "regression", "classes": 0, "class_names": None,
                "y": np.asarray(y, dtype=np.float64).astype(np.float32).reshape(len(y), 1)}
    if found.get("class_names") and np.asarray(y).dtype.kind in "iu":
        names, labels = found["class_names"], np.asarray(y, dtype=np.int64).ravel()
    else:
        names, labels = tabular.class_labels(y)
    if len(names) < 2:
        raise ValueError(f"the target of {where} has only one class ({names}); nothing to "
                         "classify")
    if len(names) == 2:  # binary: one sigmoid output, targets shaped like it
        return {"task": "binary", "classes": 2, "class_names": names,
                "y": labels.astype(np.float32)[:, None]}
    return {"task": "multiclass", "classes": len(names), "class_names": names, "y": labels}


def load_data(options: dict) -> dict:
    """The splits of the data the options name: ``x_train, y_train, x_val, y_val, x_test,
    y_test`` (raw inputs; ``x_val`` is ``None`` without validation) and what describes them
    (``task``, ``classes``, ``class_names``, ``feature_names``, ``scaling``, ``encoding``,
    ``source``). The same options always give the same splits."""
    seed = options["seed"]
    if options["data"] is not None:
        found = _own_data(options)
        source = {"file": str(options["data"]), "sha256": runs.sha256_of(options["data"])}
    else:
        found = _builtin(options["dataset"] or "mnist5k", seed)
        source = {"dataset": options["dataset"] or "mnist5k"}
    where = source.get("file") or source["dataset"]
    if "x_train" in found:  # a fixed test set
        train = _targets({**found, "y": found["y_train"]}, options["task"], where)
        test = _targets({**found, "y": found["y_test"]}, options["task"], where)
        data = {**found, **train, "y_train": train["y"], "y_test": test["y"]}
    else:
        data = {**found, **_targets(found, options["task"], where)}
        labels = data["y"] if data["task"] != "regression" else None
        kept, held = tabular.split_indices(len(data["x"]), options["test_split"], seed, labels)
        data.update(x_train=data["x"][kept], y_train=data["y"][kept], x_test=data["x"][held],
                    y_test=data["y"][held])
    if options["max_samples"] is not None:
        if options["max_samples"] < 1:
            raise ValueError(f"--max-samples must be >= 1, got {options['max_samples']}")
        for key in ("x_train", "y_train", "x_test", "y_test"):
            data[key] = data[key][:options["max_samples"]]
    labels = data["y_train"] if data["task"] != "regression" else None
    kept, held = tabular.split_indices(len(data["x_train"]), options["validation_split"],
                                       seed + 1, labels)
    data["x_val"], data["y_val"] = ((data["x_train"][held], data["y_train"][held]) if len(held)
                                    else (None, None))
    data["x_train"], data["y_train"] = data["x_train"][kept], data["y_train"][kept]
    if len(data["x_train"]) == 0 or len(data["x_test"]) == 0:
        raise ValueError(f"{where}: too few samples for a training and a test split")
    data["source"] = source
    return data


# ---------------------------------------------------------------------------------- models
def _output_layer(task: str, classes: int, activation=None) -> layers.Dense:
    if task == "binary":
        return layers.Dense(1, activation=activation or "sigmoid", name="output")
    if task == "multiclass":
        return layers.Dense(classes, activation=activation or "softmax", name="output")
    return layers.Dense(1, name="output")


def _preprocessing(scaling: str, x_train: np.ndarray) -> list:
    """The input layers that make the model take raw inputs: pixels / 255, or z-scores with
    the training split's mean and variance."""
    if scaling == "rescale":
        return [layers.Rescaling(1 / 255, name="rescaling")]
    if scaling == "normalize":
        normalization = layers.Normalization(name="normalization")
        normalization.adapt(np.asarray(x_train, dtype=np.float64))
        return [normalization]
    return []


def build_model(kind: str, input_shape: tuple, task: str, classes: int, hidden=None,
                activation: str | None = None, preprocessing=()) -> models.Sequential:
    """The CLI's models, with their input preprocessing first: an MLP, a small CNN (images) or
    a one-layer perceptron (step units). Every layer is named, so that the weights' paths (and
    a checkpoint's) do not depend on how many layers the process made before."""
    input_shape = tuple(input_shape)
    stack = [layers.Input(shape=input_shape)] + list(preprocessing)
    if kind == "perceptron":
        if task == "regression":
            raise ValueError("--model perceptron classifies: it cannot fit a regression task")
        if len(input_shape) > 1:
            stack.append(layers.Flatten(name="flatten"))
        stack.append(layers.Dense(1 if task == "binary" else classes, activation="step",
                                  kernel_initializer="zeros", name="output"))
        return models.Sequential(stack)
    if kind == "cnn":
        if len(input_shape) != 2:
            raise ValueError(f"--model cnn needs images (samples of shape (height, width)), got "
                             f"samples of shape {input_shape}")
        stack += [layers.Reshape(input_shape + (1,), name="channels"),
                  layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal",
                                name="conv_1"),
                  layers.MaxPooling2D(2, name="pool_1"),
                  layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_normal",
                                name="conv_2"),
                  layers.MaxPooling2D(2, name="pool_2"),
                  layers.Flatten(name="flatten"),
                  layers.Dropout(0.3, name="dropout"),
                  layers.Dense(128, activation="relu", kernel_initializer="he_normal",
                               name="dense"),
                  _output_layer(task, classes)]
        return models.Sequential(stack)
    if len(input_shape) > 1:
        stack.append(layers.Flatten(name="flatten"))
    for number, units in enumerate(hidden, start=1):
        stack.append(layers.Dense(int(units), activation=activation, name=f"hidden_{number}",
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


def architecture(options: dict, data: dict) -> tuple[list[int] | None, str | None]:
    if options["model"] != "mlp":
        return None, None
    name = options["dataset"] if options["data"] is None else None
    hidden, activation = MLP_DEFAULTS.get(name, IMAGE_MLP if data["scaling"] == "rescale"
                                          else TABLE_MLP)
    return options["hidden"] or hidden, options["activation"] or activation


def make_model(options: dict, data: dict) -> models.Sequential:
    """The model the options describe, built, compiled and carrying its metadata."""
    nervenet.utils.set_random_seed(options["seed"])
    hidden, activation = architecture(options, data)
    model = build_model(options["model"], data["x_train"].shape[1:], data["task"],
                        data["classes"], hidden, activation,
                        _preprocessing(data["scaling"], data["x_train"]))
    model.metadata = {"task": data["task"], "class_names": data["class_names"],
                      "feature_names": data["feature_names"], "model": options["model"],
                      "encoding": data.get("encoding")}
    if options["model"] == "perceptron":
        model.compile(optimizer="sgd", loss="mse")  # the rule trains it; this makes it saveable
    else:
        loss, metric_ids = compile_settings(data["task"])
        model.compile(optimizer=_optimizer(options["optimizer"], options["learning_rate"]),
                      loss=loss, metrics=metric_ids)
    return model.to(options["device"])  # initialized on the host, then moved


# ------------------------------------------------------------------------ the perceptron
def perceptron_features(model, x) -> np.ndarray:
    """What the step layer sees: the inputs after the model's preprocessing, flattened."""
    output = model.get_layer("output")
    h = np.asarray(x, dtype=np.float32)
    with no_grad():
        for layer in model.layers[:model.layers.index(output)]:
            h = layer(h).data
    return h.reshape(len(h), -1)


def decide(model, x) -> tuple[np.ndarray, np.ndarray | None]:
    """``(predictions, scores)``: class indices (int) or values (float, regression), and the
    model's outputs; a perceptron with several units answers by its largest net input."""
    task = model.metadata.get("task")
    if model.metadata.get("model") == "perceptron":
        net = net_input(model.get_layer("output"), perceptron_features(model, x))
        labels = (net[:, 0] > 0).astype(np.int64) if net.shape[1] == 1 else net.argmax(axis=1)
        return labels, None
    scores = np.asarray(model.predict(np.asarray(x, dtype=np.float32), batch_size=256,
                                      verbose=0, callbacks=progress_on_stderr()))
    scores = scores.reshape(len(scores), -1)
    if task == "binary":
        return (scores[:, 0] > 0.5).astype(np.int64), scores
    if task == "multiclass":
        return scores.argmax(axis=1), scores
    if task is None:  # a model that does not say what it predicts: its outputs as they are
        return scores, None
    return scores[:, 0] if scores.shape[1] == 1 else scores, None


def accuracy(model, x, y) -> float:
    return float(np.mean(decide(model, x)[0] == np.asarray(y).reshape(len(y), -1)[:, 0]))


def test_metrics(model, x, y) -> dict:
    """The test metrics ``train`` prints at the end and ``evaluate`` reproduces."""
    if model.metadata.get("model") == "perceptron":
        return {"accuracy": accuracy(model, x, y)}
    return model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True,
                          callbacks=progress_on_stderr())


def progress_on_stderr() -> list:
    """A progress bar for ``evaluate``/``predict`` on stderr where that is a terminal: stdout
    carries the metrics and predictions a script may read, and a log file wants no redraws."""
    return [ProgbarLogger(stream=sys.stderr)] if sys.stderr.isatty() else []


def read_inputs(path: str, metadata: dict, with_target: bool = False):
    """The raw inputs of a .csv (header or not), .npz (array x) or .npy file, encoded as the
    model was trained; with ``with_target``, also the target values (``None`` if absent)."""
    suffix = Path(path).suffix.lower()
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".npy":
        return np.load(path, allow_pickle=False), None
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise ValueError(f"{path}: the archive has no array 'x' (it has "
                                 f"{sorted(archive.files)})")
            return archive["x"], archive["y"] if "y" in archive.files else None
    if suffix != ".csv":
        raise ValueError(f"{path}: expected a .csv, .npz or .npy file")
    columns, rows = tabular.read_csv(path)
    encoding = metadata.get("encoding") or {}
    features = encoding.get("features") or metadata.get("feature_names")
    known = encoding.get("columns") or features
    if columns == [str(j) for j in range(len(columns))] and known:
        if len(columns) not in (len(known), len(features or [])):
            raise ValueError(f"{path}: {len(columns)} columns and no header; the model reads "
                             f"{features}")
        columns = known if len(columns) == len(known) else list(features)
    features = features or columns
    target = encoding.get("target")
    x = tabular.encode_columns(columns, rows, [f for f in features if f != target],
                               encoding.get("categories") or {}, path)
    y = (np.array([row[columns.index(target)] for row in rows])
         if target in columns else None)
    return x, y


def shaped(model, x) -> np.ndarray:
    """``x`` as float32 in the model's input shape (a CSV row of pixels becomes an image)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"the inputs must be numbers, got dtype {x.dtype}")
    shape = tuple(model.input_shape[1:])
    if x.shape[1:] != shape and x.size == len(x) * int(np.prod(shape)):
        x = x.reshape((len(x),) + shape)
    return x.astype(np.float32)


def encode_targets(model, y) -> np.ndarray:
    """Target values from a file as the model's loss wants them."""
    task, names = model.metadata.get("task"), model.metadata.get("class_names")
    if task == "regression":
        return np.asarray(y, dtype=np.float64).astype(np.float32).reshape(len(y), 1)
    if np.asarray(y).dtype.kind in "biu" and names and all(n.isdigit() for n in names):
        y = np.asarray(y).astype(str)
    labels = tabular.class_labels(y, names)[1]
    return labels.astype(np.float32)[:, None] if task == "binary" else labels
