"""TensorBoard summaries as ``tf.summary`` writes them: the notes log their own values with

    writer = nervenet.summary.create_file_writer("logs/run_1")
    with writer.as_default():
        for step in range(100):
            nervenet.summary.scalar("my_scalar", np.sin(step / 10), step=step)
            nervenet.summary.histogram("my_hist", data, buckets=50, step=step)
            nervenet.summary.image("my_images", images, max_outputs=3, step=step)
            nervenet.summary.text("my_text", "The step is " + str(step), step=step)

The event files are written by tensorboardX (the ``tensorboard`` extra: ``pip install
'nervenet[tensorboard]'``), imported only when a writer is created; view them with
``tensorboard --logdir logs``. The ``TensorBoard`` callback writes through the same writer.

As ``tf.summary``: the functions write to the default writer (the innermost ``as_default()``)
and return ``True``, or ``False`` when there is none; ``step`` defaults to the one given to
``as_default(step=...)``.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from nervenet.checks import check_int, check_string

__all__ = ["FileWriter", "create_file_writer", "histogram", "image", "scalar", "text"]

_DEFAULT = threading.local()          # .stack: [(writer, step), ...], innermost last


def _tensorboardx():
    try:
        import tensorboardX  # noqa: PLC0415  (an optional extra)
    except ImportError:
        raise ImportError("nervenet.summary needs tensorboardX to write TensorBoard event "
                          "files: pip install 'nervenet[tensorboard]' (or pip install "
                          "tensorboardX)") from None
    return tensorboardX


def _stack() -> list:
    if not hasattr(_DEFAULT, "stack"):
        _DEFAULT.stack = []
    return _DEFAULT.stack


def _check_name(owner: str, name) -> str:
    return check_string(f"summary.{owner}", "name", name)


def _check_step(owner: str, step) -> int:
    if step is None:
        raise ValueError(f"summary.{owner}: no step given and the default writer has none; "
                         "pass step=... here or to writer.as_default(step=...)")
    return check_int(f"summary.{owner}", "step", step, low=0)


class FileWriter:
    """Writes summaries into the event file of one log directory (``create_file_writer``).

    Its methods take an explicit ``step``; the module functions (``summary.scalar`` ...)
    write to the default writer set by ``as_default``.
    """

    def __init__(self, logdir, max_queue: int = 10, flush_millis: int = 120_000,
                 filename_suffix: str = ""):
        self.logdir = os.fspath(logdir)
        self._writer = _tensorboardx().SummaryWriter(
            self.logdir, max_queue=max_queue, flush_secs=max(1, flush_millis // 1000),
            filename_suffix=filename_suffix)
        self.closed = False

    @contextlib.contextmanager
    def as_default(self, step: int | None = None):
        """Make this the default writer inside the ``with`` block (with a default ``step``);
        flushed at the end of the block, as TensorFlow's."""
        stack = _stack()
        stack.append((self, step))
        try:
            yield self
        finally:
            stack.pop()
            self.flush()

    def set_as_default(self, step: int | None = None) -> None:
        """Make this the default writer from now on (``as_default`` without a block)."""
        _stack().insert(0, (self, step))

    def init(self) -> None:
        """Nothing to do: the event file is opened at creation (TensorFlow's API)."""

    def _live(self, owner: str):
        if self.closed:
            raise ValueError(f"summary.{owner}: the writer of {self.logdir!r} is closed")
        return self._writer

    def scalar(self, name: str, data, step: int) -> None:
        """One number: ``data`` a Python or NumPy scalar (or a 1-element array)."""
        value = np.asarray(getattr(data, "data", data), dtype=np.float64)
        if value.size != 1:
            raise ValueError(f"summary.scalar: data must be a single number, got shape "
                             f"{value.shape}")
        self._live("scalar").add_scalar(_check_name("scalar", name), float(value.reshape(())),
                                        _check_step("scalar", step))

    def histogram(self, name: str, data, step: int, buckets: int | None = None) -> None:
        """The distribution of the values of ``data`` (any shape), in ``buckets`` bins (default
        TensorBoard's own bucketing)."""
        values = np.asarray(getattr(data, "data", data), dtype=np.float64).reshape(-1)
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"summary.histogram: data must be non-empty and finite, got "
                             f"{values.size} values")
        if buckets is not None and (isinstance(buckets, bool) or not isinstance(buckets, int)
                                    or buckets < 1):
            raise ValueError(f"summary.histogram: buckets must be a positive int or None, got "
                             f"{buckets!r}")
        self._live("histogram").add_histogram(
            _check_name("histogram", name), values, _check_step("histogram", step),
            bins="tensorflow" if buckets is None else buckets)

    def image(self, name: str, data, step: int, max_outputs: int = 3) -> None:
        """Images ``data`` of shape (k, h, w, c), c in {1, 3, 4}: floats in [0, 1] or uint8.
        The first ``max_outputs`` are written, as ``<name>/image/<i>`` when there are several
        (as TensorFlow 1 named them), as ``name`` when there is one."""
        images = np.asarray(getattr(data, "data", data))
        if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
            raise ValueError(f"summary.image: data must have shape (k, h, w, c) with c 1, 3 or "
                             f"4, got {images.shape}")
        if images.dtype != np.uint8:
            images = np.asarray(images, dtype=np.float64)
            if not (np.isfinite(images).all() and images.min(initial=0) >= 0
                    and images.max(initial=0) <= 1):
                raise ValueError("summary.image: float images must have values in [0, 1]")
            images = np.round(images * 255).astype(np.uint8)
        _check_name("image", name)
        step = _check_step("image", step)
        shown = images[:max_outputs]
        for index, picture in enumerate(shown):
            tag = name if len(shown) == 1 else f"{name}/image/{index}"
            self._live("image").add_image(tag, picture, step, dataformats="HWC")

    def text(self, name: str, data, step: int) -> None:
        """A string (Markdown, as TensorBoard renders it), or a list of strings (the notes log
        ``["The step is 1", "Its square is 1"]``): one paragraph each."""
        self._live("text").add_text(_check_name("text", name), _as_text(data),
                                    _check_step("text", step))

    def flush(self) -> None:
        if not self.closed:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (further writes raise)."""
        if not self.closed:
            self._writer.close()
            self.closed = True
            _DEFAULT.stack = [entry for entry in _stack() if entry[0] is not self]


def _as_text(data) -> str:
    """A string, bytes, or a sequence (or array) of them as one Markdown string."""
    def one(item) -> str:
        if isinstance(item, (bytes, np.bytes_)):
            return bytes(item).decode("utf-8")
        if isinstance(item, (str, np.str_)):
            return str(item)
        raise ValueError(f"summary.text: data must be a string or a list of strings, got "
                         f"{type(item).__name__}")

    if isinstance(data, (list, tuple, np.ndarray)):
        items = np.asarray(data, dtype=object).reshape(-1).tolist()
        if not items:
            raise ValueError("summary.text: data is an empty list")
        return "\n\n".join(one(item) for item in items)
    return one(data)


def create_file_writer(logdir, max_queue: int = 10, flush_millis: int = 120_000,
                       filename_suffix: str = "") -> FileWriter:
    """A writer of TensorBoard event files in ``logdir`` (created if needed), as
    ``tf.summary.create_file_writer``.

    Args:
        logdir: the directory (one run in TensorBoard).
        max_queue: summaries buffered before a write (default 10).
        flush_millis: the longest time between flushes, in milliseconds (default 120000).
        filename_suffix: appended to the event file's name (default ``""``).

    Raises:
        ImportError: tensorboardX is not installed (the ``tensorboard`` extra).
    """
    return FileWriter(logdir, max_queue, flush_millis, filename_suffix)


def _default(owner: str, step):
    stack = _stack()
    if not stack:
        return None, step
    writer, default_step = stack[-1]
    return writer, _check_step(owner, default_step if step is None else step)


def scalar(name: str, data, step: int | None = None, description: str | None = None) -> bool:
    """Write a scalar to the default writer; ``False`` when there is none.

    ``description`` is accepted as TensorFlow's and not stored (tensorboardX has no field).
    """
    writer, step = _default("scalar", step)
    if writer is None:
        return False
    writer.scalar(name, data, step)
    return True


def histogram(name: str, data, step: int | None = None, buckets: int | None = None,
              description: str | None = None) -> bool:
    """Write a histogram of ``data`` to the default writer; ``False`` when there is none."""
    writer, step = _default("histogram", step)
    if writer is None:
        return False
    writer.histogram(name, data, step, buckets)
    return True


def image(name: str, data, step: int | None = None, max_outputs: int = 3,
          description: str | None = None) -> bool:
    """Write up to ``max_outputs`` images (k, h, w, c) to the default writer; ``False`` when
    there is none."""
    writer, step = _default("image", step)
    if writer is None:
        return False
    writer.image(name, data, step, max_outputs)
    return True


def text(name: str, data, step: int | None = None, description: str | None = None) -> bool:
    """Write a string to the default writer; ``False`` when there is none."""
    writer, step = _default("text", step)
    if writer is None:
        return False
    writer.text(name, data, step)
    return True
