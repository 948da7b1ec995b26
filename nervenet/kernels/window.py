"""Sliding-window kernels: the geometry of a convolution or pooling call, im2col and the three
products of a convolution, and the pooling kernels.

Every loop runs over the kh*kw offsets of the window, never over pixels: for one offset
(p, q), the cells that all output positions read form ONE strided slice of the padded input
(``ConvGeometry.window_slices``), so each step is one vectorized NumPy operation on arrays of
the output's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nervenet.backend import device_of, get_array_module, to_device


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow "same" padding of one axis: the output has ceil(size / stride) cells.

    total = max((ceil(size / stride) - 1) * stride + window - size, 0), split as
    before = total // 2 and after = total - before (the extra cell goes after, as TF).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class ConvGeometry:
    """Everything the sliding-window ops need to know about one call.

    Attributes:
        input_shape: (N, H, W, C) of the unpadded input.
        window: (kh, kw), the kernel or pooling window.
        stride: (sh, sw).
        pads: (top, bottom, left, right) cells added around the input.
        output_hw: (Ho, Wo).
        dilation: (dh, dw): offset (p, q) of the window reads the cell (p*dh, q*dw) from
            its corner (1, 1: adjacent cells). A dilated window spans
            ``span = (k - 1) * d + 1`` cells per axis (convolutions only; pooling has none).
    """

    input_shape: tuple[int, int, int, int]
    window: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    output_hw: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)

    @classmethod
    def build(cls, input_shape, window, stride, padding, function: str,
              dilation=(1, 1)) -> ConvGeometry:
        """Resolve ``padding`` ("valid", "same" or an int) and check that a window (its
        dilated span) fits."""
        _, h, w, _ = input_shape
        (sh, sw), (dh, dw) = stride, dilation
        kh, kw = (window[0] - 1) * dh + 1, (window[1] - 1) * dw + 1  # the spans
        if isinstance(padding, str) and padding.lower() == "valid":
            pads = (0, 0, 0, 0)
        elif isinstance(padding, str) and padding.lower() == "same":
            pads = same_padding(h, kh, sh) + same_padding(w, kw, sw)
        elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) \
                and padding >= 0:
            pads = (int(padding),) * 4
        else:
            raise ValueError(f"{function}: padding must be 'valid', 'same' or a non-negative "
                             f"int, got {padding!r}")
        hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
        if kh > hp or kw > wp:
            spans = "" if (dh, dw) == (1, 1) else f" spanning ({kh}, {kw}) with dilation " \
                                                  f"({dh}, {dw}),"
            raise ValueError(
                f"{function}: the window {tuple(window)}{spans} is larger than the padded input "
                f"({hp}, {wp}) (input shape {tuple(input_shape)}, padding {padding!r})")
        output_hw = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
        return cls(tuple(input_shape), tuple(window), (sh, sw), pads, output_hw, (dh, dw))

    @property
    def padded_shape(self) -> tuple[int, int, int, int]:
        n, h, w, c = self.input_shape
        top, bottom, left, right = self.pads
        return (n, h + top + bottom, w + left + right, c)

    @property
    def disjoint(self) -> bool:
        """Whether the windows do not overlap (stride >= window): each input cell is read by
        one window at most, so scatters may assign instead of add."""
        return all(s >= k for s, k in zip(self.stride, self.window))

    @property
    def has_padding(self) -> bool:
        return any(self.pads)

    def window_slices(self):
        """Yield ((p, q), index): for each offset of the window, in row-major order, the index
        of the strided slice of the padded input that this offset reads for every output
        cell (rows p*dh, p*dh + sh, ...). Loops run over the kh*kw offsets, never over pixels."""
        (kh, kw), (sh, sw), (ho, wo) = self.window, self.stride, self.output_hw
        dh, dw = self.dilation
        for p in range(kh):
            for q in range(kw):
                yield (p, q), (slice(None), slice(p * dh, p * dh + sh * (ho - 1) + 1, sh),
                               slice(q * dw, q * dw + sw * (wo - 1) + 1, sw))

    def pad(self, x: np.ndarray, value: float = 0.0) -> np.ndarray:
        """Return x surrounded by the padding (x itself when there is none)."""
        if not self.has_padding:
            return x
        padded = get_array_module(x).full(self.padded_shape[:3] + x.shape[3:], value,
                                          dtype=x.dtype)
        padded[self.interior] = x
        return padded

    @property
    def interior(self) -> tuple[slice, slice, slice]:
        """Index of the unpadded input inside the padded one."""
        _, h, w, _ = self.input_shape
        top, _, left, _ = self.pads
        return (slice(None), slice(top, top + h), slice(left, left + w))

    def crop(self, padded: np.ndarray) -> np.ndarray:
        """The inverse of ``pad``: the unpadded part of ``padded``."""
        return padded[self.interior] if self.has_padding else padded


# ----------------------------------------------------------------------- convolution


def im2col(padded: np.ndarray, geometry: ConvGeometry, bias_column: bool = False) -> np.ndarray:
    """Copy every receptive field of the padded input into one row: (N*Ho*Wo, kh*kw*C).

    With ``bias_column`` a last column of ones is appended, so that the bias becomes the last
    row of the kernel matrix: ``[cols 1] @ [W; b] = cols @ W + b`` in one product (faster than
    adding b to the (N*Ho*Wo, O) result afterwards, a pass over short rows).

    Two ways of making the same copy, the faster one for the channel count (see the
    benchmark): one copy from a strided view of all windows, or one slice copy per kernel
    offset, several times faster for a single input channel (the view's inner loops would
    have length 1).
    """
    n, _, _, c = padded.shape
    (kh, kw), (sh, sw), (ho, wo) = geometry.window, geometry.stride, geometry.output_hw
    dh, dw = geometry.dilation
    k = kh * kw * c
    xp = get_array_module(padded)
    cols = xp.empty((n, ho, wo, k + bias_column), dtype=padded.dtype)
    fields = cols[..., :k].reshape(n, ho, wo, kh, kw, c)  # a view into cols
    if c == 1:
        for (p, q), index in geometry.window_slices():
            fields[:, :, :, p, q, :] = padded[index]
    else:
        s_n, s_h, s_w, s_c = padded.strides
        windows = xp.lib.stride_tricks.as_strided(  # a view, only read
            padded, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))
        xp.copyto(fields, windows)
    if bias_column:
        cols[..., k] = 1
    return cols.reshape(n * ho * wo, k + bias_column)


def conv_forward(x: np.ndarray, w: np.ndarray, geometry: ConvGeometry, b=None):
    """y = im2col(pad(x)) @ w.reshape(kh*kw*C, O) (+ b, as a column of ones times a row b),
    and the im2col matrix it used (with the ones column when there is a bias)."""
    kh, kw, c, o = w.shape
    n = x.shape[0]
    ho, wo = geometry.output_hw
    cols = im2col(geometry.pad(x), geometry, bias_column=b is not None)
    kernel = w.reshape(kh * kw * c, o)
    if b is not None:
        kernel = get_array_module(kernel).concatenate([kernel, b.reshape(1, o)])
    return (cols @ kernel).reshape(n, ho, wo, o), cols


def conv_input_grad(gy: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dx = the adjoint of the convolution applied to gy: each kernel offset (p, q) adds
    gy @ w[p, q]^T into the slice of the padded input it read; the padding is cropped."""
    n, ho, wo, o = gy.shape
    c = w.shape[2]
    g2d = gy.reshape(n * ho * wo, o)
    xp = get_array_module(gy, w)
    gxp = xp.zeros(geometry.padded_shape, dtype=np.result_type(gy.dtype, w.dtype))
    for (p, q), index in geometry.window_slices():
        gxp[index] += (g2d @ w[p, q].T).reshape(n, ho, wo, c)
    return geometry.crop(gxp)


