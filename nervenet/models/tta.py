"""Test-time augmentation: average a model's predictions over transformed copies of the input.

A model trained with flips or crops has learned to answer the same on every such view of an
image; at test time, averaging its outputs over a few views (the image and its mirror, or the
four corner crops and the central one) cancels part of the error each single view makes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nervenet.data import augment
from nervenet.models.model import Model

#: the named transforms ``predict_tta`` accepts besides callables
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda images: images,
    "horizontal_flip": augment.flip_horizontal,
    "vertical_flip": augment.flip_vertical,
}


def five_crops(height: int, width: int) -> list[Callable[[np.ndarray], np.ndarray]]:
    """The four corner crops and the central crop of ``height`` x ``width`` (as transforms for
    ``predict_tta``; the model must take inputs of that size, e.g. one trained behind a
    ``RandomCrop(height, width)`` layer).

    Example:
        >>> views = [t(np.zeros((1, 5, 5, 1))) for t in five_crops(3, 3)]
        >>> [v.shape for v in views][:2]
        [(1, 3, 3, 1), (1, 3, 3, 1)]
    """

    def corner(top_side: bool, left_side: bool):
        def transform(images):
            images = np.asarray(images)
            top = 0 if top_side else images.shape[-3] - height
            left = 0 if left_side else images.shape[-2] - width
            return augment.crop(images, top, left, height, width)
        return transform

    return [corner(True, True), corner(True, False), corner(False, True), corner(False, False),
            lambda images: augment.center_crop(images, height, width)]


def predict_tta(model, x, transforms: Sequence = ("identity", "horizontal_flip"),
                batch_size: int | None = 32, weights=None) -> np.ndarray:
    """The mean of ``model.predict`` over transformed copies of ``x``:

        prediction(x) = sum_t w_t * model(t(x)) / sum_t w_t

    Args:
        model: anything with ``predict(x, batch_size=...)``.
        x: images of shape (N, H, W, C) (or whatever the transforms accept).
        transforms: names from ``TRANSFORMS`` (``"identity"``, ``"horizontal_flip"``,
            ``"vertical_flip"``) or callables mapping the input array to a transformed one
            (e.g. those of ``five_crops``) (default: the image and its mirror).
        batch_size: passed to ``predict`` (default 32).
        weights: one weight per transform (default ``None``: a plain mean).

    Returns:
        The averaged predictions, an ndarray shaped as ``model.predict``'s.

    Example:
        >>> class Sum:  # a flip-invariant "model"
        ...     def predict(self, x, batch_size=None):
        ...         return x.sum(axis=(1, 2))
        >>> x = np.arange(8.0).reshape(2, 2, 2, 1)
        >>> predict_tta(Sum(), x)
        array([[ 6.],
               [22.]])
    """
    if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence) \
            or not transforms:
        raise ValueError(f"predict_tta: transforms must be a non-empty list of names or "
                         f"callables, got {transforms!r}")
    functions = []
    for transform in transforms:
        if isinstance(transform, str):
            if transform not in TRANSFORMS:
                raise ValueError(f"predict_tta: unknown transform {transform!r}; valid names "
                                 f"are {sorted(TRANSFORMS)}, or pass a callable")
            transform = TRANSFORMS[transform]
        elif not callable(transform):
            raise TypeError(f"predict_tta: a transform must be a name or a callable, got "
                            f"{type(transform).__name__}")
        functions.append(transform)
    if weights is None:
        weights = np.ones(len(functions))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(functions),) or np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError(f"predict_tta: weights must be {len(functions)} non-negative numbers, "
                         f"not all 0, got {weights.tolist()}")
    x = np.asarray(x)
    total = None
    for transform, weight in zip(functions, weights / weights.sum()):
        quiet = {"verbose": 0} if isinstance(model, Model) else {}  # no progress bars
        prediction = np.asarray(model.predict(np.ascontiguousarray(transform(x)),
                                              batch_size=batch_size, **quiet))
        total = weight * prediction if total is None else total + weight * prediction
    return total.astype(prediction.dtype, copy=False)
