"""Hyperparameter search, as KerasTuner: a search space, tuners, and coarse-to-fine narrowing.

* ``HyperParameters`` with ``Int``, ``Float`` (``sampling="linear"`` or ``"log"``), ``Choice``,
  ``Boolean``, ``Fixed`` and ``conditional_scope``; ``grid_size(q)`` counts a grid's points.
* ``GridSearch``, ``RandomSearch``, ``BayesianOptimization`` (Optuna's TPE or Gaussian
  process; a shared ``storage`` spreads one study over processes and machines) and
  ``Hyperband``; ``tuner.search(x, y, validation_data=..., epochs=..., callbacks=...)``,
  ``get_best_hyperparameters()``, ``get_best_models()``, ``results_summary()``; trials saved
  as JSON in ``directory`` and resumed from it.
* ``coarse_to_fine(tuner)``: a narrower space around the best trials.

See docs/tuning.md.
"""

from nervenet.tuning.bayesian import BayesianOptimization
from nervenet.tuning.hyperband import Hyperband, coarse_to_fine
from nervenet.tuning.hyperparameters import (
    Boolean,
    Choice,
    Fixed,
    Float,
    HyperParameter,
    HyperParameters,
    Int,
    grid_points,
)
from nervenet.tuning.tuners import GridSearch, Objective, RandomSearch, Trial, Tuner

__all__ = [
    "BayesianOptimization", "Boolean", "Choice", "Fixed", "Float", "GridSearch", "HyperParameter",
    "HyperParameters", "Hyperband", "Int", "Objective", "RandomSearch", "Trial", "Tuner",
    "coarse_to_fine", "grid_points",
]
