"""The progress bar on a terminal 80 columns wide: what a person sees, replayed by a small
terminal model (carriage return, newline, wrap at the last column). No redraw may leave old
characters behind or wrap onto a second line; off a terminal, one plain line per epoch; units
that keep their digits; progress for evaluate and predict."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nervenet import callbacks
from nervenet.progbar import Progbar, format_rate

ROOT = Path(__file__).resolve().parents[1]


def replay(text: str, columns: int = 80) -> tuple[list[str], int, list[str]]:
    """``(screen lines, wrapped redraws, last written segment of each line)`` of ``text``
    shown on a terminal ``columns`` wide that wraps when a character goes past the last
    column; a wrapped redraw is a line that wraps after a carriage return redrew it."""
    screen, segments, wraps = [[]], [""], 0
    column, redrawn = 0, False
    for char in text:
        if char == "\r":
            column, redrawn = 0, True
            segments[-1] = ""
        elif char == "\n":
            screen.append([])
            segments.append("")
            column, redrawn = 0, False
        else:
            if column == columns:
                wraps += redrawn
                screen.append([])
                segments.append("")
                column = 0
            line = screen[-1]
            line.extend(" " * (column + 1 - len(line)))
            line[column] = char
            column += 1
            segments[-1] += char
    return ["".join(line).rstrip() for line in screen], wraps, [s.rstrip() for s in segments]


def _tty() -> io.StringIO:
    """A stream that says it is a terminal (of $COLUMNS columns: it has no file number)."""
    stream = io.StringIO()
    stream.isatty = lambda: True
    return stream


def test_redraws_pad_over_longer_lines_and_never_wrap(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    stream = _tty()
    bar = Progbar(63, stream=stream, interval=0.0)
    bar.start -= 0.074 * 3  # 74 ms per step at first...
    bar.update(3, {"loss": 12.3456, "accuracy": 0.5, "very_long_metric_name": 1.0})
    bar.start += 0.074 * 3 - 0.0005 * 3  # ...then 500 us: the line gets shorter
    bar.update(4, {"loss": 1.2})
    bar.finish({"loss": 1.0, "accuracy": 0.9, "val_loss": 1.1, "val_accuracy": 0.875,
                "learning_rate": 0.001})
    screen, wraps, segments = replay(stream.getvalue())
    assert wraps == 0
    assert all(len(line) < 80 for line in screen)
    # every line shows exactly what was written last on it: no leftover characters
    assert [s for s in screen if s] == [s for s in segments if s]
    assert "63/63 [" in screen[0] and "val_accuracy: 0.8750" in "".join(screen)


def test_not_a_terminal_one_line_per_epoch_and_units():
    assert format_rate(0.0004) == "400us/step" and format_rate(0.035) == "35ms/step"
    assert format_rate(2.5) == "2.5s/step"
    stream = io.StringIO()
    logger = callbacks.ProgbarLogger(verbose=1, stream=stream, interval=0.0)
    hooks = callbacks.CallbackList([logger], params={"epochs": 2, "steps": 3})
    hooks.call("on_train_begin", {})
    for epoch in range(2):
        hooks.call("on_epoch_begin", epoch, {})
        for step in range(3):
            hooks.call("on_train_batch_end", step, {"loss": 0.5})
        hooks.call("on_epoch_end", epoch, {"loss": 0.5, "val_loss": 0.25})
    hooks.call("on_train_end", {})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[1].startswith("Epoch 2/2 - 3/3 - ") and lines[1].endswith("val_loss: 0.2500")


@pytest.mark.parametrize("mode", ["test", "predict"])
def test_evaluate_and_predict_get_a_bar_of_their_own(monkeypatch, mode):
    monkeypatch.setenv("COLUMNS", "80")
    stream = _tty()
    logger = callbacks.ProgbarLogger(verbose=1, stream=stream, interval=0.0)
    hooks = callbacks.CallbackList([logger], params={"steps": 5, "verbose": 1})
    hooks.call(f"on_{mode}_begin", {})
    for step in range(5):
        hooks.call(f"on_{mode}_batch_end", step, {"loss": 0.5} if mode == "test" else {})
    hooks.call(f"on_{mode}_end", {"loss": 0.25} if mode == "test" else {})
    screen, wraps, _ = replay(stream.getvalue())
    assert wraps == 0 and screen[0].startswith("5/5 [====")
    assert ("loss: 0.2500" in screen[0]) == (mode == "test")


def _read_terminal(leader: int, seconds: float) -> str:
    """What a child wrote to the pseudo-terminal ``leader`` until it closed it (or ``seconds``
    passed), with the pty's newline translation undone; closes ``leader``."""
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_the_real_command_under_a_pty_80_columns_wide(tmp_path):
    """``nervenet train`` on MNIST digits in a pseudo-terminal of 80 columns."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, NERVENET_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("COLUMNS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "nervenet", "train", "--dataset", "mnist5k", "--epochs", "2",
         "--max-samples", "2000", "--hidden", "64", "--batch-size", "4", "--out", "r"],
        stdin=follower, stdout=follower, stderr=subprocess.DEVNULL, cwd=tmp_path, env=env)
    os.close(follower)
    text = _read_terminal(leader, seconds=240)
    assert process.wait(timeout=60) == 0
    assert text.count("\r") > 2  # the bar was redrawn in place
    screen, wraps, segments = replay(text)
    assert wraps == 0, text
    assert [s for s in screen if s] == [s for s in segments if s], text
    epoch_lines = [line for line in screen if re.match(r"(\d+)/\1 \[=+\]", line)]
    assert len(epoch_lines) == 2 and all("/step" in line for line in epoch_lines), screen


def test_the_evaluate_command_draws_its_bar_on_a_terminal_stderr_only(tmp_path):
    """``nervenet evaluate``: the metrics line alone on stdout (a pipe), the bar on stderr (a
    pseudo-terminal); with stderr not a terminal, no bar at all."""
    from nervenet import cli

    assert cli.main(["train", "--dataset", "moons", "--epochs", "1", "--hidden", "8",
                     "--verbose", "0", "--out", str(tmp_path / "run"), "--overwrite"]) == 0
    env = dict(os.environ, NERVENET_OFFLINE="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "nervenet", "evaluate", str(tmp_path / "run")]
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env,
                               text=True)
    os.close(follower)
    bar = _read_terminal(leader, seconds=120)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    assert len(out.splitlines()) == 1 and "accuracy" in out, out
    assert "/step" in bar
    piped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert piped.returncode == 0 and piped.stdout == out and piped.stderr == ""
