"""Data augmentation on arrays of images (N, H, W, C), channels last, as NumPy functions.

The augmentation layers of ``nervenet.layers`` (RandomFlip, RandomRotation, ...) call these
functions with their own generator in training; use them directly to augment a dataset once,
or for test-time augmentation (``nervenet.models.predict_tta``).

Every geometric transform goes through one resampling routine, ``affine_transform``. A
transform is given as Keras gives it, 8 numbers ``[a0, a1, a2, b0, b1, b2, c0, c1]`` that map
each *output* pixel (x, y) (column, row) to the *input* point it samples::

    x_in = (a0 x + a1 y + a2) / k,   y_in = (b0 x + b1 y + b2) / k,   k = c0 x + c1 y + 1

(inverse mapping: every output pixel gets exactly one value). The input is read between
pixels by bilinear interpolation (or the nearest pixel), and points outside the image follow
``fill_mode``, for a row ``a b c d``::

    "reflect"   d c b a | a b c d | d c b a    (the edge pixel repeated)
    "mirror"    d c b | a b c d | c b a        (the edge pixel not repeated)
    "wrap"      a b c d | a b c d | a b c d
    "nearest"   a a a a | a b c d | d d d d
    "constant"  k k k k | a b c d | k k k k    (k = fill_value)

These are scipy.ndimage's "reflect", "mirror", "grid-wrap", "nearest" and "grid-constant"
(the tests compare them). Random factors follow Keras: a number f means the range [-f, f], a
pair (lower, upper) the range itself.
"""

from __future__ import annotations

import math

import numpy as np

from nervenet import backend
from nervenet.checks import check_int

FILL_MODES = ("reflect", "mirror", "wrap", "nearest", "constant")
INTERPOLATIONS = ("bilinear", "nearest")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


# ------------------------------------------------------------------ argument checks
def _images(images, function: str) -> tuple[np.ndarray, bool]:
    """(N, H, W, C) images, and whether a single (H, W, C) image was given."""
    images = np.asarray(getattr(images, "data", images))
    if images.ndim not in (3, 4):
        raise ValueError(f"{function}: images must have shape (N, H, W, C) or (H, W, C), got "
                         f"{images.shape}")
    if images.ndim == 3:
        return images[None], True
    return images, False


def _restore(images: np.ndarray, single: bool) -> np.ndarray:
    return images[0] if single else images


def factor_range(factor, name: str, low: float = -math.inf, high: float = math.inf
                 ) -> tuple[float, float]:
    """Keras's factor convention: f -> (-f, f), (lower, upper) unchanged; checked to be a
    finite range inside [low, high]."""
    if isinstance(factor, (int, float, np.number)) and not isinstance(factor, bool):
        lower, upper = -abs(float(factor)), abs(float(factor))
    elif isinstance(factor, (list, tuple)) and len(factor) == 2 and all(
            isinstance(f, (int, float, np.number)) and not isinstance(f, bool) for f in factor):
        lower, upper = float(factor[0]), float(factor[1])
    else:
        raise ValueError(f"{name} must be a number or a pair (lower, upper), got {factor!r}")
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower > upper or lower < low or (
            upper > high):
        raise ValueError(f"{name} must give a finite range lower <= upper inside [{low}, "
                         f"{high}], got {factor!r}")
    return lower, upper


