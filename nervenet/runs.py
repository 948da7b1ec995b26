"""Run folders of the ``nervenet`` command: never lose a run.

* ``new_run_dir(root, name)``: ``root/name/version_N``, a folder no earlier run used (as
  PyTorch Lightning's loggers), created atomically so two runs started together get two;
* ``read_run``/``write_run``: a run's ``run.json`` (written atomically, checked when read);
* ``InterruptGuard``: while training, Ctrl-C (SIGINT) and SIGTERM only ask to stop; the
  ``StopOnSignal`` callback stops at the next batch or epoch end by raising ``Interrupted``, so
  that the epoch checkpoint (``BackupAndRestore``) always holds a whole epoch. A second signal
  stops at once (``KeyboardInterrupt``).
* ``RunRecorder``: writes the history (and the gradient statistics) as CSV after every epoch,
  atomically, so a run stopped at any moment keeps the curves of its completed epochs.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import signal
from pathlib import Path

from nervenet.callbacks import Callback
from nervenet.saving.archive import atomic_write

RUN_FILE = "run.json"
#: the keys every run.json has (what ``evaluate`` and ``--resume`` read)
RUN_KEYS = ("options", "data", "model_file", "status", "epochs_completed")


class Interrupted(Exception):
    """Training was asked to stop by a signal (its name is the message)."""


def is_run_dir(path) -> bool:
    """Whether ``path`` is a folder holding a ``run.json``."""
    return (Path(path) / RUN_FILE).is_file()


def new_run_dir(root, name: str) -> Path:
    """Create and return ``root/name/version_N`` with N one more than the largest there."""
    if not name or any(part in ("", ".", "..") for part in Path(name).parts) or (
            os.sep in name or (os.altsep and os.altsep in name)):
        raise ValueError(f"--name must be a plain folder name, got {name!r}")
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in parent.iterdir()
             if (m := re.fullmatch(r"version_(\d+)", p.name))]
    number = max(taken, default=-1) + 1
    while True:
        folder = parent / f"version_{number}"
        try:
            folder.mkdir()  # fails if another run took it meanwhile
            return folder
        except FileExistsError:
            number += 1


def write_run(folder, run: dict) -> None:
    """Write ``folder/run.json`` atomically."""
    text = json.dumps(run, indent=2) + "\n"
    atomic_write(Path(folder) / RUN_FILE, lambda handle: handle.write(text.encode()))


def read_run(folder) -> dict:
    """The ``run.json`` of a run folder.

    Raises:
        ValueError: the file is not JSON or lacks a key (naming the file).
    """
    path = Path(folder) / RUN_FILE
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(run, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(run).__name__}")
    missing = [key for key in RUN_KEYS if key not in run]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; not a run folder written by "
                         "this nervenet")
    if not isinstance(run["options"], dict) or not isinstance(run["data"], dict):
        raise ValueError(f"{path}: 'options' and 'data' must be JSON objects")
    return run


def sha256_of(path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_csv(columns: dict, path) -> None:
    """Write per-epoch lists as CSV (``epoch`` first, from 1), atomically."""
    keys = list(columns)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["epoch"] + keys)
    for epoch in range(len(columns[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1] + [repr(float(columns[k][epoch])) for k in keys])
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


def read_csv_columns(path, epochs: int | None = None) -> dict[str, list[float]]:
    """The per-epoch lists of a CSV written by ``write_csv`` (the first ``epochs`` rows)."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))[:epochs]
    if not rows:
        return {}
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


class InterruptGuard:
    """A context in which SIGINT and SIGTERM set ``requested`` (the signal's name) instead of
    stopping the program; a second signal raises ``KeyboardInterrupt`` at once."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.requested: str | None = None
        self._previous: dict = {}

    def _handle(self, number, frame):
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name

    def __enter__(self):
        for name in self.SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                with contextlib.suppress(ValueError):  # not the main thread: left as they are
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        return False


class StopOnSignal(Callback):
    """Raises ``Interrupted`` at the first batch or epoch end after the guard got a signal.
    Put it after ``BackupAndRestore``, so that the epoch just finished is saved first."""

    def __init__(self, guard: InterruptGuard):
        super().__init__()
        self.guard = guard

    def _check(self, *args):
        if self.guard.requested is not None:
            raise Interrupted(self.guard.requested)

    on_train_batch_end = on_epoch_end = _check


class RunRecorder(Callback):
    """After every epoch: the logs go into ``history`` and ``folder/history.csv``; with a
    ``GradientMonitor`` (placed before this callback), its latest values go into ``gradients``
    and ``folder/gradients.csv``. Both dicts may hold earlier epochs (a resumed run)."""

    def __init__(self, folder, history: dict, gradients: dict, monitor=None):
        super().__init__()
        self.folder = Path(folder)
        self.history, self.gradients, self.monitor = history, gradients, monitor

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        write_csv(self.history, self.folder / "history.csv")
        if self.monitor is not None and self.monitor.history:
            for key, values in self.monitor.history.items():
                self.gradients.setdefault(key, []).append(float(values[-1]))
            write_csv(self.gradients, self.folder / "gradients.csv")
