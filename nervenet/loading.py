"""The guard of the model load running in this thread, if any.

While a model file is being rebuilt, a hostile config must not make the layers allocate more
than the file could fill, nor build activations of absurd size. The rules of that guard are
saving's (``nervenet.saving.guard.load_budget``); this ground-floor module only holds the
guard of the load running in this thread, so that layers (a floor below saving) can consult
it without importing saving. Per thread: one thread's load must not limit what another
builds.
"""

from __future__ import annotations

import threading
from typing import Protocol


class LoadGuard(Protocol):
    """What layers ask of the guard of a running load."""

    def take_weights(self, layer, name: str, shape: tuple) -> None:
        """Account for a new weight of ``shape`` (ValueError when the load may not make it)."""

    def check_activation(self, layer, shape, what: str) -> None:
        """ValueError when ``layer``'s ``what`` (input or output) of ``shape`` is too big."""


_state = threading.local()


def current_guard() -> LoadGuard | None:
    """The guard of the load running in this thread (``None`` outside a load)."""
    return getattr(_state, "guard", None)


def swap_guard(guard: LoadGuard | None) -> LoadGuard | None:
    """Make ``guard`` this thread's guard; return the one it replaces (to put it back)."""
    outer = getattr(_state, "guard", None)
    _state.guard = guard
    return outer