#: kernels of at most this many weights get their gradient as a sum of per-sample products
SMALL_KERNEL = 1024


def conv_weight_grad(x: np.ndarray, gy: np.ndarray, geometry: ConvGeometry, cols=None):
    """dW = cols^T @ gy as (kh, kw, C, O); ``cols`` is im2col(pad(x)) (extra columns, such
    as the forward's column of ones, are ignored), rebuilt when not given. Small kernels
    (``SMALL_KERNEL``) sum one product per sample instead: sum_n cols_n^T @ gy_n."""
    n, ho, wo, o = gy.shape
    (kh, kw), c = geometry.window, geometry.input_shape[3]
    k = kh * kw * c
    if cols is None:
        cols = im2col(geometry.pad(x), geometry)
    if k * o <= SMALL_KERNEL:
        # NOTE: one product with a tiny (k, o) result summed over N*Ho*Wo rows runs far below
        # BLAS speed (and stalls now and then with two OpenBLAS threads); one product per sample,
        # summed, is several times faster, and each is small enough to stay on one thread.
        per_sample = (cols.reshape(n, ho * wo, -1)[:, :, :k].transpose(0, 2, 1)
                      @ gy.reshape(n, ho * wo, o))
        return per_sample.sum(axis=0).reshape(kh, kw, c, o)
    # NOTE: a product of two tall, skinny matrices with a transposed operand, where OpenBLAS
    # has slow paths: (g^T @ cols)^T is the fastest layout (bench/conv_kernels.py times them).
    gw = (gy.reshape(n * ho * wo, o).T @ cols[:, :k]).T
    return gw.reshape(kh, kw, c, o)


