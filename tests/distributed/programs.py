"""The programs the MPI tests launch (``mpiexec -n P python -m tests.distributed.programs
CASE OUT``), and the models and data they train, which the tests also train in one process
for reference. Several checks share one launch: each launch costs an MPI start-up and P
imports of nervenet."""

from __future__ import annotations

import os
import pathlib
import sys
import time

import numpy as np

import nervenet
from nervenet import backend, distributed, layers, models, optimizers, utils
from nervenet.distributed import data_parallel

#: (name, float type, samples). At global batch 32, 97 samples leave a last batch of 1 (fewer
#: rows than ranks: every rank computes it whole), 70 and 100 leave 6 and 4, which 2 and 3
#: ranks split unevenly
CASES = [("mlp", "float64", 97), ("mlp", "float32", 97), ("cnn", "float64", 70),
         ("cnn", "float32", 70), ("syncbn", "float64", 100), ("syncbn", "float32", 100),
         ("two-outputs", "float64", 70)]
BATCH, EPOCHS = 32, 2


def data(kind: str, n: int):
    rng = np.random.default_rng(7)
    shape = (n, 8, 8, 1) if kind == "cnn" else (n, 6)
    x = rng.normal(size=shape) * 2.0 + 1.0
    labels = rng.integers(0, 3, size=n)
    if kind == "two-outputs":  # a class and a value per sample
        return x, [labels, x[:, :1] * 0.5 - x[:, 1:2]]
    return x, labels


