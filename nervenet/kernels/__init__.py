"""Array kernels: the NumPy tricks the ops stand on, kept out of the formulas.

Every function here takes and returns plain arrays and knows nothing of Tensors, graphs or
gradients; the ops in ``nervenet.autograd.ops`` call them, so that an op's ``forward`` and
``backward`` read like the formulas in its docstring. A kernel exists only where it beats the
plain NumPy expression of the same formula on the shapes of real networks; why it is faster is
said beside it, and the measurements are in bench/README.md ("The kernels"). Each kernel is
tested against the plain expression (tests/test_kernels.py) or through its op's tests.

This is the ground floor of the engine, beside ``nervenet.backend``: it imports nothing from
nervenet but the backend. Each kernel takes its array module from its inputs
(``xp = backend.get_array_module(x)``: NumPy, CuPy on a GPU, or the fake test device), so the
same code runs on every device; the NumPy-only tricks (the cached zero row, ``where=``) are
taken where ``xp`` is NumPy.

* ``elementwise``: ReLU against a cached zero row, a gradient masked by a boolean array, the
  logistic sigmoid, Cody's erf / erfc and the normal CDF, log-softmax with its softmax;
* ``products``: the matrix product with transpose flags, the sum over rows as one BLAS
  product, the sum over all axes but the channels, the sum that undoes broadcasting, the
  squared norm as one dot product (which is also the quickest test that all is finite);
* ``window``: the geometry of sliding windows (padding, strides), im2col and the three
  convolution products, and the pooling kernels (maxima with their first argmax, scatter and
  gather of picked cells, window means and their adjoint, stochastic sampling).
"""

from nervenet.kernels.elementwise import (
    erf,
    erfc,
    log_softmax_and_softmax,
    masked,
    normal_cdf,
    relu,
    sigmoid,
)
from nervenet.kernels.products import (
    all_finite,
    channel_sum,
    matmul,
    squared_norm,
    sum_rows,
    sum_to,
)
from nervenet.kernels.window import (
    ConvGeometry,
    conv_forward,
    conv_input_grad,
    conv_weight_grad,
    gather,
    im2col,
    max_and_argmax,
    same_padding,
    sample_windows,
    scatter,
    spread,
    window_count,
    window_mean,
)

__all__ = [
    "ConvGeometry", "all_finite", "channel_sum", "conv_forward", "conv_input_grad",
    "conv_weight_grad", "erf", "erfc", "gather", "im2col", "log_softmax_and_softmax", "masked",
    "matmul", "max_and_argmax", "normal_cdf", "relu", "same_padding", "sample_windows",
    "scatter", "sigmoid", "spread", "squared_norm", "sum_rows", "sum_to", "window_count",
    "window_mean",
]
