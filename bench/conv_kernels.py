"""Micro-benchmark of the convolution and pooling kernels: the variants compared, on the exact
shapes of a LeNet-style MNIST network at batch 64 (float32, channels-last):

    28x28x1 -> conv 3x3x32 (valid) -> max-pool 2 -> conv 3x3x64 (valid) -> max-pool 2 -> dense

For every GEMM / col2im / pooling step it times each way of computing the same array (checked
equal first), interleaving the variants round after round on the same inputs; the table shows
the median, the 90th percentile and the maximum over all calls, and each median relative to
the fastest. The variant nervenet uses is marked ``*``.

    python bench/conv_kernels.py                   # threads as the environment says
    OPENBLAS_NUM_THREADS=1 python bench/conv_kernels.py
    python bench/conv_kernels.py --rounds 20 --padding same

Like the other benchmarks (bench/_common.py), it drops OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
from its environment (re-executing itself) unless --keep-openblas-pins is given: a pinned
Haswell kernel runs these products about 2x slower than the kernel OpenBLAS picks itself.

Why percentiles too: OpenBLAS threads spin and yield when another process competes for the
cores, and some transposed-operand products then take 10-1000x their median now and then
(DESIGN.md 3b); a layout whose p90 explodes is not "fast".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nervenet import kernels  # noqa: E402
from nervenet.kernels import ConvGeometry, im2col  # noqa: E402
from nervenet.kernels.window import SMALL_KERNEL  # noqa: E402

# ---------------------------------------------------------------- variants of each kernel


def im2col_strided(xp, geo):
    """All windows as one as_strided view, reshaped (one copy)."""
    n, _, _, c = xp.shape
    (kh, kw), (sh, sw), (ho, wo) = geo.window, geo.stride, geo.output_hw
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(xp, (n, ho, wo, kh, kw, c),
                                           (s[0], s[1] * sh, s[2] * sw, s[1], s[2], s[3]))
    return view.reshape(n * ho * wo, kh * kw * c)


def im2col_slices(xp, geo):
    """One slice copy per kernel offset into a preallocated (N, Ho, Wo, kh, kw, C)."""
    n, _, _, c = xp.shape
    (kh, kw), (ho, wo) = geo.window, geo.output_hw
    cols = np.empty((n, ho, wo, kh, kw, c), xp.dtype)
    for (p, q), index in geo.window_slices():
        cols[:, :, :, p, q, :] = xp[index]
    return cols.reshape(n * ho * wo, kh * kw * c)


def im2col_sliding_window_view(xp, geo):
    """numpy's sliding_window_view (window axes last), transposed to (kh, kw, C), reshaped."""
    n, _, _, c = xp.shape
    (kh, kw), (sh, sw), (ho, wo) = geo.window, geo.stride, geo.output_hw
    view = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return view.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)


def forward_bias_after(x, w, b, geo):
    """im2col, one GEMM, then the bias added to every row of the (N*Ho*Wo, O) result."""
    y = im2col(geo.pad(x), geo) @ w.reshape(-1, w.shape[3])
    y += b
    return y


def input_grad_per_offset(g2d, w, geo):
    """One (M, O) @ (O, C) product per kernel offset, added into the strided slice."""
    n, ho, wo = geo.input_shape[0], *geo.output_hw
    c = w.shape[2]
    gxp = np.zeros(geo.padded_shape, g2d.dtype)
    for (p, q), index in geo.window_slices():
        gxp[index] += (g2d @ w[p, q].T).reshape(n, ho, wo, c)
    return geo.crop(gxp)


def input_grad_col2im_slices(g2d, w, geo):
    """One (M, O) @ (O, kh*kw*C) product, then col2im as kh*kw strided slice additions."""
    n, ho, wo = geo.input_shape[0], *geo.output_hw
    kh, kw, c, o = w.shape
    gcols = (g2d @ w.reshape(-1, o).T).reshape(n, ho, wo, kh, kw, c)
    gxp = np.zeros(geo.padded_shape, g2d.dtype)
    for (p, q), index in geo.window_slices():
        gxp[index] += gcols[:, :, :, p, q, :]
    return geo.crop(gxp)


