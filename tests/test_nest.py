"""nervenet.nest: the one walk over nested lists, tuples and dicts."""

from __future__ import annotations

from nervenet import nest


def test_flatten_visits_leaves_in_order_dict_values_in_insertion_order():
    structure = {"b": [1, (2, 3)], "a": {"z": 4, "y": []}, "c": 5}
    assert nest.flatten(structure) == [1, 2, 3, 4, 5]
    assert nest.flatten(7) == [7]
    assert nest.flatten(None) == [None]


def test_map_structure_keeps_containers_and_keys():
    structure = {"b": [1, (2, 3)], "a": 4}
    mapped = nest.map_structure(lambda x: x * 10, structure)
    assert mapped == {"b": [10, (20, 30)], "a": 40}
    assert type(mapped["b"]) is list and type(mapped["b"][1]) is tuple
    assert list(mapped) == ["b", "a"]


def test_is_leaf_stops_the_walk_at_a_container_taken_as_one_value():
    def serialized(value):
        return isinstance(value, dict) and "class_name" in value

    loss = {"class_name": "MeanSquaredError", "config": {"reduction": "mean"}}
    structure = {"out": loss, "aux": ["mae"]}
    assert nest.flatten(structure, serialized) == [loss, "mae"]
    assert nest.map_structure(lambda v: "obj" if serialized(v) else v, structure,
                              serialized) == {"out": "obj", "aux": ["mae"]}


def test_flatten_with_paths_names_each_leaf_by_its_keys_and_indices():
    assert nest.flatten_with_paths({"blocks": ["a", {"x": "b"}], "head": "c"}, "m") == [
        ("m/blocks/0", "a"), ("m/blocks/1/x", "b"), ("m/head", "c")]
    assert nest.is_nested([]) and nest.is_nested({}) and not nest.is_nested("ab")
