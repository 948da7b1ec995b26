"""String identifiers -> objects, one registry per kind (activations, initializers, losses, ...).

Every place that accepts ``"relu"``, ``"he_normal"`` or ``"adam"`` resolves it through the
registry of its kind, so that an unknown id always gives the same kind of error: a ValueError
that lists the valid ids. Registries are also what model loading uses to turn class names in a
file back into classes: a name that is not registered is rejected, nothing is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Registry:
    """A named table of objects (classes or functions) of one kind.

    Args:
        kind: what the entries are, for error messages ("activation", "loss", ...).

    Example:
        >>> activations = Registry("activation")
        >>> @activations.register("identity", "linear")
        ... def identity(x):
        ...     return x
        >>> activations.get("linear")(3)
        3
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, *names: str) -> Callable:
        """Decorator registering an object under ``names`` (default: its ``__name__``)."""

        def decorate(obj):
            for name in names or (obj.__name__,):
                self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: Any) -> None:
        """Register ``obj`` under ``name``; registering a different object twice is an error.

        A class defined again with the same module and qualified name (a notebook cell run
        twice) replaces its earlier version.
        """
        existing = self._entries.get(name)
        if existing is not None and existing is not obj and not _same_definition(existing, obj):
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj

    def names(self) -> list[str]:
        """The registered ids, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def name_of(self, obj: Any) -> str | None:
        """The reverse lookup: the first id (in sorted order) under which ``obj`` is registered,
        or, for an instance, under which its class is; ``None`` when neither is.

        Example:
            >>> shapes = Registry("shape")
            >>> class Square:
            ...     pass
            >>> shapes.add("square", Square)
            >>> shapes.name_of(Square()), shapes.name_of(Square), shapes.name_of(3)
            ('square', 'square', None)
        """
        registered = [name for name in self.names() if self._entries[name] is obj]
        if not registered:
            registered = [name for name in self.names() if self._entries[name] is type(obj)]
        return registered[0] if registered else None

    def lookup(self, name: str) -> Any:
        """Return the object registered as ``name``, or raise a ValueError listing the ids."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} id must be a string, got {type(name).__name__}")
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; valid {self.kind} ids are: "
                f"{', '.join(self.names())}"
            ) from None

    def get(self, identifier: Any, instantiate: bool = False) -> Any:
        """Resolve an identifier: a registered name, a ``{"class_name", "config"}`` dict, or an
        object that is already usable (returned unchanged).

        Args:
            identifier: the name, config dict or object.
            instantiate: when the name resolves to a class, return an instance built with no
                arguments (default ``False``).
        """
        if isinstance(identifier, str):
            obj = self.lookup(identifier)
            return obj() if instantiate and isinstance(obj, type) else obj
        if isinstance(identifier, dict):
            return self.from_config(identifier)
        return identifier

    def resolve(self, identifier: Any, allow_none: bool = False) -> Any:
        """The callable object an argument names: ``get(identifier, instantiate=True)``,
        checked to be callable (``None`` passes through when ``allow_none``)."""
        if identifier is None:
            if allow_none:
                return None
            raise ValueError(f"{self.kind} must not be None")
        obj = self.get(identifier, instantiate=True)
        if not callable(obj):
            raise ValueError(f"{self.kind} must be a name, a config or a callable, got "
                             f"{identifier!r}")
        return obj

    def serialize(self, obj: Any) -> dict:
        """The JSON-serialisable ``{"class_name", "config"}`` form of a registered object."""
        name = type(obj).__name__
        if name not in self._entries:
            raise ValueError(f"cannot serialize {self.kind} {obj!r}: {name} is not registered")
        return {"class_name": name, "config": obj.get_config()}

    def from_config(self, config: dict) -> Any:
        """Build an object from ``{"class_name": name, "config": {...}}`` (registered names
        only; nothing is imported)."""
        if not isinstance(config, dict) or "class_name" not in config:
            raise ValueError(
                f"a {self.kind} config must be a dict with 'class_name' and 'config', got "
                f"{config!r}"
            )
        cls = self.lookup(config["class_name"])
        arguments = config.get("config") or {}
        if not isinstance(arguments, dict):
            raise ValueError(f"{self.kind} config of {config['class_name']!r} must be a dict")
        if hasattr(cls, "from_config"):
            return cls.from_config(arguments)
        return cls(**arguments)


def _same_definition(a: Any, b: Any) -> bool:
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None)) and (
        getattr(a, "__qualname__", None) is not None)
