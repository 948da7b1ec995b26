"""scikit-learn estimators built on nervenet (needs scikit-learn: ``pip install nervenet[tune]``).

* ``Perceptron``: Rosenblatt's rule with scikit-learn's ``Perceptron`` parameters, one-vs-rest
  for several classes.
* ``MLPClassifier``, ``MLPRegressor``: scikit-learn's multi-layer perceptrons (same parameters,
  same learned attributes), trained by nervenet's autograd and optimizers.
* ``NeuralNetClassifier``, ``NeuralNetRegressor``: wrap any function that builds a nervenet
  model (as scikeras wraps Keras), so that ``GridSearchCV`` and ``Pipeline`` work on it.

All follow scikit-learn's conventions: ``__init__`` only stores its arguments, they are
checked by ``fit``, ``fit`` returns ``self``, and what is learned ends in ``_``.
See docs/sklearn.md.
"""

from nervenet.sklearn.mlp import MLPClassifier, MLPRegressor
from nervenet.sklearn.perceptron import Perceptron
from nervenet.sklearn.wrappers import NeuralNetClassifier, NeuralNetRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "NeuralNetClassifier", "NeuralNetRegressor",
           "Perceptron"]