def _choice(value, allowed: tuple, name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


# --------------------------------------------------------------- the resampling routine
def _fold_indices(indices: np.ndarray, size: int, fill_mode: str) -> np.ndarray:
    """Map integer pixel indices (any values) into [0, size) following ``fill_mode``; for
    "constant" the out-of-range indices are left as they are (the caller masks them)."""
    if fill_mode == "reflect":
        period = indices % (2 * size)
        return np.where(period >= size, 2 * size - 1 - period, period)
    if fill_mode == "mirror":
        if size == 1:
            return np.zeros_like(indices)
        period = indices % (2 * size - 2)
        return np.where(period >= size, 2 * size - 2 - period, period)
    if fill_mode == "wrap":
        return indices % size
    if fill_mode == "nearest":
        return np.clip(indices, 0, size - 1)
    return indices


def affine_transform(images, transforms, interpolation: str = "bilinear",
                     fill_mode: str = "reflect", fill_value: float = 0.0) -> np.ndarray:
    """Resample images through projective transforms (the module docstring's convention).

    Args:
        images: (N, H, W, C) or (H, W, C).
        transforms: (N, 8) (one per image) or (8,) (the same for all), mapping output pixels
            to input points.
        interpolation: ``"bilinear"`` or ``"nearest"`` (default ``"bilinear"``).
        fill_mode: ``"reflect"``, ``"mirror"``, ``"wrap"``, ``"nearest"`` or ``"constant"``
            (default ``"reflect"``, as Keras).
        fill_value: the value outside the image for ``"constant"`` (default 0.0).

    Returns:
        The transformed images, same shape; floating input keeps its dtype, other input
        becomes float32.

    Example:
        >>> image = np.arange(4.0).reshape(1, 2, 2, 1)
        >>> shift_right = [1, 0, -1, 0, 1, 0, 0, 0]   # x_in = x - 1
        >>> affine_transform(image, shift_right, fill_mode="constant")[0, ..., 0]
        array([[0., 0.],
               [0., 2.]])
    """
    images, single = _images(images, "affine_transform")
    _choice(interpolation, INTERPOLATIONS, "interpolation")
    _choice(fill_mode, FILL_MODES, "fill_mode")
    n, height, width, channels = images.shape
    transforms = np.asarray(transforms, dtype=np.float64)
    if transforms.shape == (8,):
        transforms = np.broadcast_to(transforms, (n, 8))
    if transforms.shape != (n, 8):
        raise ValueError(f"affine_transform: transforms must have shape (8,) or ({n}, 8), got "
                         f"{transforms.shape}")
    dtype = images.dtype if images.dtype.kind == "f" else np.dtype(np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = cols.ravel(), rows.ravel()                              # (H*W,)
    a = transforms[:, :, None]                                     # (N, 8, 1)
    k = a[:, 6] * x + a[:, 7] * y + 1.0
    x_in = (a[:, 0] * x + a[:, 1] * y + a[:, 2]) / k               # (N, H*W)
    y_in = (a[:, 3] * x + a[:, 4] * y + a[:, 5]) / k
    flat = images.reshape(n, height * width, channels)

    def sample(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return _sample(flat, yi, xi, (height, width), fill_mode, fill_value)

    if interpolation == "nearest":
        out = sample(np.floor(y_in + 0.5).astype(np.int64), np.floor(x_in + 0.5).astype(np.int64))
    else:
        x0, y0 = np.floor(x_in), np.floor(y_in)
        wx, wy = (x_in - x0)[..., None], (y_in - y0)[..., None]
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        out = ((1 - wy) * ((1 - wx) * sample(y0, x0) + wx * sample(y0, x0 + 1))
               + wy * ((1 - wx) * sample(y0 + 1, x0) + wx * sample(y0 + 1, x0 + 1)))
    return _restore(out.reshape(n, height, width, channels).astype(dtype), single)


def _sample(flat: np.ndarray, yi: np.ndarray, xi: np.ndarray, size: tuple[int, int],
            fill_mode: str, fill_value: float) -> np.ndarray:
    """The pixels of ``flat`` (N, H*W, C) at integer (yi, xi), folded by fill_mode, as
    float64 (N, H*W, C)."""
    height, width = size
    inside = None
    if fill_mode == "constant":
        inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
        yi, xi = np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1)
    else:
        yi, xi = _fold_indices(yi, height, fill_mode), _fold_indices(xi, width, fill_mode)
    values = np.take_along_axis(flat, (yi * width + xi)[..., None], axis=1).astype(np.float64)
    if inside is not None:
        values = np.where(inside[..., None], values, fill_value)
    return values


# ------------------------------------------------------------- transform matrices
def rotation_transforms(angles, height: int, width: int) -> np.ndarray:
    """(N, 8) transforms rotating by ``angles`` (radians, counter-clockwise on screen) about
    the image center: the input point is ``c + R(angle) (p - c)``."""
    angles = np.asarray(angles, dtype=np.float64)
    cos, sin = np.cos(angles), np.sin(angles)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zeros = np.zeros_like(angles)
    return np.stack([cos, -sin, cx - cos * cx + sin * cy,
                     sin, cos, cy - sin * cx - cos * cy, zeros, zeros], axis=-1)


def translation_transforms(dx, dy) -> np.ndarray:
    """(N, 8) transforms moving the content by (dx, dy) pixels (right and down)."""
    dx, dy = np.broadcast_arrays(np.asarray(dx, np.float64), np.asarray(dy, np.float64))
    ones, zeros = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=-1)


def zoom_transforms(zx, zy, height: int, width: int) -> np.ndarray:
    """(N, 8) transforms sampling ``z`` times the distance from the center: z > 1 shows more
    of the image (zoom out), z < 1 magnifies (zoom in)."""
    zx, zy = np.broadcast_arrays(np.asarray(zx, np.float64), np.asarray(zy, np.float64))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zeros = np.zeros_like(zx)
    return np.stack([zx, zeros, cx * (1 - zx), zeros, zy, cy * (1 - zy), zeros, zeros], axis=-1)


def shear_transforms(sx, sy, height: int, width: int) -> np.ndarray:
    """(N, 8) transforms shearing about the center: ``x_in = x + sx (y - cy)``,
    ``y_in = y + sy (x - cx)``."""
    sx, sy = np.broadcast_arrays(np.asarray(sx, np.float64), np.asarray(sy, np.float64))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    ones, zeros = np.ones_like(sx), np.zeros_like(sx)
    return np.stack([ones, sx, -sx * cy, sy, ones, -sy * cx, zeros, zeros], axis=-1)


# -------------------------------------------------------------------- transforms
def flip_horizontal(images) -> np.ndarray:
    """Mirror left-right (the width axis)."""
    images, single = _images(images, "flip_horizontal")
    return _restore(images[:, :, ::-1], single)


def flip_vertical(images) -> np.ndarray:
    """Mirror top-bottom (the height axis)."""
    images, single = _images(images, "flip_vertical")
    return _restore(images[:, ::-1], single)


def random_flip(images, mode: str = "horizontal_and_vertical", rng=None) -> np.ndarray:
    """Flip each image with probability 1/2 along each axis that ``mode`` names
    (``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``, Keras's default)."""
    images, single = _images(images, "random_flip")
    _choice(mode, FLIP_MODES, "mode")
    rng = backend.make_rng(rng)
    out = images.copy()
    if mode in ("horizontal", "horizontal_and_vertical"):
        chosen = rng.random(len(out)) < 0.5
        out[chosen] = out[chosen][:, :, ::-1]
    if mode in ("vertical", "horizontal_and_vertical"):
        chosen = rng.random(len(out)) < 0.5
        out[chosen] = out[chosen][:, ::-1]
    return _restore(out, single)


def random_rotation(images, factor, rng=None, fill_mode="reflect", interpolation="bilinear",
                    fill_value=0.0) -> np.ndarray:
    """Rotate each image by an angle drawn uniformly from ``factor * 2 pi`` (Keras: 0.1 means
    up to 36 degrees either way; positive is counter-clockwise)."""
    images, single = _images(images, "random_rotation")
    lower, upper = factor_range(factor, "factor")
    angles = backend.make_rng(rng).uniform(lower, upper, len(images)) * 2 * math.pi
    transforms = rotation_transforms(angles, *images.shape[1:3])
    return _restore(affine_transform(images, transforms, interpolation, fill_mode, fill_value),
                    single)


def random_translation(images, height_factor, width_factor, rng=None, fill_mode="reflect",
                       interpolation="bilinear", fill_value=0.0) -> np.ndarray:
    """Shift each image by fractions of its size drawn from ``height_factor`` (down) and
    ``width_factor`` (right)."""
    images, single = _images(images, "random_translation")
    (h_low, h_high), (w_low, w_high) = (factor_range(height_factor, "height_factor"),
                                        factor_range(width_factor, "width_factor"))
    rng = backend.make_rng(rng)
    n, height, width = images.shape[:3]
    dy = rng.uniform(h_low, h_high, n) * height
    dx = rng.uniform(w_low, w_high, n) * width
    return _restore(affine_transform(images, translation_transforms(dx, dy), interpolation,
                                     fill_mode, fill_value), single)


def random_zoom(images, height_factor, width_factor=None, rng=None, fill_mode="reflect",
                interpolation="bilinear", fill_value=0.0) -> np.ndarray:
    """Zoom each image by ``1 + f``, f drawn from ``height_factor`` (vertical) and
    ``width_factor`` (horizontal; default ``None``: the vertical zoom, keeping the aspect
    ratio). As Keras: a positive f zooms out, a negative one zooms in; f >= -1."""
    images, single = _images(images, "random_zoom")
    h_low, h_high = factor_range(height_factor, "height_factor", low=-1.0)
    rng = backend.make_rng(rng)
    n, height, width = images.shape[:3]
    zy = 1.0 + rng.uniform(h_low, h_high, n)
    if width_factor is None:
        zx = zy
    else:
        w_low, w_high = factor_range(width_factor, "width_factor", low=-1.0)
        zx = 1.0 + rng.uniform(w_low, w_high, n)
    return _restore(affine_transform(images, zoom_transforms(zx, zy, height, width),
                                     interpolation, fill_mode, fill_value), single)


def random_shear(images, x_factor=0.0, y_factor=0.0, rng=None, fill_mode="reflect",
                 interpolation="bilinear", fill_value=0.0) -> np.ndarray:
    """Shear each image by factors drawn from ``x_factor`` (rows slide sideways) and
    ``y_factor`` (columns slide up and down)."""
    images, single = _images(images, "random_shear")
    (x_low, x_high), (y_low, y_high) = (factor_range(x_factor, "x_factor"),
                                        factor_range(y_factor, "y_factor"))
    rng = backend.make_rng(rng)
    n, height, width = images.shape[:3]
    transforms = shear_transforms(rng.uniform(x_low, x_high, n), rng.uniform(y_low, y_high, n),
                                  height, width)
    return _restore(affine_transform(images, transforms, interpolation, fill_mode, fill_value),
                    single)


def _check_crop(images: np.ndarray, height, width, function: str) -> tuple[int, int]:
    height, width = check_int(function, "height", height, 1), check_int(function, "width", width, 1)
    if height > images.shape[1] or width > images.shape[2]:
        raise ValueError(f"{function}: the crop ({height}, {width}) is larger than the images "
                         f"({images.shape[1]}, {images.shape[2]})")
    return height, width


def crop(images, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The window of ``height`` x ``width`` pixels whose top-left corner is (top, left)."""
    images, single = _images(images, "crop")
    height, width = _check_crop(images, height, width, "crop")
    if not (0 <= top <= images.shape[1] - height and 0 <= left <= images.shape[2] - width):
        raise ValueError(f"crop: a ({height}, {width}) window at ({top}, {left}) does not fit "
                         f"images of size {images.shape[1:3]}")
    return _restore(images[:, top:top + height, left:left + width], single)


def center_crop(images, height: int, width: int) -> np.ndarray:
    """The central ``height`` x ``width`` window (rounding the offsets down)."""
    images, single = _images(images, "center_crop")
    height, width = _check_crop(images, height, width, "center_crop")
    top, left = (images.shape[1] - height) // 2, (images.shape[2] - width) // 2
    return _restore(images[:, top:top + height, left:left + width], single)


def random_crop(images, height: int, width: int, rng=None) -> np.ndarray:
    """A ``height`` x ``width`` window at a uniformly drawn position, one per image."""
    images, single = _images(images, "random_crop")
    height, width = _check_crop(images, height, width, "random_crop")
    rng = backend.make_rng(rng)
    n = len(images)
    tops = rng.integers(0, images.shape[1] - height + 1, n)
    lefts = rng.integers(0, images.shape[2] - width + 1, n)
    rows = tops[:, None] + np.arange(height)          # (N, height)
    cols = lefts[:, None] + np.arange(width)          # (N, width)
    out = images[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return _restore(out, single)


def _check_value_range(value_range) -> tuple[float, float]:
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2 \
            or not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be a pair (low, high) with low < high, got "
                         f"{value_range!r}")
    return float(value_range[0]), float(value_range[1])


def _float(images: np.ndarray) -> np.ndarray:
    return images.astype(images.dtype if images.dtype.kind == "f" else np.float32)


def random_contrast(images, factor, value_range=(0, 255), rng=None) -> np.ndarray:
    """Scale each image's deviation from its per-channel mean by c drawn from
    [1 - lower, 1 + upper] (Keras: ``factor`` f means [1 - f, 1 + f]), clipped to
    ``value_range``: ``y = (x - mean) * c + mean``."""
    images, single = _images(images, "random_contrast")
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        factor = (factor, factor)
    lower, upper = factor_range(factor, "factor", low=0.0)
    low, high = _check_value_range(value_range)
    images = _float(images)
    c = backend.make_rng(rng).uniform(1.0 - lower, 1.0 + upper, len(images))
    c = c.reshape(-1, 1, 1, 1).astype(images.dtype)
    mean = images.mean(axis=(1, 2), keepdims=True)
    return _restore(np.clip((images - mean) * c + mean, low, high), single)


def random_brightness(images, factor, value_range=(0, 255), rng=None) -> np.ndarray:
    """Add to each image a delta drawn from ``factor`` times the width of ``value_range``
    (Keras: 0.2 means up to 20% of the range either way), clipped to ``value_range``."""
    images, single = _images(images, "random_brightness")
    lower, upper = factor_range(factor, "factor", low=-1.0)
    if upper > 1.0:
        raise ValueError(f"factor must lie in [-1, 1], got {factor!r}")
    low, high = _check_value_range(value_range)
    images = _float(images)
    delta = backend.make_rng(rng).uniform(lower, upper, len(images)) * (high - low)
    return _restore(np.clip(images + delta.reshape(-1, 1, 1, 1).astype(images.dtype), low,
                            high), single)


def pca_color_basis(images) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues and eigenvectors (as columns) of the covariance of the pixels' colors
    over a dataset, for ``random_pca_color`` (Krizhevsky et al., 2012)."""
    images, _ = _images(images, "pca_color_basis")
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels, rowvar=False).reshape(
        images.shape[-1], images.shape[-1]))
    return np.maximum(eigenvalues, 0.0), eigenvectors


