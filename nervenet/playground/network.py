"""The network a playground setup describes, written once as data (``Call``) so that the same
description builds the live model and prints the exported script's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nervenet import layers, models, optimizers, regularizers

_MODULES = {"layers": layers, "optimizers": optimizers, "regularizers": regularizers}

#: the notes' XOR network: hidden unit 1 = NAND (w = [-2, -2], b = 3), unit 2 = OR
#: (w = [2, 2], b = -1), output = AND (w = [1, 1], b = -1.5); examples/xor.py has the same
XOR_WEIGHTS = [np.array([[-2.0, 2.0], [-2.0, 2.0]]), np.array([3.0, -1.0]),
               np.array([[1.0], [1.0]]), np.array([-1.5])]


@dataclass
class Call:
    """A constructor call ``module.name(**kwargs)``, run by ``build`` or written by ``code``."""

    module: str
    name: str
    kwargs: dict = field(default_factory=dict)

    def build(self):
        arguments = {key: value.build() if isinstance(value, Call) else value
                     for key, value in self.kwargs.items()}
        return getattr(_MODULES[self.module], self.name)(**arguments)

    def code(self) -> str:
        arguments = ", ".join(f"{key}={value.code() if isinstance(value, Call) else value!r}"
                              for key, value in self.kwargs.items())
        return f"{self.module}.{self.name}({arguments})"


def _hidden_block(index: int, units: int, setup: dict) -> list[Call]:
    """Dense -> [BatchNormalization] -> [slope a] -> activation -> [Dropout] for layer i."""
    activation, slope = setup["activation"], setup["sigmoid_a"]
    dense = {"units": units, "kernel_initializer": setup["initializer"], "name": f"hidden_{index}"}
    if setup["regularization"] != "none" and setup["regularization_rate"] > 0:
        kind = setup["regularization"]
        dense["kernel_regularizer"] = Call("regularizers", kind.upper(),
                                           {kind: setup["regularization_rate"]})
    # sigmoid(a z) is the sigmoid of the rescaled net input, so a != 1 is a Rescaling layer
    split = setup["batch_norm"] or (activation == "sigmoid" and slope != 1.0)
    if not split:
        dense["activation"] = activation
        block = [Call("layers", "Dense", dense)]
    else:
        block = [Call("layers", "Dense", dense)]
        if setup["batch_norm"]:
            block.append(Call("layers", "BatchNormalization", {"name": f"batch_norm_{index}"}))
        if activation == "sigmoid" and slope != 1.0:
            block.append(Call("layers", "Rescaling", {"scale": slope, "name": f"slope_{index}"}))
        block.append(Call("layers", "Activation", {"activation": activation,
                                                   "name": f"activation_{index}"}))
    if setup["dropout"] > 0:
        block.append(Call("layers", "Dropout", {"rate": setup["dropout"],
                                                "name": f"dropout_{index}"}))
    return block


def layer_calls(setup: dict) -> list[Call]:
    """The layers of the setup's Sequential model, Input first."""
    stack = [Call("layers", "Input", {"shape": (len(setup["features"]),)})]
    if setup["mode"] == "perceptron":
        return stack + [Call("layers", "Dense", {"units": 1, "activation": "step",
                                                 "kernel_initializer": "zeros",
                                                 "name": "output"})]
    if setup["mode"] == "fixed":
        # the hand-set network: step units, or sigmoid(a z) to show the step as its limit
        if setup["activation"] == "sigmoid":
            fixed = dict(setup, batch_norm=False, dropout=0.0, regularization="none")
            return (stack + _hidden_block(1, 2, fixed)
                    + [Call("layers", "Dense", {"units": 1, "name": "output"}),
                       Call("layers", "Rescaling", {"scale": setup["sigmoid_a"],
                                                    "name": "output_slope"}),
                       Call("layers", "Activation", {"activation": "sigmoid",
                                                     "name": "output_activation"})])
        return stack + [Call("layers", "Dense", {"units": 2, "activation": "step",
                                                 "name": "hidden_1"}),
                        Call("layers", "Dense", {"units": 1, "activation": "step",
                                                 "name": "output"})]
    for index, units in enumerate(setup["hidden"], start=1):
        stack += _hidden_block(index, units, setup)
    output = {"units": 1, "kernel_initializer": setup["initializer"], "name": "output"}
    if setup["problem"] == "classification":
        output["activation"] = "sigmoid"
    return stack + [Call("layers", "Dense", output)]


def loss_name(setup: dict) -> str:
    """Binary cross-entropy for a sigmoid output; squared error for regression and for the
    step units (where it counts the mistakes)."""
    if setup["problem"] == "classification" and setup["mode"] == "backprop":
        return "binary_crossentropy"
    return "mse"


def optimizer_call(setup: dict, max_iter: int | None = None) -> Call:
    """The optimizer; the second-order ones take ``max_iter`` iterations per minimize call."""
    name, rate = setup["optimizer"], setup["learning_rate"]
    if name == "lbfgs":
        return Call("optimizers", "LBFGS", {"max_iter": max_iter or 1})
    if name == "newton":
        # damping keeps the step defined where the Hessian is singular (dead units, plateaus)
        return Call("optimizers", "Newton", {"max_iter": max_iter or 1, "damping": 1e-4})
    kwargs = {"learning_rate": rate}
    if name in ("momentum", "nesterov"):
        kwargs["momentum"] = 0.9
    if name == "nesterov":
        kwargs["nesterov"] = True
    classes = {"sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adagrad": "Adagrad",
               "rmsprop": "RMSprop", "adam": "Adam"}
    return Call("optimizers", classes[name], kwargs)


def build_model(setup: dict) -> models.Sequential:
    """The compiled model of a setup (call it under a seed for reproducible weights)."""
    model = models.Sequential([call.build() for call in layer_calls(setup)])
    model.compile(optimizer=optimizer_call(setup).build(), loss=loss_name(setup))
    model.build((None, len(setup["features"])))
    if setup["mode"] == "fixed":
        model.set_weights(XOR_WEIGHTS)
    return model


def block_ends(model: models.Sequential) -> list[int]:
    """Index into ``model.layers`` of each hidden layer's last non-dropout layer (where its
    neurons' outputs are read), then of the model's last layer."""
    names = [layer.name for layer in model.layers]
    starts = [i for i, name in enumerate(names) if name == "output" or name.startswith("hidden_")]
    ends = []
    for start in starts[1:]:
        end = start - 1
        while names[end].startswith("dropout_"):
            end -= 1
        ends.append(end)
    return ends + [len(names) - 1]
