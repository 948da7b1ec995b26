"""Your own data as arrays: a CSV table (numeric and nominal columns) or a NumPy ``.npz``
archive, and the (stratified) splits a trainer needs.

* ``read_csv(path)``: the column names (from the header, which is detected, or ``"0"``,
  ``"1"``, ...) and the rows as strings;
* ``encode_columns(columns, rows, features, categories)``: the feature matrix, numeric columns
  as numbers and the nominal columns named in ``categories`` one-hot encoded;
* ``infer_task(values)``: ``"classification"`` for text or few distinct integers, else
  ``"regression"``; ``class_labels(values)``: the class names and each sample's index;
* ``split_indices(n, fraction, seed, labels)``: a seeded split, stratified when labels are given.

Every error names the file, the column and the row where the problem is.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "people.csv")
    >>> _ = open(path, "w").write("height,sex,label\\n170,F,a\\n180,M,b\\n160,F,a\\n")
    >>> columns, rows = read_csv(path)
    >>> columns
    ['height', 'sex', 'label']
    >>> encode_columns(columns, rows, ["height", "sex"], {"sex": ["F", "M"]}, path).tolist()
    [[170.0, 1.0, 0.0], [180.0, 0.0, 1.0], [160.0, 1.0, 0.0]]
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

import numpy as np

#: at most this many distinct integer targets are read as classes by ``infer_task``
MAX_INFERRED_CLASSES = 20


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _has_header(rows: list[list[str]]) -> bool:
    """The first row names the columns when it is all text, or when it has text in a column
    that is numeric in every later row."""
    first, rest = rows[0], rows[1:]
    numeric = [is_number(value) for value in first]
    if all(numeric):
        return False
    if not any(numeric):
        return True
    return any(not ok and rest and all(is_number(row[j]) for row in rest)
               for j, ok in enumerate(numeric))


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    """``(column names, rows)`` of a comma-separated file; blank lines are skipped.

    Raises:
        ValueError: an empty file, rows of different lengths, repeated column names.
    """
    where = os.fspath(path)
    with open(where, newline="", encoding="utf-8-sig") as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle)
                if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{where}: the file holds no rows")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValueError(f"{where}: row {number} has {len(row)} values, the first row "
                             f"{width}")
    if _has_header(rows):
        columns, rows = rows[0], rows[1:]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"{where}: the header repeats the column name(s) {repeated}")
        if not rows:
            raise ValueError(f"{where}: the file holds a header but no data rows")
    else:
        columns = [str(j) for j in range(width)]
    return columns, rows


def column_index(columns: Sequence[str], name: str, where: str, option: str) -> int:
    """The position of column ``name`` (a header name, or a 0-based position)."""
    if name in columns:
        return list(columns).index(name)
    raise ValueError(f"{option} {name!r}: {where} has no such column; its columns are "
                     f"{list(columns)}")


def encode_columns(columns: Sequence[str], rows: list[list[str]], features: Sequence[str],
                   categories: dict[str, list[str]], where: str) -> np.ndarray:
    """The float32 matrix of the ``features`` columns, in that order: a numeric column as its
    numbers, a column in ``categories`` as one indicator column per category (in the given
    order).

    Raises:
        ValueError: a text value in a numeric column, an empty value, a category that is not
            in ``categories`` (each naming the column and the row).
    """
    blocks = []
    for name in features:
        j = column_index(columns, name, where, "column")
        values = [row[j] for row in rows]
        empty = [number for number, value in enumerate(values, start=1) if value == ""]
        if empty:
            raise ValueError(f"{where}: column {name!r} has no value in data row {empty[0]} "
                             "(fill in or drop missing values first)")
        if name in categories:
            known = {category: k for k, category in enumerate(categories[name])}
            block = np.zeros((len(values), len(known)), dtype=np.float32)
            for number, value in enumerate(values):
                if value not in known:
                    raise ValueError(f"{where}: column {name!r}, data row {number + 1}: "
                                     f"category {value!r} was not seen in training (known: "
                                     f"{list(known)})")
                block[number, known[value]] = 1.0
            blocks.append(block)
            continue
        text = [(number, value) for number, value in enumerate(values, start=1)
                if not is_number(value)]
        if text:
            raise ValueError(f"{where}: column {name!r} is not numeric (data row {text[0][0]}: "
                             f"{text[0][1]!r}); name it in --categorical to one-hot encode it, "
                             "or drop it")
        blocks.append(np.array(values, dtype=np.float64)[:, None].astype(np.float32))
    if not blocks:
        raise ValueError(f"{where}: no feature column is left besides the target")
    return np.concatenate(blocks, axis=1)


def sorted_values(values) -> list[str]:
    """The distinct values as strings, in numeric order when they are all numbers."""
    distinct = {str(v) for v in np.asarray(values).ravel().tolist()}
    if all(is_number(v) for v in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct)


def infer_task(values) -> str:
    """``"classification"`` when the targets are text, booleans or at most
    ``MAX_INFERRED_CLASSES`` distinct integers; otherwise ``"regression"``."""
    array = np.asarray(values).ravel()
    if array.dtype.kind in "biu":
        return ("classification" if len(np.unique(array)) <= MAX_INFERRED_CLASSES
                else "regression")
    if array.dtype.kind != "f":
        if not all(is_number(str(v)) for v in array.tolist()):
            return "classification"
        array = array.astype(np.float64)
    integral = np.all(np.isfinite(array)) and np.all(array == np.round(array))
    few = len(np.unique(array)) <= MAX_INFERRED_CLASSES
    return "classification" if integral and few else "regression"


def class_labels(values, class_names: Sequence[str] | None = None
                 ) -> tuple[list[str], np.ndarray]:
    """``(class names, int64 index of each sample's class)``; the names are ``sorted_values``
    unless given (then every value must be one of them)."""
    text = [str(v) for v in np.asarray(values).ravel().tolist()]
    names = list(class_names) if class_names is not None else sorted_values(text)
    index = {name: k for k, name in enumerate(names)}
    unknown = sorted({v for v in text if v not in index})
    if unknown:
        raise ValueError(f"the target holds value(s) {unknown[:5]} that are not classes of the "
                         f"model (its classes: {names})")
    return names, np.array([index[v] for v in text], dtype=np.int64)


def split_indices(n: int, fraction: float, seed: int, labels=None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held out)`` sample indices, both sorted: ``round(fraction * n)`` samples held
    out at random (seeded), or, with ``labels``, ``round(fraction * count)`` of each class so
    that both parts keep the class proportions (a stratified split)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"split fraction must be in [0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(labels).reshape(n, -1)[:, 0]
        groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    held = []
    for group in groups:
        group = rng.permutation(group)
        held.append(group[:int(round(fraction * len(group)))])
    held = np.sort(np.concatenate(held)).astype(np.int64)
    kept = np.setdiff1d(np.arange(n), held)
    return kept, held
