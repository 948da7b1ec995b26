"""Preprocessing: scale numeric features, encode nominal ones.

* ``minmax_scale``: x' = lo + (x - min) (hi - lo) / (max - min), per feature;
* ``standardize`` (z-score): x' = (x - mean) / std, per feature;
* ``one_hot``: nominal values (strings or integers) to indicator columns.

The statistics come from ``reference`` when it is given: scale the test set with the training
set's minimum/maximum or mean/std (never the test set's own, which would leak it).

The course's example, people described by height, weight, sex and constitution: the numeric
columns are standardized, the nominal ones one-hot encoded, and the blocks put side by side::

    >>> height = np.array([170.0, 180.0, 160.0])
    >>> weight = np.array([60.0, 80.0, 55.0])
    >>> sex = np.array(["F", "M", "F"])
    >>> constitution = np.array(["normal", "strong", "slim"])
    >>> x = np.column_stack([standardize(np.column_stack([height, weight])),
    ...                      one_hot(sex), one_hot(constitution)])
    >>> x.shape   # 2 numeric + 2 sexes + 3 constitutions
    (3, 7)
    >>> x[1, 2:].tolist()   # M -> [0, 1]; strong -> [0, 0, 1] (categories in sorted order)
    [0.0, 1.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nervenet.utils import to_categorical  # noqa: F401  (re-exported: one implementation)


def _numeric(x, name: str, argument: str = "x") -> np.ndarray:
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: {argument} must be numeric, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{name}: {argument} must have at least one axis, got a scalar")
    array = array.astype(array.dtype if array.dtype.kind == "f" else np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: {argument} contains NaN or Inf; impute missing values first")
    return array


def _reference(x, reference, name: str) -> np.ndarray:
    if reference is None:
        return x
    reference = _numeric(reference, name, "reference")
    if reference.shape[1:] != x.shape[1:]:
        raise ValueError(f"{name}: reference has sample shape {reference.shape[1:]} but x has "
                         f"{x.shape[1:]}")
    return reference


def minmax_scale(x, feature_range: tuple[float, float] = (0.0, 1.0), reference=None,
                 axis: int = 0) -> np.ndarray:
    """Scale each feature linearly so that its minimum and maximum map to ``feature_range``.

    ``x' = lo + (x - min) * (hi - lo) / (max - min)``; a constant feature (max = min) maps to
    ``lo``.

    Args:
        x: numeric array, samples along ``axis``.
        feature_range: ``(lo, hi)`` with lo < hi (default (0, 1)).
        reference: take min and max from this array instead of ``x`` (the training set)
            (default ``None``).
        axis: the sample axis whose extremes are taken (default 0).

    Returns:
        A floating array of x's shape (float64 for integer input, else x's dtype).

    Example:
        >>> minmax_scale(np.array([[1.0, 10.0], [3.0, 20.0], [2.0, 30.0]])).tolist()
        [[0.0, 0.0], [1.0, 0.5], [0.5, 1.0]]
    """
    x = _numeric(x, "minmax_scale")
    lo, hi = feature_range
    if not lo < hi:
        raise ValueError(f"minmax_scale: feature_range must be (lo, hi) with lo < hi, got "
                         f"{feature_range!r}")
    source = _reference(x, reference, "minmax_scale")
    low = source.min(axis=axis, keepdims=True)
    span = source.max(axis=axis, keepdims=True) - low
    span = np.where(span == 0, 1, span)  # constant features: no division by zero
    return (lo + (x - low) * ((hi - lo) / span)).astype(x.dtype)


def standardize(x, reference=None, axis: int = 0, ddof: int = 0) -> np.ndarray:
    """The z-score of each feature: ``x' = (x - mean) / std``.

    Afterwards every feature has mean 0 and (population) standard deviation 1 on the
    reference data; a constant feature (std 0) is only centred.

    Args:
        x: numeric array, samples along ``axis``.
        reference: take mean and std from this array instead of ``x`` (default ``None``).
        axis: the sample axis (default 0).
        ddof: delta degrees of freedom of the std (default 0, as scikit-learn's
            StandardScaler).

    Example:
        >>> standardize(np.array([[1.0], [2.0], [3.0]])).ravel().round(4).tolist()
        [-1.2247, 0.0, 1.2247]
    """
    x = _numeric(x, "standardize")
    source = _reference(x, reference, "standardize")
    mean = source.mean(axis=axis, keepdims=True)
    std = source.std(axis=axis, keepdims=True, ddof=ddof)
    std = np.where(std == 0, 1, std)
    return ((x - mean) / std).astype(x.dtype)


def one_hot(values, categories: Sequence | None = None, dtype=np.float32) -> np.ndarray:
    """Encode nominal values as indicator columns: value k of K becomes e_k in R^K.

    Nominal values (sex, blood type, a region's name) have no order, so coding them 1, 2, 3
    would invent one; one indicator column per category does not.

    Args:
        values: a 1-D array or list of labels (strings, integers, ...).
        categories: the categories, in column order (default ``None``: the sorted distinct
            values). A value outside ``categories`` is an error.
        dtype: the output dtype (default float32).

    Returns:
        An array of shape (len(values), len(categories)) of 0/1.

    Example:
        >>> one_hot(["b", "a", "c", "a"]).tolist()
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        >>> one_hot([2, 0], categories=range(4)).astype(int).tolist()
        [[0, 0, 1, 0], [1, 0, 0, 0]]
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"one_hot: values must be 1-D, got shape {values.shape}")
    if categories is None:
        categories = np.unique(values)
    else:
        categories = np.asarray(list(categories))
        if len(np.unique(categories)) != len(categories):
            raise ValueError(f"one_hot: categories must be distinct, got {categories.tolist()}")
    if len(categories) == 0:
        raise ValueError("one_hot: there are no categories (values is empty)")
    lookup = {category: index for index, category in enumerate(categories.tolist())}
    try:
        columns = np.array([lookup[value] for value in values.tolist()], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"one_hot: value {error.args[0]!r} is not one of the categories "
                         f"{list(lookup)}") from None
    encoded = np.zeros((len(values), len(categories)), dtype=dtype)
    encoded[np.arange(len(values)), columns] = 1
    return encoded
