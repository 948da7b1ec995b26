"""Nested structures: lists, tuples and dicts of leaves (as Keras's ``tree``).

A model's inputs, a Dataset's elements, a node's arguments and a compile argument can each be
one value or a list / tuple / dict of them, nested. These are the three walks the package
makes over such a structure; nothing else in it recurses over lists and dicts by hand.

Dict values are visited in insertion order. ``is_leaf(value)`` (default: nothing but the
non-containers) stops the walk at a container that is to be treated as one value, e.g. a
serialized object ``{"class_name": ..., "config": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable


def is_nested(value) -> bool:
    """Whether ``value`` is a list, tuple or dict (a structure rather than a leaf)."""
    return isinstance(value, (list, tuple, dict))


def flatten(structure, is_leaf: Callable | None = None) -> list:
    """The leaves of ``structure``, in order.

    Example:
        >>> flatten([1, (2, 3), {"a": 4, "b": [5]}])
        [1, 2, 3, 4, 5]
    """
    if not is_nested(structure) or (is_leaf is not None and is_leaf(structure)):
        return [structure]
    items = structure.values() if isinstance(structure, dict) else structure
    return [leaf for item in items for leaf in flatten(item, is_leaf)]


def map_structure(fn: Callable, structure, is_leaf: Callable | None = None):
    """``structure`` with every leaf replaced by ``fn(leaf)``; lists, tuples and dicts (and
    their keys) kept.

    Example:
        >>> map_structure(lambda x: 10 * x, {"a": 1, "b": (2, [3])})
        {'a': 10, 'b': (20, [30])}
    """
    if not is_nested(structure) or (is_leaf is not None and is_leaf(structure)):
        return fn(structure)
    if isinstance(structure, dict):
        return {key: map_structure(fn, item, is_leaf) for key, item in structure.items()}
    return type(structure)(map_structure(fn, item, is_leaf) for item in structure)


def flatten_with_paths(structure, path: str = "") -> list[tuple[str, object]]:
    """``(path, leaf)`` pairs: the path of a leaf is ``path`` followed by ``/index`` or
    ``/key`` for each container on the way to it.

    Example:
        >>> flatten_with_paths({"a": [7, 8]}, "root")
        [('root/a/0', 7), ('root/a/1', 8)]
    """
    if not is_nested(structure):
        return [(path, structure)]
    items = structure.items() if isinstance(structure, dict) else enumerate(structure)
    return [pair for key, item in items for pair in flatten_with_paths(item, f"{path}/{key}")]