def input_grad_col2im_add_at(g2d, w, geo):
    """One product, then col2im with np.add.at on fancy indices (the slow textbook way)."""
    n, ho, wo = geo.input_shape[0], *geo.output_hw
    kh, kw, c, o = w.shape
    (sh, sw) = geo.stride
    gcols = (g2d @ w.reshape(-1, o).T).reshape(n, ho, wo, kh, kw, c)
    gxp = np.zeros(geo.padded_shape, g2d.dtype)
    i_n, i_h, i_w, i_p, i_q, i_c = np.indices(gcols.shape, sparse=True)
    np.add.at(gxp, (i_n, i_h * sh + i_p, i_w * sw + i_q, i_c), gcols)
    return geo.crop(gxp)


def input_grad_full_conv(g2d, w, geo):
    """Stride 1 only: the full convolution of gy (padded by k - 1) with the flipped kernel,
    as im2col + one product."""
    n, ho, wo = geo.input_shape[0], *geo.output_hw
    kh, kw, c, o = w.shape
    gy = g2d.reshape(n, ho, wo, o)
    full = ConvGeometry.build((n, ho + 2 * (kh - 1), wo + 2 * (kw - 1), o), (kh, kw), (1, 1),
                              "valid", "bench")
    padded = np.pad(gy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    flipped = w[::-1, ::-1].transpose(0, 1, 3, 2).reshape(kh * kw * o, c)
    gxp = (im2col(padded, full) @ flipped).reshape(geo.padded_shape)
    return geo.crop(gxp)


def pool_scatter_flat(gy, argmax, geo):
    """Max-pool backward through flat indices (np.put: one fancy-index assignment)."""
    n, hp, wp, c = geo.padded_shape
    kw, (sh, sw) = geo.window[1], geo.stride
    i_n, i_h, i_w, i_c = np.indices(gy.shape, sparse=True)
    rows = i_h * sh + argmax // kw
    cols = i_w * sw + argmax % kw
    flat = ((i_n * hp + rows) * wp + cols) * c + i_c
    gxp = np.zeros(geo.padded_shape, gy.dtype)
    np.put(gxp, flat, gy)
    return geo.crop(gxp)


def pool_argmax_copyto(x, geo):
    """First argmax by masked writes: copyto(argmax, k, where=cells > running max)."""
    windows = geo.window_slices()
    y = x[next(windows)[1]].copy()
    argmax = np.zeros(y.shape, np.uint8)
    for k, (_, index) in enumerate(windows, start=1):
        np.copyto(argmax, k, where=x[index] > y)
        np.maximum(y, x[index], out=y)
    return argmax


def pool_scatter_copyto(gy, argmax, geo):
    """Max-pool backward by masked writes: copyto(slice, gy, where=argmax == k)."""
    gxp = np.zeros(geo.padded_shape, gy.dtype)
    for k, (_, index) in enumerate(geo.window_slices()):
        np.copyto(gxp[index], gy, where=argmax == k)
    return geo.crop(gxp)


def pool_forward_reshape(x, geo):
    """Max of non-overlapping 2x2 windows through a (N, Ho, 2, Wo, 2, C) reshape."""
    n, _, _, c = x.shape
    ho, wo = geo.output_hw
    kh, kw = geo.window
    return x[:, :ho * kh, :wo * kw].reshape(n, ho, kh, wo, kw, c).max(axis=(2, 4))


# ----------------------------------------------------------------------------- timing


def compare(title, variants, rounds, calls=5):
    """Check that all variants agree, then time them interleaved; print one line each."""
    reference = variants[0][1]()
    for name, fn in variants[1:]:
        np.testing.assert_allclose(fn(), reference, rtol=1e-4, atol=1e-3, err_msg=name)
    times = {name: [] for name, _ in variants}
    for _ in range(rounds):
        for name, fn in variants:
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    print(f"\n{title}")
    best = min(np.median(t) for t in times.values())
    for name, _ in variants:
        t = np.array(times[name])
        print(f"  {name:46s} median {np.median(t) * 1e3:7.3f} ms  p90 "
              f"{np.percentile(t, 90) * 1e3:7.3f}  max {t.max() * 1e3:8.2f}  "
              f"x{np.median(t) / best:5.2f}")


def bench_layer(index, c, o, size, args, dtype, rng):
    """Time every variant for conv layer ``index`` (c -> o channels) and the max-pool after
    it; return the spatial size after the pool."""
    x = rng.standard_normal((args.batch, size, size, c)).astype(dtype)
    w = (rng.standard_normal((3, 3, c, o)) / np.sqrt(9 * c)).astype(dtype)
    geo = ConvGeometry.build(x.shape, (3, 3), (1, 1), args.padding, "bench")
    xp = geo.pad(x)
    cols = im2col(xp, geo)
    m, k = cols.shape
    ho, wo = geo.output_hw
    g2d = rng.standard_normal((m, o)).astype(dtype)
    w2d = w.reshape(k, o)
    tag = f"conv{index}: x {x.shape}, w {w.shape}, cols ({m}, {k})"
    compare(f"{tag} -- im2col", [
        ("as_strided view + reshape" + (" *" if c > 1 else ""),
         lambda: im2col_strided(xp, geo)),
        ("slice copy per kernel offset" + (" *" if c == 1 else ""),
         lambda: im2col_slices(xp, geo)),
        ("sliding_window_view + transpose + reshape",
         lambda: im2col_sliding_window_view(xp, geo)),
    ], args.rounds)
    compare(f"{tag} -- forward GEMM ({m}, {k}) @ ({k}, {o})", [
        ("cols @ w2d *", lambda: cols @ w2d),
        ("(w2d.T @ cols.T).T", lambda: (w2d.T @ cols.T).T),
    ], args.rounds)
    b = rng.standard_normal(o).astype(dtype)
    compare(f"{tag} -- whole forward with bias (im2col, GEMM, bias)", [
        ("[cols 1] @ [W; b]: ones column in im2col *",
         lambda: kernels.conv_forward(x, w, geo, b)[0].reshape(m, o)),
        ("im2col; y = cols @ W; y += b", lambda: forward_bias_after(x, w, b, geo)),
    ], args.rounds)
    cols_ones = im2col(xp, geo, bias_column=True)
    small = k * o <= SMALL_KERNEL  # nervenet sums per-sample products for small kernels
    compare(f"{tag} -- weight gradient ({k}, {m}) @ ({m}, {o})", [
        ("cols[:, :k].T @ g (cols with its ones column)", lambda: cols_ones[:, :k].T @ g2d),
        ("(g.T @ cols[:, :k]).T (cols with its ones column)" + ("" if small else " *"),
         lambda: (g2d.T @ cols_ones[:, :k]).T),
        ("per-sample cols_n[:, :k].T @ g_n, summed" + (" *" if small else ""),
         lambda: np.matmul(cols_ones.reshape(args.batch, ho * wo, k + 1)[:, :, :k]
                           .transpose(0, 2, 1), g2d.reshape(args.batch, ho * wo, o)).sum(0)),
        ("cols.T @ g", lambda: cols.T @ g2d),
        ("(g.T @ cols).T", lambda: (g2d.T @ cols).T),
        ("ascontiguousarray(cols.T) @ g", lambda: np.ascontiguousarray(cols.T) @ g2d),
        ("sum of cols.T @ g over 8 row blocks",
         lambda: sum(cols[i::8].T @ g2d[i::8] for i in range(8))),
    ], args.rounds)
    compare(f"{tag} -- bias gradient ({m}, {o}) -> ({o},)", [
        ("rows of Wo*O summed, then the Wo pieces *",
         lambda: kernels.channel_sum(g2d.reshape(-1, ho, wo, o))),
        ("ones @ g", lambda: np.ones(m, dtype) @ g2d),
        ("g.sum(axis=0)", lambda: g2d.sum(axis=0)),
        ("np.einsum('ij->j', g)", lambda: np.einsum("ij->j", g2d)),
    ], args.rounds)
    if index > 1:  # the first layer's input (the images) needs no gradient
        variants = [
            ("one GEMM per kernel offset into slices *",
             lambda: input_grad_per_offset(g2d, w, geo)),
            ("one GEMM + col2im by slice additions",
             lambda: input_grad_col2im_slices(g2d, w, geo)),
            ("full conv of gy: im2col + one GEMM",
             lambda: input_grad_full_conv(g2d, w, geo)),
            ("one GEMM + col2im by np.add.at",
             lambda: input_grad_col2im_add_at(g2d, w, geo)),
        ]
        compare(f"{tag} -- input gradient", variants, max(args.rounds // 2, 1), calls=3)

    y = rng.standard_normal((args.batch, ho, wo, o)).astype(dtype)
    pgeo = ConvGeometry.build(y.shape, (2, 2), (2, 2), "valid", "bench")
    pooled, argmax = kernels.max_and_argmax(y, pgeo, with_argmax=True)
    gp = rng.standard_normal(pooled.shape).astype(dtype)
    ptag = f"max-pool 2x2 of {y.shape}"
    compare(f"{ptag} -- forward (values)", [
        ("np.maximum over window slices *",
         lambda: kernels.max_and_argmax(y, pgeo, with_argmax=False)[0]),
        ("reshape (N, Ho, 2, Wo, 2, C) + max", lambda: pool_forward_reshape(y, pgeo)),
    ], args.rounds)
    compare(f"{ptag} -- forward with first-argmax", [
        ("maximum(argmax, (cells > running max) * k) *",
         lambda: kernels.max_and_argmax(y, pgeo, with_argmax=True)[1]),
        ("copyto(argmax, k, where=cells > running max)", lambda: pool_argmax_copyto(y, pgeo)),
        ("np.argmax of a transposed window copy",
         lambda: im2col_strided(y, pgeo).reshape(-1, 4, o).argmax(axis=1).reshape(
             pooled.shape)),
    ], args.rounds)
    compare(f"{ptag} -- backward (scatter to the argmax)", [
        ("multiply(gy, argmax == k, out=slice) *", lambda: kernels.scatter(gp, argmax, pgeo)),
        ("copyto(slice, gy, where=argmax == k)", lambda: pool_scatter_copyto(gp, argmax, pgeo)),
        ("flat indices + np.put", lambda: pool_scatter_flat(gp, argmax, pgeo)),
    ], args.rounds)

    return ho // 2


_OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-openblas-pins", action="store_true",
                        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--padding", default="valid", choices=["valid", "same"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    if not args.keep_openblas_pins and any(name in os.environ for name in _OPENBLAS_PINS):
        # OpenBLAS reads them when NumPy is imported: start again without them.
        env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_PINS}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    core = os.environ.get("OPENBLAS_CORETYPE", "chosen by OpenBLAS")
    print(f"NumPy {np.__version__}, {os.cpu_count()} cores, OPENBLAS_NUM_THREADS={threads}, "
          f"OPENBLAS_CORETYPE {core}, "
          f"{args.dtype}, batch {args.batch}, padding {args.padding}, {args.rounds} rounds")

    size = 28
    for index, (c, o) in enumerate([(1, 32), (32, 64)], start=1):
        size = bench_layer(index, c, o, size, args, dtype, rng)

if __name__ == "__main__":
    main()
