"""Image augmentation layers (Keras's names and arguments), active only in training.

Each layer transforms a batch of (N, H, W, C) images (or one (H, W, C) image) when called with
``training=True`` and is the identity otherwise; ``RandomCrop``, which changes the size,
takes the central window at inference. The transforms are the array functions of
``nervenet.data.augment`` (one resampling routine, ``affine_transform``, serves every
geometric layer), drawn from the layer's own generator, seeded from ``seed`` or from
``nervenet.backend.make_rng()`` when the layer is created.

NOTE: augmentation is preprocessing: the layers produce new constant data, so no gradient
flows back through them. Put them first in a model, before any trainable layer.
"""

from __future__ import annotations

import math

import numpy as np

from nervenet import backend
from nervenet.autograd import Tensor
from nervenet.data import augment
from nervenet.layers.base import InputSpec, Layer, registry, unchanged_shape


class _Augmentation(Layer):
    """Shared plumbing: the generator, the training switch, the seed in the config."""

    compute_output_shape = unchanged_shape

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"{type(self).__name__}: seed must be a non-negative int or None, "
                             f"got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = backend.make_rng(self.seed)
        self.input_spec = InputSpec(min_ndim=3)

    def call(self, inputs, training: bool = False):
        if not training:
            return self.inference(inputs)
        # NOTE: the image transforms are NumPy code (data augmentation, as Keras runs it in the
        # input pipeline): a batch on a device goes through the host.
        out = np.asarray(self.transform(inputs.numpy()), dtype=inputs.dtype)
        return Tensor.from_array(backend.to_device(out, inputs.device))

    def inference(self, inputs: Tensor) -> Tensor:
        return inputs

    def transform(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class _Geometric(_Augmentation):
    """The resampling options shared by rotation, translation, zoom and shear."""

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.fill_mode = augment._choice(fill_mode, augment.FILL_MODES, "fill_mode")
        self.interpolation = augment._choice(interpolation, augment.INTERPOLATIONS,
                                             "interpolation")
        self.fill_value = float(fill_value)

    def _resample(self, images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        return augment.affine_transform(images, transforms, self.interpolation, self.fill_mode,
                                        self.fill_value)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


def _factor_config(factor):
    return list(factor) if isinstance(factor, (list, tuple)) else factor


def _sizes(images: np.ndarray) -> tuple[int, int, int]:
    """(N, H, W) of a batch, or (1, H, W) of a single image."""
    return (1,) + images.shape[:2] if images.ndim == 3 else images.shape[:3]


@registry.register("RandomFlip")
class RandomFlip(_Augmentation):
    """Flip each image left-right and/or top-bottom, each with probability 1/2.

    Args:
        mode: ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"`` (default, as
            Keras).
        seed: seed of the layer's generator (default ``None``).

    Example:
        >>> layer = RandomFlip("horizontal", seed=0)
        >>> x = np.arange(6.0).reshape(1, 1, 3, 2)
        >>> np.array_equal(layer(x).data, x)   # inference: the identity
        True
    """

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = augment._choice(mode, augment.FLIP_MODES, "mode")

    def transform(self, images):
        return augment.random_flip(images, self.mode, self._rng)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@registry.register("RandomRotation")
class RandomRotation(_Geometric):
    """Rotate each image about its center by ``factor * 2 pi`` radians, drawn uniformly.

    Args:
        factor: a fraction of a full turn: f for [-f, f] or a pair (lower, upper); positive
            angles turn counter-clockwise.
        fill_mode, interpolation, fill_value: as ``nervenet.data.augment.affine_transform``
            (defaults "reflect", "bilinear", 0.0).
        seed: seed of the layer's generator (default ``None``).
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = augment.factor_range(factor, "RandomRotation: factor", -1.0, 1.0)
        self._factor = _factor_config(factor)

    def transform(self, images):
        n, height, width = _sizes(images)
        angles = self._rng.uniform(*self.factor, n) * 2 * math.pi
        return self._resample(images, augment.rotation_transforms(angles, height, width))

    def get_config(self):
        return {**super().get_config(), "factor": self._factor}


@registry.register("RandomTranslation")
class RandomTranslation(_Geometric):
    """Shift each image by fractions of its height (down) and width (right) drawn uniformly.

    Args:
        height_factor, width_factor: f for [-f, f] or a pair (lower, upper), fractions of the
            image size.
        fill_mode, interpolation, fill_value, seed: as ``RandomRotation``.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = augment.factor_range(height_factor,
                                                  "RandomTranslation: height_factor",
                                                  -1.0, 1.0)
        self.width_factor = augment.factor_range(width_factor, "RandomTranslation: width_factor",
                                                 -1.0, 1.0)
        self._factors = (_factor_config(height_factor), _factor_config(width_factor))

    def transform(self, images):
        n, height, width = _sizes(images)
        dy = self._rng.uniform(*self.height_factor, n) * height
        dx = self._rng.uniform(*self.width_factor, n) * width
        return self._resample(images, augment.translation_transforms(dx, dy))

    def get_config(self):
        return {**super().get_config(), "height_factor": self._factors[0],
                "width_factor": self._factors[1]}


@registry.register("RandomZoom")
class RandomZoom(_Geometric):
    """Zoom each image about its center by ``1 + f``, f drawn uniformly.

    Args:
        height_factor: f for [-f, f] or a pair (lower, upper), each >= -1; as Keras, positive
            values zoom out (show more), negative ones zoom in.
        width_factor: the same for the width (default ``None``: the height's zoom, keeping the
            aspect ratio).
        fill_mode, interpolation, fill_value, seed: as ``RandomRotation``.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = augment.factor_range(height_factor, "RandomZoom: height_factor",
                                                  low=-1.0)
        self.width_factor = None if width_factor is None else augment.factor_range(
            width_factor, "RandomZoom: width_factor", low=-1.0)
        self._factors = (_factor_config(height_factor), _factor_config(width_factor))

    def transform(self, images):
        n, height, width = _sizes(images)
        zy = 1.0 + self._rng.uniform(*self.height_factor, n)
        zx = zy if self.width_factor is None else 1.0 + self._rng.uniform(*self.width_factor, n)
        return self._resample(images, augment.zoom_transforms(zx, zy, height, width))

    def get_config(self):
        return {**super().get_config(), "height_factor": self._factors[0],
                "width_factor": self._factors[1]}


@registry.register("RandomShear")
class RandomShear(_Geometric):
    """Shear each image about its center: ``x_in = x + sx (y - cy)``, ``y_in = y + sy (x - cx)``
    with sx, sy drawn uniformly.

    Args:
        x_factor, y_factor: f for [-f, f] or a pair (lower, upper) (default 0.0: none).
        fill_mode, interpolation, fill_value, seed: as ``RandomRotation``.
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear",
                 fill_mode="reflect", fill_value=0.0, seed=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.x_factor = augment.factor_range(x_factor, "RandomShear: x_factor")
        self.y_factor = augment.factor_range(y_factor, "RandomShear: y_factor")
        self._factors = (_factor_config(x_factor), _factor_config(y_factor))

    def transform(self, images):
        n, height, width = _sizes(images)
        sx = self._rng.uniform(*self.x_factor, n)
        sy = self._rng.uniform(*self.y_factor, n)
        return self._resample(images, augment.shear_transforms(sx, sy, height, width))

    def get_config(self):
        return {**super().get_config(), "x_factor": self._factors[0],
                "y_factor": self._factors[1]}


@registry.register("RandomCrop")
class RandomCrop(_Augmentation):
    """A ``height`` x ``width`` window: at a random position in training, the central one at
    inference (so the output size is the same in both modes).

    NOTE: Keras 3 resizes before the central crop at inference when the aspect ratios differ;
    here the central window is taken as it is.

    Args:
        height, width: the output size (at most the input's).
        seed: seed of the layer's generator (default ``None``).

    Shape:
        (N, H, W, C) -> (N, height, width, C).
    """

    def __init__(self, height: int, width: int, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RandomCrop: {name} must be a positive int, got {value!r}")
        self.height, self.width = int(height), int(width)

    def inference(self, inputs):
        if inputs.shape[-3:-1] == (self.height, self.width):
            return inputs
        cropped = augment.center_crop(inputs.numpy(), self.height, self.width)  # on the host
        return Tensor.from_array(backend.to_device(cropped, inputs.device))

    def transform(self, images):
        return augment.random_crop(images, self.height, self.width, self._rng)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-3]) + (self.height, self.width, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


@registry.register("RandomContrast")
class RandomContrast(_Augmentation):
    """Scale each image's deviation from its mean (per channel) by c in [1 - f, 1 + f]:
    ``y = (x - mean) * c + mean``, clipped to ``value_range``.

    Args:
        factor: f (in [0, 1]) or a pair (lower, upper) giving [1 - lower, 1 + upper].
        value_range: the range of pixel values (default (0, 255)).
        seed: seed of the layer's generator (default ``None``).
    """

    def __init__(self, factor, value_range=(0, 255), seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        pair = (factor, factor) if isinstance(factor, (int, float)) else factor
        self.factor = augment.factor_range(pair, "RandomContrast: factor", low=0.0)
        self.value_range = augment._check_value_range(value_range)
        self._factor = _factor_config(factor)

    def transform(self, images):
        return augment.random_contrast(images, self.factor, self.value_range, self._rng)

    def get_config(self):
        return {**super().get_config(), "factor": self._factor,
                "value_range": list(self.value_range)}


@registry.register("RandomBrightness")
class RandomBrightness(_Augmentation):
    """Add to each image a delta of up to ``factor`` times the width of ``value_range``,
    clipped to ``value_range``.

    Args:
        factor: f (in [0, 1]) for [-f, f], or a pair (lower, upper) in [-1, 1].
        value_range: the range of pixel values (default (0, 255)).
        seed: seed of the layer's generator (default ``None``).
    """

    def __init__(self, factor, value_range=(0, 255), seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = augment.factor_range(factor, "RandomBrightness: factor", -1.0, 1.0)
        if self.factor[1] > 1.0:
            raise ValueError(f"RandomBrightness: factor must lie in [-1, 1], got {factor!r}")
        self.value_range = augment._check_value_range(value_range)
        self._factor = _factor_config(factor)

    def transform(self, images):
        return augment.random_brightness(images, self.factor, self.value_range, self._rng)

    def get_config(self):
        return {**super().get_config(), "factor": self._factor,
                "value_range": list(self.value_range)}


@registry.register("RandomPCAColor")
class RandomPCAColor(_Augmentation):
    """AlexNet's PCA color augmentation: add ``P (alpha * lambda)`` to every pixel of an image,
    with the eigenvectors P and eigenvalues lambda of the training set's color covariance
    (``adapt(images)`` computes them) and alpha ~ N(0, stddev^2) per image and component.

    Args:
        stddev: the standard deviation of alpha (default 0.1, as Krizhevsky et al.).
        eigenvalues, eigenvectors: known statistics (default ``None``: call ``adapt``).
        value_range: clip to this range (default ``None``: no clipping).
        seed: seed of the layer's generator (default ``None``).
    """

    def __init__(self, stddev: float = 0.1, eigenvalues=None, eigenvectors=None,
                 value_range=None, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or stddev < 0:
            raise ValueError(f"RandomPCAColor: stddev must be a number >= 0, got {stddev!r}")
        if (eigenvalues is None) != (eigenvectors is None):
            raise ValueError("RandomPCAColor: give both eigenvalues and eigenvectors, or neither")
        self.stddev = float(stddev)
        self.eigenvalues = None if eigenvalues is None else np.asarray(eigenvalues, np.float64)
        self.eigenvectors = None if eigenvectors is None else np.asarray(eigenvectors,
                                                                         np.float64)
        self.value_range = None if value_range is None else augment._check_value_range(
            value_range)

    def adapt(self, images) -> None:
        """Compute the color covariance's eigenvalues and eigenvectors from ``images``."""
        self.eigenvalues, self.eigenvectors = augment.pca_color_basis(images)

    def transform(self, images):
        if self.eigenvalues is None:
            raise ValueError(f"RandomPCAColor layer {self.name!r}: call adapt(images) or pass "
                             "eigenvalues and eigenvectors before training")
        return augment.random_pca_color(images, self.eigenvalues, self.eigenvectors,
                                        self.stddev, self._rng, self.value_range)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev,
                "eigenvalues": None if self.eigenvalues is None else self.eigenvalues.tolist(),
                "eigenvectors": None if self.eigenvectors is None else
                self.eigenvectors.tolist(),
                "value_range": None if self.value_range is None else list(self.value_range)}
