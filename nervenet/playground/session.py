"""One playground session: a thread that owns one nervenet model, trains it while playing and
publishes what the page draws as JSON frames.

Everything that touches the model runs in the session's own thread, in the order the
commands arrived (``submit``); the HTTP threads only validate requests and read frames.
"""

from __future__ import annotations

import base64
import json
import math
import os
import queue
import secrets
import tempfile
import threading
import time
from concurrent.futures import Future

import numpy as np

import nervenet
from nervenet import diagnostics, functional as F
from nervenet.autograd import no_grad
from nervenet.models.perceptron import perceptron_rule
from nervenet.optimizers.objective import FlatObjective
from nervenet.playground import config, datasets, export
from nervenet.playground.network import block_ends, build_model, optimizer_call

#: NOTE: autograd's recording switch (no_grad) is process-wide, so two sessions computing at
#: once would switch it under each other: every model computation holds this lock.
ENGINE_LOCK = threading.RLock()

HEATMAP, THUMBNAIL = 100, 25  # grid points per side of the output heatmap and of a neuron's
GRID_LINES, LINE_POINTS = 11, 41  # the feature-space view's grid
MAX_PATH = 400  # weight vectors kept for the loss-surface path (thinned when full)


def _encode(values: np.ndarray, low: float, high: float) -> str:
    """Values clipped to [low, high] as base64 bytes 0..255 (what the page's canvases read);
    NaN (a diverged network) is drawn as the middle."""
    values = np.nan_to_num(values, nan=(low + high) / 2, posinf=high, neginf=low)
    scaled = (np.clip(values, low, high) - low) * (255.0 / (high - low))
    return base64.b64encode(np.rint(scaled).astype(np.uint8).tobytes()).decode("ascii")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Session:
    """A model, its data and its training loop, in a thread of its own.

    Args:
        setup: a validated setup (``config.validate``).
        frame_rate: the most frames published per second while playing (default 15).
    """

    def __init__(self, setup: dict, frame_rate: float = 15.0):
        self.id = secrets.token_hex(8)
        self.setup = setup
        self.frame_interval = 1.0 / frame_rate
        self.created = time.monotonic()
        self.streams = 0  # open event streams (the server closes the session at 0)
        self.playing = False
        self.frame, self.version = b"", 0
        self.error = None  # why training stopped by itself, shown once by the page
        self._changed = threading.Condition()
        self._commands: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._reset()
        self._publish()
        self.thread = threading.Thread(target=self._run, name=f"playground-{self.id}",
                                       daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ public (any thread)
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the thread (it finishes the batch it is on)."""
        self._closed.set()
        self._commands.put(None)
        with self._changed:
            self._changed.notify_all()

    def submit(self, name: str, argument=None, timeout: float = 30.0):
        """Run command ``name`` in the session's thread and return its result (its exception
        is raised here)."""
        if self.closed:
            raise RuntimeError(f"session {self.id} is closed")
        future: Future = Future()
        self._commands.put((name, argument, future))
        return future.result(timeout)

    def wait_frame(self, version: int, timeout: float) -> tuple[int, bytes]:
        """The newest frame once it is newer than ``version`` (or after ``timeout``)."""
        with self._changed:
            self._changed.wait_for(lambda: self.version > version or self.closed, timeout)
            return self.version, self.frame

    # ------------------------------------------------------------------- the thread
    def _run(self) -> None:
        while not self.closed:
            try:
                command = self._commands.get(timeout=0 if self.playing else 0.5)
            except queue.Empty:
                command = None
            if command is not None:
                name, argument, future = command
                try:
                    future.set_result(getattr(self, f"_do_{name}")(argument))
                except Exception as error:  # reported to the request that sent it
                    future.set_exception(error)
                continue
            if self.playing and not self.closed:
                try:
                    self._train_until(time.monotonic() + self.frame_interval)
                except Exception as error:  # the page shows it; the session stays usable
                    self.playing, self.error = False, f"training stopped: {error}"
                self._publish()
        while not self._commands.empty():  # requests still waiting get an answer
            command = self._commands.get()
            if command is not None:
                command[2].set_exception(RuntimeError(f"session {self.id} has ended"))

    def _pending(self) -> bool:
        return not self._commands.empty() or self.closed

    # -------------------------------------------------------------------- commands
    def _do_action(self, action: str):
        if action == "play":
            if self.setup["mode"] == "fixed":
                raise ValueError("the fixed XOR network has hand-set weights and does not "
                                 "learn: click a link to change a weight")
            self.playing = True
        elif action == "pause":
            self.playing = False
        elif action == "step":
            self.playing = False
            if self.setup["mode"] != "fixed":
                self._train_until(math.inf, epochs=1)
        else:  # reset
            self.playing = False
            self._reset()
        self._publish()
        return {"epoch": self.epoch, "playing": self.playing}

    def _do_setup(self, setup: dict):
        live = {"learning_rate", "batch_size"}  # changed while training, as TF Playground
        changed = {key for key in setup if setup[key] != self.setup[key]}
        self.setup = setup
        if changed <= live and setup["optimizer"] not in config.SECOND_ORDER:
            self.model.optimizer.learning_rate = setup["learning_rate"]
        else:
            self.playing = False
            self._reset()
        self._publish()
        return {"epoch": self.epoch}

    def _do_weight(self, edit: dict):
        dense = self._dense_layers()
        if not edit["layer"] < len(dense):
            raise ValueError(f"layer must be below {len(dense)}, got {edit['layer']}")
        layer = dense[edit["layer"]]
        rows, units = layer.kernel.shape
        if not edit["unit"] < units or not (edit["row"] is None or edit["row"] < rows):
            raise ValueError(f"layer {edit['layer']} has {rows} inputs and {units} units, got "
                             f"row {edit['row']} and unit {edit['unit']}")
        with ENGINE_LOCK:
            if edit["row"] is None:
                layer.bias.data[edit["unit"]] = edit["value"]
            else:
                layer.kernel.data[edit["row"], edit["unit"]] = edit["value"]
            self._record_losses(append=False)
        self.edited_weights = True  # the exported script says so: the model file has them
        self._publish()
        return {"epoch": self.epoch}

    def _do_state(self, _):
        """The data points and the setup (sent once per reset; frames do not repeat them)."""
        return {"setup": self.setup, "data_version": self.data_version,
                "domain": datasets.domain(self.setup["dataset"]),
                "train": np.round(np.column_stack([self.points[self.train],
                                                   self.targets[self.train]]), 4).tolist(),
                "test": np.round(np.column_stack([self.points[self.test],
                                                  self.targets[self.test]]), 4).tolist()}

    def _do_export_model(self, _) -> bytes:
        with ENGINE_LOCK, tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.nervenet")
            self.model.save(path)
            with open(path, "rb") as handle:
                return handle.read()

    def _do_export_code(self, _) -> str:
        return export.script(self.setup, self.epoch, self.edited_weights)

    def _do_surface(self, resolution: int):
        with ENGINE_LOCK:
            return self._loss_surface(resolution)

    # --------------------------------------------------------------------- training
    def _reset(self) -> None:
        setup = self.setup
        self.points, self.targets = datasets.generate(setup["dataset"], setup["samples"],
                                                      setup["noise"], setup["seed"])
        self.train, self.test = datasets.split(setup["samples"], setup["train_fraction"],
                                               setup["seed"])
        inputs = datasets.features(self.points, setup["features"])
        y = self.targets[:, None]
        self.x_train, self.y_train = inputs[self.train], y[self.train]
        self.x_test, self.y_test = inputs[self.test], y[self.test]
        self.grid = datasets.features(datasets.grid(setup["dataset"], HEATMAP), setup["features"])
        self.lines = self._grid_lines()
        with ENGINE_LOCK:
            nervenet.utils.set_random_seed(setup["seed"])  # the exported script's weights
            self.model = build_model(setup)
        self.ends = block_ends(self.model)
        self.rng = np.random.default_rng(setup["seed"])
        self.epoch, self.steps, self.position, self.order = 0, 0, 0, None
        self.history, self.path, self.path_stride = [], [], 1
        self.edited_weights = setup["mode"] == "fixed"
        self.data_version = getattr(self, "data_version", 0) + 1
        self._record_losses()

    def _grid_lines(self) -> np.ndarray:
        low, high = datasets.domain(self.setup["dataset"])
        ticks, t = np.linspace(low, high, GRID_LINES), np.linspace(low, high, LINE_POINTS)
        lines = [np.column_stack([np.full_like(t, s), t]) for s in ticks]
        lines += [np.column_stack([t, np.full_like(t, s)]) for s in ticks]
        return datasets.features(np.concatenate(lines).astype(np.float32), self.setup["features"])

    def _train_until(self, deadline: float, epochs: int | None = None) -> None:
        """Train batches until ``deadline`` (or ``epochs`` whole epochs) or a command comes."""
        target = None if epochs is None else self.epoch + epochs
        while not (target is not None and self.epoch >= target):
            if self.setup["mode"] == "perceptron":
                with ENGINE_LOCK:
                    perceptron_rule(self.model.get_layer("output"), self.x_train,
                                    self.y_train, self.setup["learning_rate"], epochs=1,
                                    seed=self.rng)
                self._end_epoch()
            elif self.setup["optimizer"] in config.SECOND_ORDER:
                if not self._second_order(deadline, target):
                    self.playing = False  # converged: no iteration left to take
                    return
            else:
                self._batch()
            if not math.isfinite(self.loss_train):
                self.playing = False  # diverged: the page says so; reset or lower the rate
                return
            if time.monotonic() >= deadline or (target is None and self._pending()):
                return

    def _batch(self) -> None:
        if self.order is None:
            self.order = self.rng.permutation(len(self.x_train))
        index = self.order[self.position:self.position + self.setup["batch_size"]]
        with ENGINE_LOCK:
            self.model.train_on_batch(self.x_train[index], self.y_train[index])
        self.steps += 1
        self.position += len(index)
        if self.position >= len(self.order):
            self.order, self.position = None, 0
            self._end_epoch()

    def _second_order(self, deadline: float, target: int | None) -> bool:
        """One ``minimize`` call on the whole training set, an epoch per iteration, stopped
        by its callback at the deadline (its curvature memory starts anew each call).
        Returns whether it took an iteration."""
        model = self.model

        def loss_fn():
            return model.compute_loss(self.y_train, model(self.x_train, training=True))

        def callback(nit, loss):
            self.steps += 1
            self._end_epoch()
            return (time.monotonic() >= deadline or self._pending()
                    or (target is not None and self.epoch >= target))

        steps = self.steps
        with ENGINE_LOCK:
            optimizer = optimizer_call(self.setup, max_iter=10**6).build()
            try:
                optimizer.minimize(loss_fn, model.trainable_weights, callback=callback)
            except FloatingPointError:  # a NaN or infinite loss: reported as diverged
                self.loss_train = math.nan
        return self.steps > steps

    def _end_epoch(self) -> None:
        self.epoch += 1
        self._record_losses()

    def _data_loss(self, x, y) -> float:
        with no_grad():
            p = self.model(x, training=False)
            if self.setup["mode"] == "backprop" and self.setup["problem"] == "classification":
                return float(F.binary_cross_entropy(y, p).data)
            return float(F.mse(y, p).data)

    def _record_losses(self, append: bool = True) -> None:
        with ENGINE_LOCK:
            losses = (self._data_loss(self.x_train, self.y_train),
                      self._data_loss(self.x_test, self.y_test))
            flat = np.concatenate([w.data.ravel() for w in self.model.trainable_weights])
        # JSON has no NaN: a diverged loss is sent as null
        losses = tuple(value if math.isfinite(value) else None for value in losses)
        self.loss_train, self.loss_test = (math.nan if v is None else v for v in losses)
        if not append:
            return
        self.history.append([self.epoch, *losses])
        if self.epoch % self.path_stride == 0:
            self.path.append(flat.astype(np.float64))
            if len(self.path) >= MAX_PATH:  # keep every other point, take half as many
                self.path, self.path_stride = self.path[::2], self.path_stride * 2

    def _dense_layers(self) -> list:
        return [layer for layer in self.model.layers if getattr(layer, "kernel", None) is not None]

    # ----------------------------------------------------------------------- frames
    def _forward_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """The outputs of every hidden layer's neurons and of the output, for inputs x."""
        outputs, value = [], x
        with no_grad():
            for index, layer in enumerate(self.model.layers):
                value = layer(value, training=False)
                if index in self.ends:
                    outputs.append(value.data)
        return outputs

    def _publish(self) -> None:
        with ENGINE_LOCK:
            frame = self._frame()
        data = json.dumps(frame, separators=(",", ":")).encode()
        with self._changed:
            self.frame, self.version = data, self.version + 1
            self._changed.notify_all()

    def _frame(self) -> dict:
        outputs = self._forward_outputs(self.grid)
        regression = self.setup["problem"] == "regression"
        side = HEATMAP // THUMBNAIL
        neurons = [[_encode(out[:, unit].reshape(HEATMAP, HEATMAP)[::side, ::side], -1, 1)
                    for unit in range(out.shape[1])] for out in outputs[:-1]]
        stride = max(1, len(self.history) // 300)
        frame = {
            "session": self.id, "epoch": self.epoch, "steps": self.steps,
            "playing": self.playing, "data_version": self.data_version,
            "loss_train": _finite(self.loss_train), "loss_test": _finite(self.loss_test),
            "history": self.history[::stride] + ([self.history[-1]] if stride > 1 else []),
            "heatmap": _encode(outputs[-1][:, 0], -1 if regression else 0, 1),
            "neurons": neurons,
            "weights": [{"name": layer.name, "kernel": np.round(layer.kernel.data, 4).tolist(),
                         "bias": np.round(layer.bias.data, 4).tolist()}
                        for layer in self._dense_layers()],
            "gradients": None, "feature_space": self._feature_space(), "error": self.error,
        }
        self.error = None
        if self.setup["mode"] == "backprop" and frame["loss_train"] is not None:
            norms = diagnostics.gradient_norms(self.model, self.x_train, self.y_train)
            frame["gradients"] = [[name, value] for name, value in norms.items()]
        return frame

    def _feature_space(self) -> dict | None:
        """The last hidden layer's units 1 and 2 for the training points and the input grid's
        lines (a one-unit layer is drawn against 0), and the output's boundary there."""
        if len(self.ends) < 2:
            return None
        index = self.ends[-2]
        with no_grad():
            mapped = []
            for x in (self.x_train, self.lines):
                value = x
                for layer in self.model.layers[:index + 1]:
                    value = layer(value, training=False)
                h = value.data
                mapped.append(h[:, :2] if h.shape[1] > 1 else np.column_stack(
                    [h[:, 0], np.zeros(len(h))]))
        output = self._dense_layers()[-1]
        boundary = None
        if output.kernel.shape[0] == 2 and self.model.layers[index + 1] is output:
            boundary = [*np.asarray(output.kernel.data[:, 0], float).tolist(),
                        float(output.bias.data[0])]  # w1 h1 + w2 h2 + b = 0
        return {"points": np.round(mapped[0], 4).tolist(),
                "lines": np.round(mapped[1], 4).reshape(2 * GRID_LINES, LINE_POINTS, 2).tolist(),
                "boundary": boundary, "units": int(self.model.layers[index].output_shape[-1])}

    def _loss_surface(self, resolution: int) -> dict:
        """The loss on the plane through the current weights spanned by the two main
        directions of the weights' path (PCA of the path, as Li et al. 2018 draw optimizer
        trajectories), with the path projected onto it."""
        weights = self.model.trainable_weights
        model = self.model

        def loss_fn():
            return model.compute_loss(self.y_train, model(self.x_train, training=False))

        objective = FlatObjective(loss_fn, weights, "playground loss surface")
        center = objective.get()
        latest = self.path and np.array_equal(self.path[-1], center)
        path = np.array(self.path + ([] if latest else [center]))
        offsets = path - center
        _, _, vt = np.linalg.svd(offsets, full_matrices=False)
        basis = np.zeros((2, center.size))
        basis[:min(2, len(vt))] = vt[:2]
        for row in range(2):  # too short a path: random directions of the weights' size
            if not np.any(basis[row]):
                basis[row] = self.rng.normal(size=center.size)
                basis[row] -= basis[:row].T @ (basis[:row] @ basis[row])
                basis[row] /= np.linalg.norm(basis[row])
        coords = offsets @ basis.T
        extent = max(1.2 * float(np.abs(coords).max()), 0.5)
        ticks = np.linspace(-extent, extent, resolution)
        losses = np.empty((resolution, resolution))
        try:
            with no_grad():
                for i, b in enumerate(ticks):
                    for j, a in enumerate(ticks):
                        objective.set(center + a * basis[0] + b * basis[1])
                        losses[i, j] = float(loss_fn().data)
        finally:
            objective.set(center)
        return {"ticks": ticks.tolist(), "losses": np.where(np.isfinite(losses), losses,
                                                            None).tolist(),
                "path": coords.tolist()}


def stream_frames(session: Session, write, heartbeat: float = 1.0) -> None:
    """Write the session's frames as Server-Sent Events with ``write(bytes)`` until it fails
    (the page closed the stream) or the session is closed; a comment line every
    ``heartbeat`` seconds finds a closed stream while nothing changes."""
    version = -1
    while not session.closed:
        newer, frame = session.wait_frame(version, heartbeat)
        if newer > version and frame:
            version = newer
            write(b"data: " + frame + b"\n\n")
        else:
            write(b": ping\n\n")

