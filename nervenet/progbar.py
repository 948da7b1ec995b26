"""One progress line (Keras's ``Progbar``), drawn for ``fit``, ``evaluate`` and ``predict`` by
``callbacks.ProgbarLogger``.

On a terminal the line is redrawn in place: every redraw is padded over what the last one left
and kept shorter than the terminal's width, so it never wraps and leaves no old characters; the
finished line breaks between its `` - `` items where it would not fit. Anywhere else (a file, a
pipe, a notebook's captured output) nothing is drawn until the end, and then one plain line.

    >>> import io
    >>> stream = io.StringIO()
    >>> bar = Progbar(4, stream=stream)
    >>> for step in range(1, 5):
    ...     bar.update(step, {"loss": 0.5})
    >>> bar.finish({"loss": 0.25})
    >>> stream.getvalue().startswith("4/4 - ")
    True
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import numpy as np

#: the bar's width when the terminal leaves room for it
BAR_WIDTH = 30


def format_duration(seconds: float) -> str:
    """``2s``, ``1:05``, ``1:02:03``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def format_rate(seconds: float, unit: str = "step") -> str:
    """Time per step in a unit that keeps two or three digits: ``1.2s/step``, ``35ms/step``,
    ``850us/step``."""
    if seconds >= 1:
        return f"{seconds:.1f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def format_logs(logs: dict) -> list[str]:
    """``["loss: 0.1234", ...]``: numbers with four decimals (or in e-notation when tiny),
    arrays (per-class F1 scores) element-wise."""
    items = []
    for key, value in logs.items():
        if np.ndim(value) > 0:
            text = np.array2string(np.asarray(value, dtype=float), precision=4, separator=", ")
            items.append(f"{key}: {text}")
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            items.append(f"{key}: {value}")
            continue
        small = number != 0 and abs(number) < 1e-3
        items.append(f"{key}: {number:.4e}" if small else f"{key}: {number:.4f}")
    return items


def terminal_columns(stream) -> int | None:
    """The width of the terminal ``stream`` writes to, or ``None`` when it is not one."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):  # a terminal of unknown size: $COLUMNS or 80
        return shutil.get_terminal_size().columns


class Progbar:
    """A progress line for ``target`` steps (``None``: unknown).

    Args:
        target: the number of steps, or ``None``.
        stream: where to write (default ``sys.stdout``).
        interval: the least seconds between two redraws (default 0.05).
        prefix: text before the final line when it is not drawn in place (``"Epoch 3/10"``).
        columns: the terminal width (default: asked from ``stream``; ``None`` when it is not
            a terminal, and then nothing is drawn until ``finish``).
    """

    def __init__(self, target: int | None, stream=None, interval: float = 0.05,
                 prefix: str = "", columns: int | None = -1):
        self.target = target
        self.stream = stream or sys.stdout
        self.interval = interval
        self.prefix = prefix
        self.columns = terminal_columns(self.stream) if columns == -1 else columns
        self.start = self._last_draw = time.perf_counter()
        self._shown = 0  # characters the line on screen holds now
        self.current = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _head(self, current: int, room: int) -> str:
        """``12/63 [=====>....]``, the bar as wide as ``room`` allows (left out below 10)."""
        if not self.target:
            return f"{current}"
        count = f"{current}/{self.target}"
        width = min(BAR_WIDTH, room - len(count) - 3)
        if width < 10:
            return count
        filled = int(width * current / self.target)
        bar = "=" * max(filled - 1, 0) + (">" if filled < width else "=") + "." * (width - filled)
        return f"{count} [{bar}]"

    def _items(self, current: int, now: float, logs: dict, done: bool) -> list[str]:
        elapsed = now - self.start
        per_step = elapsed / max(current, 1)
        if done or not self.target:
            timing = f"{format_duration(elapsed)} {format_rate(per_step)}"
        else:
            timing = f"ETA {format_duration(per_step * (self.target - current))} "
            timing += format_rate(per_step)
        return [timing] + format_logs(logs)

    def _fit(self, head: str, items: list[str], room: int) -> str:
        """``head item - item - ...`` with as many items as fit in ``room`` characters."""
        line = head
        for index, item in enumerate(items):
            joined = f"{line} {item}" if index == 0 else f"{line} - {item}"
            if len(joined) > room:
                break
            line = joined
        return line[:room]

    def update(self, current: int, logs: dict | None = None) -> None:
        """Step ``current`` is done; redraw on a terminal (at most every ``interval`` s)."""
        self.current = current
        now = time.perf_counter()
        if self.columns is None or now - self._last_draw < self.interval:
            return
        self._last_draw = now
        room = self.columns - 1  # never the last column: some terminals wrap there
        items = self._items(current, now, logs or {}, done=False)
        self._redraw(self._fit(self._head(current, room - self._tail(items)), items, room))

    def _tail(self, items: list[str]) -> int:
        """The room the items take after the head, but at most what leaves a bar of 10."""
        needed = len(" ".join([items[0], " - ".join(items[1:])]).rstrip()) + 1
        shortest = len(f"{self.target}/{self.target} [") + 11 if self.target else 0
        return min(needed, max((self.columns or 80) - 1 - shortest, 0))

    def _redraw(self, line: str) -> None:
        self._write("\r" + line.ljust(self._shown))
        self._shown = len(line)

    def finish(self, logs: dict | None = None, current: int | None = None) -> None:
        """The final line: in place on a terminal (broken between items where it would not
        fit), else ``prefix - count - time - logs`` as one line."""
        if current is None:
            current = self.target or self.current
        items = self._items(current, time.perf_counter(), logs or {}, done=True)
        if self.columns is None:
            count = f"{current}/{self.target}" if self.target else f"{current}"
            parts = ([self.prefix] if self.prefix else []) + [count] + items
            self._write(" - ".join(parts) + "\n")
            return
        room = self.columns - 1
        lines = [self._head(current, room - self._tail(items))]
        for index, item in enumerate(items):
            separator = " " if index == 0 else " - "
            if len(lines[-1]) + len(separator) + len(item) <= room:
                lines[-1] += separator + item
            else:
                lines.append(("  " + item)[:room])
        self._redraw(lines[0])
        self._write("".join("\n" + line for line in lines[1:]) + "\n")
        self._shown = 0
