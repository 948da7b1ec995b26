"""The registry of string ids."""

from __future__ import annotations

import pytest

from nervenet.registry import Registry


def test_unknown_ids_list_the_valid_ones_and_configs_build_registered_classes_only():
    registry = Registry("widget")

    @registry.register("knob", "Knob")
    class Knob:
        def __init__(self, size=1):
            self.size = size

    assert registry.get("knob") is Knob
    assert registry.get({"class_name": "Knob", "config": {"size": 3}}).size == 3
    with pytest.raises(ValueError, match="unknown widget 'os.system'; valid widget ids are: "
                                         "Knob, knob"):
        registry.get({"class_name": "os.system", "config": {}})
    with pytest.raises(ValueError, match="must be a dict with 'class_name'"):
        registry.from_config(["Knob"])


def test_a_redefined_class_replaces_itself_but_a_different_one_is_refused():
    registry = Registry("widget")

    def define():
        class Knob:
            pass
        return Knob

    first, second = define(), define()
    registry.add("Knob", first)
    registry.add("Knob", second)  # the same definition run again
    assert registry.lookup("Knob") is second

    class Other:
        pass

    with pytest.raises(ValueError, match="already registered"):
        registry.add("Knob", Other)