# ----------------------------------------------------------------------- pooling


def _scatter_target(geometry: ConvGeometry, dtype, xp) -> np.ndarray:
    """The padded gradient buffer of a scatter. When the windows tile the padded input
    exactly (2x2 pooling of 26x26 maps), every cell is written once: no need to zero it."""
    (kh, kw), (sh, sw), (ho, wo) = geometry.window, geometry.stride, geometry.output_hw
    _, hp, wp, _ = geometry.padded_shape
    if (sh, sw) == (kh, kw) and ho * sh == hp and wo * sw == wp:
        return xp.empty(geometry.padded_shape, dtype=dtype)
    return xp.zeros(geometry.padded_shape, dtype=dtype)


def max_and_argmax(padded: np.ndarray, geometry: ConvGeometry, with_argmax: bool):
    """The window maxima and, if asked, the offset of the FIRST maximum of each window
    (row-major order inside the window, as torch): a later offset wins only when strictly
    greater than the running maximum, so ties keep the earliest one.

    NOTE: masked writes (``np.copyto(..., where=mask)``, ``np.where``) branch on every element
    and are much slower than arithmetic on random masks; offsets grow with k, so "k if
    greater" is ``maximum(argmax, greater * k)``, and routing is a product with a boolean mask.
    The cells of each offset, a strided slice (runs of C values), are copied into one
    contiguous buffer first, so that the comparison and the maximum both read contiguous data.
    """
    windows = geometry.window_slices()
    _, first = next(windows)
    xp = get_array_module(padded)
    y = padded[first].copy()
    argmax = xp.zeros(y.shape, dtype=_offset_dtype(geometry)) if with_argmax else None
    cells = xp.empty_like(y)
    greater = xp.empty(y.shape, dtype=bool)
    for k, (_, index) in enumerate(windows, start=1):
        xp.copyto(cells, padded[index])
        if with_argmax:
            xp.greater(cells, y, out=greater)
            xp.maximum(argmax, greater.view(np.uint8) * argmax.dtype.type(k), out=argmax)
        xp.maximum(y, cells, out=y)
    return y, argmax


