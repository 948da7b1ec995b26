"""The exported Python script: the playground's run written as a plain nervenet program.

The script generates the same points (same seed), builds the same network with the same
initial weights (``set_random_seed`` before building, as the playground does), trains it for
the same number of epochs with ``Model.fit`` and prints the test loss. The order of the
mini-batches differs from the live run, so the test loss agrees within the noise of training.
"""

from __future__ import annotations

from nervenet.playground.config import SECOND_ORDER
from nervenet.playground.network import layer_calls, loss_name, optimizer_call

_TEMPLATE = '''"""{title}

Written by the nervenet playground. Run: python {filename}
"""

import numpy as np

import nervenet
from nervenet import layers, models, optimizers, regularizers
from nervenet.models.perceptron import perceptron_rule
from nervenet.playground import datasets

SETUP = {setup!r}
EPOCHS = {epochs}

x, y = datasets.generate(SETUP["dataset"], SETUP["samples"], SETUP["noise"], SETUP["seed"])
train, test = datasets.split(SETUP["samples"], SETUP["train_fraction"], SETUP["seed"])
inputs, y = datasets.features(x, SETUP["features"]), y[:, None]
x_train, y_train, x_test, y_test = inputs[train], y[train], inputs[test], y[test]

nervenet.utils.set_random_seed(SETUP["seed"])  # the playground's initial weights
model = models.Sequential([
{layers}
])
model.compile(optimizer={optimizer}, loss={loss!r})
{train}
test_loss = model.evaluate(x_test, y_test, batch_size=len(x_test), verbose=0)
print(f"test loss: {{test_loss:.6f}}")
'''

_FIT = ("model.fit(x_train, y_train, epochs={epochs}, batch_size={batch}, shuffle=True, "
        "verbose=0)")
_PERCEPTRON = ("# a step unit has no useful gradient: Rosenblatt's rule trains it\n"
               "if EPOCHS:\n"
               "    perceptron_rule(model.get_layer(\"output\"), x_train, y_train,\n"
               "                    learning_rate=SETUP[\"learning_rate\"], epochs=EPOCHS, "
               "seed=SETUP[\"seed\"])")


def _train_code(setup: dict, epochs: int) -> str:
    if setup["mode"] == "fixed":
        return "# the notes' hand-set XOR weights: nothing is trained"
    if setup["mode"] == "perceptron":
        return _PERCEPTRON
    if setup["optimizer"] in SECOND_ORDER:
        # one minimize call of EPOCHS iterations on the whole training set
        return "if EPOCHS:\n    " + _FIT.format(epochs=1, batch="len(x_train)")
    return _FIT.format(epochs="EPOCHS", batch=setup["batch_size"])


def script(setup: dict, epochs: int, edited_weights: bool = False) -> str:
    """The Python program that rebuilds and retrains the setup's network for ``epochs``."""
    calls = layer_calls(setup)
    hidden = "-".join(str(n) for n in [len(setup["features"]), *setup["hidden"], 1])
    title = (f"{setup['dataset']} data, a {hidden} network ({setup['mode']}, "
             f"{setup['activation']}), {epochs} epochs of {setup['optimizer']}.")
    if edited_weights:
        title += ("\n\nThe playground's weights were set by hand (the notes' XOR network or "
                  "clicked links):\nthe model file holds them; this script starts from the "
                  "initializer's.")
    if setup["mode"] == "fixed":
        title += "\nThe fixed XOR weights: model.set_weights(network.XOR_WEIGHTS)."
    optimizer = optimizer_call(setup, max_iter=max(epochs, 1)).code()
    lines = "\n".join(f"    {call.code()}," for call in calls)
    text = _TEMPLATE.format(title=title, filename="playground_run.py", setup=setup,
                            epochs=epochs, layers=lines, optimizer=optimizer,
                            loss=loss_name(setup), train=_train_code(setup, epochs))
    if setup["mode"] == "fixed":
        text = text.replace("from nervenet.playground import datasets",
                            "from nervenet.playground import datasets, network")
        text = text.replace("model.compile(", "model.set_weights(network.XOR_WEIGHTS)\n"
                            "model.compile(", 1)
    return text