def model(kind: str) -> models.Model:
    """A compiled model; the same on every rank and in the reference (seeded)."""
    if kind == "two-outputs":  # per-output losses, weighted, with per-output logs
        inputs = layers.Input(shape=(6,))
        hidden = layers.Dense(8, activation="tanh")(inputs)
        net = models.Model(inputs, [layers.Dense(3, name="label")(hidden),
                                    layers.Dense(1, name="value")(hidden)])
        net.compile(optimizers.Adam(0.01), loss=[
            nervenet.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
            loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]])
        return net
    if kind == "cnn":
        net = models.Sequential([
            layers.Input(shape=(8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
        optimizer = optimizers.Adam(0.01)
    else:
        net = models.Sequential([
            layers.Input(shape=(6,)), layers.Dense(8, activation="tanh"),
            *([layers.SyncBatchNormalization(momentum=0.9)] if kind == "syncbn" else []),
            layers.Dense(3)])
        optimizer = optimizers.SGD(0.1, momentum=0.9)
    net.compile(optimizer, loss=nervenet.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net


def count_rows(net: models.Model) -> list[int]:
    """Count the rows ``net.train_step`` trains on (in a one-item list, updated in place)."""
    rows = [0]
    step = net.train_step

    def counting_step(x, y, sample_weight=None):
        rows[0] += len(x)
        return step(x, y, sample_weight)

    net.train_step = counting_step
    return rows


def train(kind: str, floatx: str, n: int) -> dict[str, np.ndarray]:
    """Train one case; its weights, the history, evaluate's and predict's results."""
    backend.set_floatx(floatx)
    try:
        utils.set_random_seed(0)
        net = model(kind)
        x, y = data(kind, n)
        rows = count_rows(net)
        history = net.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
        out = {f"w{i}": w for i, w in enumerate(net.get_weights())}
        out.update({f"history/{k}": np.array(v) for k, v in history.history.items()})
        out["evaluate"] = np.array(net.evaluate(x, y, batch_size=BATCH))
        predictions = net.predict(x, batch_size=BATCH)
        if isinstance(predictions, (list, tuple)):
            out.update({f"predict/{i}": p for i, p in enumerate(predictions)})
        else:
            out["predict"] = predictions
        out["rows"] = distributed.allgather_rows(np.array([rows[0]]))  # trained on, per rank
        return out
    finally:
        backend.set_floatx("float32")


def search(directory: pathlib.Path) -> None:
    """A Bayesian search of 8 trials, each rank a worker on one SQLite study in
    ``directory``; every trial notes which process ran it in workers.txt."""
    from nervenet.tuning import BayesianOptimization

    def build(hp):
        with open(directory / "workers.txt", "a") as workers:
            workers.write(f"{os.getpid()}\n")
        net = models.Sequential([layers.Input(shape=(6,)),
                                 layers.Dense(hp.Int("units", 2, 8), activation="tanh"),
                                 layers.Dense(3)])
        net.compile(optimizers.SGD(hp.Float("learning_rate", 1e-3, 0.3, sampling="log")),
                    loss=nervenet.losses.SparseCategoricalCrossentropy(from_logits=True))
        return net

    x, y = data("mlp", 64)
    tuner = BayesianOptimization(build, objective="val_loss", max_trials=8, seed=0,
                                 directory=directory, project_name="search", verbose=0)
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=16)


def custom_loop(floatx: str = "float64") -> dict[str, np.ndarray]:
    """Three steps of a loop of one's own: each rank's gradient of its equal slice of a batch
    of 48, averaged by DistributedOptimizer (in one process: the whole batch's gradient)."""
    backend.set_floatx(floatx)
    try:
        utils.set_random_seed(1)
        net = model("mlp")
        optimizer = distributed.DistributedOptimizer(optimizers.Adam(0.01))
        x, y = data("mlp", 48)
        rows = data_parallel.part(48)  # 48, 24 or 16 rows: equal slices, as averaging needs
        for _ in range(3):
            loss = net.compute_loss(y[rows], net(x[rows], training=True))
            grads = nervenet.grad(loss, net.trainable_weights)
            optimizer.apply_gradients(zip(grads, net.trainable_weights))
        return {f"w{i}": w for i, w in enumerate(net.get_weights())}
    finally:
        backend.set_floatx("float32")


def broadcast_check() -> np.ndarray:
    """Rank 0 trains one step (so its Adam has moments); every other rank builds the model
    from another seed. After BroadcastGlobalVariables, each rank's weights and optimizer state
    as one vector, gathered (rows of equal values when the broadcast worked)."""
    utils.set_random_seed(10 + distributed.rank())
    net = model("mlp")
    net.compile(optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x, y = data("mlp", 8)
    with distributed.independent():
        if distributed.rank() == 0:
            net.train_on_batch(x, y)
        else:
            net(x)  # built, no optimizer state
    callback = distributed.BroadcastGlobalVariables(0)
    callback.set_model(net)
    callback.on_train_begin()
    state = net.optimizer.get_state()
    vector = np.concatenate([w.ravel() for w in net.get_weights()]
                            + [state[k].ravel().astype(np.float64) for k in sorted(state)])
    return distributed.allgather_rows(vector[None, :].astype(np.float64))


def main(case: str, out: str) -> None:
    if case == "search":  # not initialized by the script: the tuner does it
        search(pathlib.Path(out))
        return
    distributed.init()
    if case == "train":
        results = {}
        for kind, floatx, n in CASES:
            for key, value in train(kind, floatx, n).items():
                results[f"{kind}-{floatx}/{key}"] = value
        for key, value in custom_loop().items():
            results[f"loop/{key}"] = value
        results["broadcast"] = broadcast_check()
        logs = {"rank": float(distributed.rank())}  # a value of each rank's own
        distributed.MetricAverage().on_epoch_end(0, logs)
        results["averaged_rank"] = np.array(logs["rank"])
        if distributed.rank() == 0:
            np.savez(out, size=distributed.size(), **results)
    elif case == "raise":
        if distributed.rank() == 1:
            print(f"raising at {time.time()}", flush=True)
            raise RuntimeError("deliberate failure on rank 1")
        train("mlp", "float64", 100_000)  # rank 0 waits in the first collective
    elif case in ("mismatch-data", "mismatch-model"):
        utils.set_random_seed(0)
        net = model("mlp")
        x, y = data("mlp", 100)
        if distributed.rank() == 1 and case == "mismatch-data":
            x = np.concatenate([x, x[:, :1]], axis=1)  # 7 features instead of 6
            net = models.Sequential([layers.Input(shape=(7,)), layers.Dense(8), layers.Dense(3)])
            net.compile("sgd", loss="sparse_categorical_crossentropy")
        elif distributed.rank() == 1:  # one hidden layer more
            net = models.Sequential([layers.Input(shape=(6,)), layers.Dense(8), layers.Dense(8),
                                     layers.Dense(3)])
            net.compile("sgd", loss="sparse_categorical_crossentropy")
        net.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    else:
        raise ValueError(f"unknown case {case!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