def _offset_dtype(geometry: ConvGeometry):
    return np.uint8 if np.prod(geometry.window) <= 256 else np.int32


def scatter(gy: np.ndarray, picked: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dx: zeros with each gy[n, i, j, c] added at the input cell its window picked."""
    xp = get_array_module(gy)
    gxp = _scatter_target(geometry, gy.dtype, xp)
    disjoint = geometry.disjoint
    for k, (_, index) in enumerate(geometry.window_slices()):
        if disjoint:  # each input cell belongs to one window at most: write, do not add
            xp.multiply(gy, picked == k, out=gxp[index])
        else:
            gxp[index] += gy * (picked == k)
    return geometry.crop(gxp)


def gather(x: np.ndarray, picked: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """y[n, i, j, c] = x at the cell window (i, j) picked (the adjoint of ``scatter``)."""
    padded = geometry.pad(x)
    y = get_array_module(x).zeros(picked.shape, dtype=x.dtype)
    for k, (_, index) in enumerate(geometry.window_slices()):
        y += padded[index] * (picked == k)
    return y


def window_count(geometry: ConvGeometry, like) -> np.ndarray | float:
    """How many cells of each window lie inside the unpadded input, shape (Ho, Wo, 1), in the
    dtype and on the device of the array ``like`` (a number when no window touches the
    padding)."""
    dtype = like.dtype
    (kh, kw), (sh, sw), (ho, wo) = geometry.window, geometry.stride, geometry.output_hw
    if not geometry.has_padding:
        return dtype.type(kh * kw)
    _, h, w, _ = geometry.input_shape
    top, _, left, _ = geometry.pads

    def inside(out, k, s, before, size):
        start = np.arange(out) * s - before
        return np.minimum(start + k, size) - np.maximum(start, 0)

    rows = inside(ho, kh, sh, top, h)
    cols = inside(wo, kw, sw, left, w)
    return to_device(np.multiply.outer(rows, cols)[:, :, None].astype(dtype), device_of(like))


def window_mean(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Average of every window over its cells inside the input (padding excluded)."""
    padded = geometry.pad(x)
    windows = geometry.window_slices()
    _, first = next(windows)
    y = padded[first].copy()
    for _, index in windows:
        y += padded[index]
    y /= window_count(geometry, x)
    return y


def spread(gy: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The adjoint of ``window_mean``: each window's gy / count added to each of its cells."""
    share = gy / window_count(geometry, gy)
    gxp = _scatter_target(geometry, gy.dtype, get_array_module(gy))
    disjoint = geometry.disjoint
    for _, index in geometry.window_slices():
        if disjoint:
            gxp[index] = share
        else:
            gxp[index] += share
    return geometry.crop(gxp)


def sample_windows(padded: np.ndarray, geometry: ConvGeometry, rng: np.random.Generator):
    """Draw one cell per window with probability a_k / sum(a): the offsets drawn.

    The running sums c_k = a_0 + ... + a_k of the window split [0, c_last) into intervals of
    lengths a_k; u = r * c_last with r uniform in [0, 1) falls into interval k with probability
    a_k / c_last, and k = the number of running sums <= u. All-zero windows get offset 0.
    """
    running = None
    running_sums = []
    for _, index in geometry.window_slices():
        running = padded[index].copy() if running is None else running + padded[index]
        running_sums.append(running)
    total = running_sums[-1]
    xp = get_array_module(total)
    # drawn on the host and moved: a seed gives the same picks on every device
    u = to_device(rng.random(total.shape, dtype=total.dtype), device_of(total)) * total
    # NOTE: r * total can round up to total itself; stay strictly below it, so a cell with
    # zero probability is never drawn.
    xp.minimum(u, xp.nextafter(total, total.dtype.type(0)), out=u)
    picked = xp.zeros(total.shape, dtype=_offset_dtype(geometry))
    for c_k in running_sums[:-1]:
        picked += c_k <= u
    picked *= total > 0
    return picked


