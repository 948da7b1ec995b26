"""Dataset pipelines: from_tensor_slices, shuffle (buffer semantics), batch, map."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet.data import Dataset


@pytest.fixture
def xy():
    return np.arange(20.0).reshape(10, 2), np.arange(10)


def test_batches_cover_every_sample_once(xy):
    data = Dataset.from_tensor_slices(xy).shuffle(10, seed=0).batch(4)
    assert len(data) == 3 and data.batch_size == 4
    batches = list(data)
    assert [len(by) for _, by in batches] == [4, 4, 2]
    xs = np.concatenate([bx for bx, _ in batches])
    ys = np.concatenate([by for _, by in batches])
    assert sorted(ys.tolist()) == list(range(10))
    np.testing.assert_array_equal(xs, xy[0][ys])  # x and y stay paired


def test_reshuffled_each_pass_and_reproducible(xy):
    data = Dataset.from_tensor_slices(xy).shuffle(10, seed=1).batch(10)
    first, second = (next(iter(data))[1] for _ in range(2))
    assert first.tolist() != second.tolist()
    again = Dataset.from_tensor_slices(xy).shuffle(10, seed=1).batch(10)
    assert next(iter(again))[1].tolist() == first.tolist()
    fixed = Dataset.from_tensor_slices(xy).shuffle(10, seed=1, reshuffle_each_iteration=False)
    assert [int(y) for _, y in fixed] == [int(y) for _, y in fixed]


def test_small_buffer_only_moves_elements_a_little():
    data = Dataset.from_tensor_slices(np.arange(1000)).shuffle(3, seed=0)
    order = np.array(list(data))
    assert sorted(order.tolist()) == list(range(1000))
    # an element can leave the buffer early but enters it only buffer_size - 1 places ahead
    assert np.all(order - np.arange(1000) <= 2)
    assert order.tolist() != list(range(1000))


def test_unbatched_iteration_drop_remainder_and_map(xy):
    data = Dataset.from_tensor_slices(xy)
    assert len(data) == 10
    x0, y0 = next(iter(data))
    assert x0.tolist() == [0.0, 1.0] and y0 == 0
    assert len(data.batch(4, drop_remainder=True)) == 2
    assert [len(b) for b, _ in data.batch(4, drop_remainder=True)] == [4, 4]
    doubled = data.map(lambda x, y: (x * 2, y)).batch(5)
    np.testing.assert_array_equal(next(iter(doubled))[0], xy[0][:5] * 2)
    after = data.batch(5).map(lambda x, y: (x.sum(axis=1), y))
    np.testing.assert_array_equal(next(iter(after))[0], xy[0][:5].sum(axis=1))


def test_arrays_give_what_fit_needs(xy):
    data = Dataset.from_tensor_slices(xy).shuffle(10, seed=0).batch(3)
    x, y = data.arrays()
    np.testing.assert_array_equal(x, xy[0])
    np.testing.assert_array_equal(y, xy[1])
    mapping = Dataset.from_tensor_slices({"a": xy[0], "b": xy[1]})
    assert set(next(iter(mapping))) == {"a", "b"}


def test_bad_arguments(xy):
    with pytest.raises(ValueError, match="same number of samples"):
        Dataset.from_tensor_slices((xy[0], xy[1][:5]))
    data = Dataset.from_tensor_slices(xy)
    with pytest.raises(ValueError, match="buffer_size"):
        data.shuffle(0)
    with pytest.raises(ValueError, match="batch_size"):
        data.batch(-1)
    with pytest.raises(ValueError, match="already batched"):
        data.batch(2).batch(2)
    with pytest.raises(TypeError, match="callable"):
        data.map(3)