def random_pca_color(images, eigenvalues, eigenvectors, stddev: float = 0.1, rng=None,
                     value_range=None) -> np.ndarray:
    """AlexNet's "fancy PCA" color augmentation: add to every pixel of an image the same
    color shift ``P (alpha * lambda)``, P the eigenvectors (columns) and lambda the
    eigenvalues of the dataset's color covariance, alpha ~ N(0, stddev^2) drawn per image and
    component. Clipped to ``value_range`` when given (default ``None``)."""
    images, single = _images(images, "random_pca_color")
    channels = images.shape[-1]
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
    if eigenvalues.shape != (channels,) or eigenvectors.shape != (channels, channels):
        raise ValueError(f"random_pca_color: expected eigenvalues of shape ({channels},) and "
                         f"eigenvectors of shape ({channels}, {channels}) for images with "
                         f"{channels} channels, got {eigenvalues.shape} and "
                         f"{eigenvectors.shape}")
    images = _float(images)
    alpha = backend.make_rng(rng).normal(0.0, stddev, (len(images), channels))
    shift = (alpha * eigenvalues) @ eigenvectors.T                 # (N, C)
    out = images + shift[:, None, None, :].astype(images.dtype)
    if value_range is not None:
        out = np.clip(out, *_check_value_range(value_range))
    return _restore(out, single)
