"""What the reliability tests share: the small trained model whose file they damage."""

import numpy as np

from nervenet import layers, models


def small_model():
    """A two-layer model, compiled (Adam: a file with optimizer slots) and trained one epoch,
    with a regularizer and a metric, so that its file holds every kind of member."""
    model = models.Sequential([layers.Input(shape=(3,)),
                               layers.Dense(4, activation="relu", kernel_regularizer="l2",
                                            name="dense"),
                               layers.Dense(2, name="dense_1")])
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0)
    return model
