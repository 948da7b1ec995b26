"""Own tables: header detection, encoding errors that name the column and row, the task read
from the target, stratified splits."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet.data import tabular


def _write(tmp_path, text: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_the_header_is_detected(tmp_path):
    assert tabular.read_csv(_write(tmp_path, "a,b\n1,2\n3,4\n"))[0] == ["a", "b"]
    assert tabular.read_csv(_write(tmp_path, "1,2\n3,4\n")) == (["0", "1"], [["1", "2"],
                                                                          ["3", "4"]])
    # a text column in every row is data, not a header
    columns, rows = tabular.read_csv(_write(tmp_path, "red,1\nblue,2\n"))
    assert columns == ["0", "1"] and len(rows) == 2
    columns, rows = tabular.read_csv(_write(tmp_path, "colour,size\nred,1\nblue,2\n"))
    assert columns == ["colour", "size"] and rows[0] == ["red", "1"]
    with pytest.raises(ValueError, match="row 3 has 1 values"):
        tabular.read_csv(_write(tmp_path, "a,b\n1,2\n3\n"))
    with pytest.raises(ValueError, match="no rows"):
        tabular.read_csv(_write(tmp_path, "\n"))


def test_encoding_errors_name_the_column_and_row(tmp_path):
    path = str(tmp_path / "t.csv")
    columns, rows = ["x", "c"], [["1", "a"], ["", "b"]]
    with pytest.raises(ValueError, match=r"column 'x' has no value in data row 2"):
        tabular.encode_columns(columns, rows, ["x"], {}, path)
    with pytest.raises(ValueError, match=r"column 'c' is not numeric \(data row 1: 'a'\)"):
        tabular.encode_columns(columns, [["1", "a"]], ["x", "c"], {}, path)
    with pytest.raises(ValueError, match=r"category 'z' was not seen"):
        tabular.encode_columns(columns, [["1", "z"]], ["c"], {"c": ["a", "b"]}, path)


def test_the_task_and_the_classes_come_from_the_target():
    assert tabular.infer_task(np.array(["cat", "dog"])) == "classification"
    assert tabular.infer_task(np.array([0, 1, 2, 1])) == "classification"
    assert tabular.infer_task(np.array(["1", "2", "10"])) == "classification"
    assert tabular.infer_task(np.array([0.5, 1.25, 3.0])) == "regression"
    assert tabular.infer_task(np.arange(100)) == "regression"  # too many distinct values
    names, labels = tabular.class_labels(np.array(["10", "9", "10"]))
    assert names == ["9", "10"] and labels.tolist() == [1, 0, 1]  # numeric order


def test_splits_are_seeded_disjoint_and_stratified():
    labels = np.array([0] * 80 + [1] * 20)
    kept, held = tabular.split_indices(100, 0.25, seed=1, labels=labels)
    assert len(held) == 25 and np.bincount(labels[held]).tolist() == [20, 5]
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(100))
    again = tabular.split_indices(100, 0.25, seed=1, labels=labels)
    assert np.array_equal(again[1], held)
    assert len(tabular.split_indices(10, 0.0, seed=0)[1]) == 0
