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


def test_name_of_is_the_reverse_lookup():
    registry = Registry("widget")

    @registry.register("knob", "Knob")
    class Knob:
        pass

    class Unregistered(Knob):
        pass

    assert registry.name_of(Knob) == "Knob"          # the first id in sorted order
    assert registry.name_of(Knob()) == "Knob"        # an instance: its class's id
    assert registry.name_of(Unregistered()) is None  # a subclass is not its parent
    assert registry.name_of(3) is None


def test_optimizers_and_schedules_live_in_the_shared_registry():
    from nervenet import optimizers
    from nervenet.optimizers import schedules

    assert isinstance(optimizers.registry, Registry)
    assert optimizers.registry.name_of(optimizers.Adam()) == "Adam"
    assert optimizers.registry.lookup("conjugate_gradient") is optimizers.ConjugateGradient
    assert type(optimizers.get("RMSprop")) is optimizers.RMSprop
    decay = schedules.ExponentialDecay(0.1, 10, 0.5)
    assert schedules.registry.name_of(decay) == "ExponentialDecay"
    assert schedules.deserialize(schedules.serialize(decay)).get_config() == decay.get_config()
    with pytest.raises(ValueError, match="unknown schedule 'Nope'; valid schedule ids are: "
                                         "CosineDecay, ExponentialDecay"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
