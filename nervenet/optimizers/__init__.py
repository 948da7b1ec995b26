"""Optimizers: first-order rules for minibatch training, second-order methods for full-batch
training of small models, and learning-rate schedules.

* ``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``, ``Adamax``, ``Nadam``:
  ``optimizer.apply_gradients([(grad, var), ...])`` updates each ``var.data`` in place.
* ``Newton``, ``ConjugateGradient``, ``BFGS``, ``LBFGS``:
  ``optimizer.minimize(loss_fn, params)`` runs to convergence and returns an
  ``OptimizeResult``.
* ``schedules``: learning rates that change with the step (``ExponentialDecay``, ...,
  ``OneCycle``), accepted wherever a learning rate is.
* ``get(identifier)`` resolves ``"adam"``, a config dict or an optimizer instance.

See docs/optimizers.md for each rule, when to use it, and their paths on 2-D loss surfaces.
"""

from nervenet.optimizers import schedules  # noqa: I001  (base depends on schedules)
from nervenet.optimizers.base import Optimizer
from nervenet.optimizers.first_order import SGD, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop
from nervenet.optimizers.line_search import LineSearch, LineSearchResult
from nervenet.optimizers.second_order import (
    BFGS,
    LBFGS,
    ConjugateGradient,
    Newton,
    OptimizeResult,
    SecondOrderOptimizer,
)
from nervenet.registry import Registry

#: The optimizers by string id (Keras's names, plus the second-order methods) and by class
#: name (what ``serialize`` writes and model files hold).
registry = Registry("optimizer")
for _id, _cls in (("sgd", SGD), ("adagrad", Adagrad), ("rmsprop", RMSprop), ("adam", Adam),
                  ("adamw", AdamW), ("adamax", Adamax), ("nadam", Nadam), ("newton", Newton),
                  ("conjugate_gradient", ConjugateGradient), ("bfgs", BFGS), ("lbfgs", LBFGS)):
    registry.add(_id, _cls)
    registry.add(_cls.__name__, _cls)


def get(identifier):
    """Resolve an optimizer: a string id, a ``{"class_name", "config"}`` dict, or an instance.

    Args:
        identifier: ``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
            ``"adamax"``, ``"nadam"``, ``"newton"``, ``"conjugate_gradient"``, ``"bfgs"``,
            ``"lbfgs"`` (case-insensitive; a new optimizer with default arguments), a dict from
            ``serialize``, or an optimizer (returned as is).

    Returns:
        An optimizer.

    Raises:
        ValueError: an unknown id, listing the valid ones.

    Example:
        >>> get("adam")
        Adam(learning_rate=0.001)
    """
    if isinstance(identifier, (Optimizer, SecondOrderOptimizer)):
        return identifier
    if isinstance(identifier, str) and identifier not in registry:
        identifier = identifier.lower()
    if isinstance(identifier, (str, dict)):
        return registry.get(identifier, instantiate=True)
    raise TypeError(f"optimizers.get: expected a string id, a config dict or an optimizer, got "
                    f"{type(identifier).__name__}")


def serialize(optimizer) -> dict:
    """``{"class_name": ..., "config": ...}`` (JSON-serialisable); ``get`` rebuilds it."""
    if not isinstance(optimizer, (Optimizer, SecondOrderOptimizer)):
        raise TypeError(f"optimizers.serialize: expected an optimizer, got "
                        f"{type(optimizer).__name__}")
    return registry.serialize(optimizer)


__all__ = [
    "BFGS", "LBFGS", "SGD", "Adagrad", "Adam", "AdamW", "Adamax", "ConjugateGradient",
    "LineSearch", "LineSearchResult", "Nadam", "Newton", "OptimizeResult", "Optimizer",
    "RMSprop", "SecondOrderOptimizer", "get", "registry", "schedules", "serialize",
]
