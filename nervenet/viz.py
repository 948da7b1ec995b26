"""Pictures of what a network does: learning curves, gradient flow, decision boundaries,
activations and their derivatives, hidden feature spaces, loss surfaces, convolution filters and
feature maps. Figures are made for a lecture: integer epoch ticks, every label inside the
figure, classes in Okabe & Ito's colour-blind-safe ``PALETTE``, weights on one symmetric
colour scale with a colour bar, ``feature_names``/``class_names`` where axes and legends show
them.

Needs matplotlib (the ``plot`` extra: ``pip install nervenet[plot]``), imported only when a
function is called, so ``import nervenet`` never loads it. Figures are built with
``matplotlib.figure.Figure`` (rendered by Agg), not ``pyplot``: nothing global changes, no
window opens, and nothing piles up in pyplot's figure registry. Every function returns the
Figure and, given ``path``, also writes a PNG there.
"""

from __future__ import annotations

import math
import os

import numpy as np

from nervenet import activations
from nervenet.autograd import no_grad


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("nervenet.viz needs matplotlib: pip install matplotlib "
                          "(or nervenet[plot])") from None
    return Figure(figsize=(width, height), layout="constrained")


#: Okabe & Ito's colour-blind-safe palette, without its yellow (too pale on white)
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def _class_colors(count: int):
    """A ListedColormap of ``count`` palette colours (one per class)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap([PALETTE[k % len(PALETTE)] for k in range(max(count, 1))])


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _finish(figure, path):
    if path is not None:
        figure.savefig(os.fspath(path), dpi=100)
    return figure


def _predict(model, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict"):
        return np.asarray(model.predict(x, batch_size=4096, verbose=0))
    with no_grad():
        out = model(x)
    return np.asarray(getattr(out, "data", out))


def plot_history(history, path=None, metrics=None):
    """Learning curves: one panel per quantity (loss, accuracy, ...), training and validation.

    Args:
        history: a ``History`` (what ``fit`` returns) or its ``history`` dict.
        path: write a PNG here (default ``None``).
        metrics: the quantities to plot (default: all, ``val_`` ones beside their training
            curve).

    Returns:
        The matplotlib Figure.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("plot_history: history must be a History or a non-empty dict of "
                         "per-epoch lists")
    names = metrics or [k for k in logs if not k.startswith("val_")] or list(logs)
    figure = _figure(4.5 * len(names), 3.6)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for axis, name in zip(axes, names):
        for key, style, color in ((name, "-o", PALETTE[0]), (f"val_{name}", "--s", PALETTE[1])):
            if key in logs:
                values = logs[key]
                axis.plot(range(1, len(values) + 1), values, style, markersize=3, color=color,
                          label="validation" if key.startswith("val_") else "training")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(_integer_locator())  # epochs are whole numbers
        axis.grid(True, alpha=0.3)
        axis.legend()
    return _finish(figure, path)


def _series(source, prefix: str) -> dict[str, list[float]]:
    """``{layer: per-epoch values}`` of the ``prefix/<layer>`` keys of a GradientMonitor's
    history (or of that dict), in layer order."""
    logs = getattr(source, "history", source)
    return {key[len(prefix) + 1:]: list(values) for key, values in logs.items()
            if key.startswith(prefix + "/")}


def plot_gradient_flow(monitor, path=None):
    """How the gradient reaches each layer, from ``callbacks.GradientMonitor``'s numbers.

    Left: the gradient norm ``||dL/dW||`` of every layer (input side first), one line per
    epoch coloured by epoch (colour bar): a line falling towards the input is a vanishing
    gradient. Right: each layer's update ratio ``||dW|| / ||W||`` per epoch, with the healthy
    1e-3 marked.

    Args:
        monitor: a ``GradientMonitor`` after ``fit``, or its ``history`` dict (keys
            ``grad_norm/<layer>`` and ``update_ratio/<layer>``).
        path: write a PNG here (default ``None``).
    """
    norms, ratios = _series(monitor, "grad_norm"), _series(monitor, "update_ratio")
    if not norms:
        raise ValueError("plot_gradient_flow: monitor must be a GradientMonitor (after fit) or "
                         "its history, with grad_norm/<layer> values")
    from matplotlib import cm, colors

    names = list(norms)
    epochs = len(next(iter(norms.values())))
    figure = _figure(10, 4)
    left, right = figure.subplots(1, 2)
    scale = colors.Normalize(vmin=1, vmax=max(epochs, 2))
    for epoch in range(epochs):
        values = [max(norms[name][epoch], 1e-30) for name in names]
        left.plot(range(len(names)), values, "-o", markersize=3,
                  color=cm.viridis(scale(epoch + 1)))
    left.set_yscale("log")
    left.set_xticks(range(len(names)), names, rotation=30, ha="right")
    left.set_title("gradient norm per layer")
    left.set_ylabel("||dL/dW||")
    bar = figure.colorbar(cm.ScalarMappable(norm=scale, cmap="viridis"), ax=left)
    bar.set_label("epoch")
    bar.locator = _integer_locator()
    bar.update_ticks()
    for index, (name, values) in enumerate(ratios.items()):
        right.plot(range(1, len(values) + 1), np.maximum(values, 1e-30), "-o", markersize=3,
                   label=name, color=PALETTE[index % len(PALETTE)])
    right.axhline(1e-3, color="grey", linestyle="--", linewidth=1, label="1e-3")
    right.set_yscale("log")
    right.set_title("update ratio per epoch")
    right.set_xlabel("epoch")
    right.xaxis.set_major_locator(_integer_locator())
    right.legend(fontsize=8)
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
    return _finish(figure, path)


def _grid(x: np.ndarray, resolution: int, margin: float = 0.5):
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    return g0, g1, np.column_stack([g0.ravel(), g1.ravel()])


def _class_index(estimator, y: np.ndarray) -> tuple[np.ndarray, list | None]:
    """``(y as class indices 0..k-1, the class labels)`` using the estimator's ``classes_``
    (scikit-learn's convention) when it has them."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return y.astype(int), None
    classes = np.asarray(classes)
    index = {value: k for k, value in enumerate(classes.tolist())}
    return np.array([index.get(v, -1) for v in y.tolist()]), classes.tolist()


def _regions(model, points: np.ndarray):
    """``(class index of every point, probability of class 1 or None)`` from a nervenet
    model (``predict`` scores: one sigmoid or one column per class), an estimator with
    ``predict_proba`` or one with ``predict`` (labels), or a callable returning scores."""
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(points))
        proba = proba.reshape(len(points), -1)
        if proba.shape[1] == 1:
            proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
        return proba.argmax(axis=1), proba[:, 1] if proba.shape[1] == 2 else None
    if hasattr(model, "predict") and not hasattr(model, "compile"):  # labels (scikit-learn)
        labels = np.asarray(model.predict(points)).reshape(-1)
        return _class_index(model, labels)[0], None
    scores = _predict(model, points.astype(np.float32)).reshape(len(points), -1)
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0.5).astype(int), scores[:, 0]
    return scores.argmax(axis=1), None


def plot_decision_boundary(model, x, y, path=None, resolution: int = 200, title=None,
                           feature_names=None, class_names=None):
    """The regions a 2-D classifier assigns to each class, with the data on top.

    ``model`` may be a nervenet model (one sigmoid output read as P(class 1), several outputs
    by argmax), any estimator with ``predict_proba`` or ``predict`` (nervenet.sklearn's,
    scikit-learn's; labels are matched through its ``classes_``), or a callable from an (n, 2)
    array to scores. Where there is a probability of class 1, its 0.5 contour is drawn.
    Classes get the colour-blind-safe ``PALETTE``.

    Args:
        model: the classifier.
        x: the points, shape (n, 2).
        y: their labels, shape (n,).
        path: write a PNG here (default ``None``).
        resolution: grid points per axis (default 200).
        title: the axes title (default ``None``).
        feature_names: the two axis labels (default ``x_1``, ``x_2``).
        class_names: legend names of the classes (default: the labels).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: x must have shape (n, 2), got {x.shape}")
    g0, g1, points = _grid(x, resolution)
    labels, probability = _regions(model, points)
    y_index, known = _class_index(model, y) if hasattr(model, "classes_") else (
        _label_index(y))
    n_classes = int(max(labels.max(), y_index.max())) + 1
    colors = _class_colors(n_classes)
    figure = _figure(5.5, 4.5)
    axis = figure.subplots()
    axis.contourf(g0, g1, labels.reshape(g0.shape), levels=np.arange(n_classes + 1) - 0.5,
                  cmap=colors, alpha=0.25)
    if probability is not None:
        axis.contour(g0, g1, probability.reshape(g0.shape), levels=[0.5], colors="k",
                     linewidths=1.5)
    names = list(class_names) if class_names is not None else [
        str(v) for v in (known if known is not None else range(n_classes))]
    for k in range(n_classes):
        mine = y_index == k
        if mine.any():
            axis.scatter(x[mine, 0], x[mine, 1], color=colors(k), edgecolors="k", s=25,
                         label=names[k] if k < len(names) else str(k))
    axis.legend(loc="best", fontsize=8)
    first, second = feature_names if feature_names is not None else ("$x_1$", "$x_2$")
    axis.set_xlabel(first)
    axis.set_ylabel(second)
    if title:
        axis.set_title(title)
    return _finish(figure, path)


def _label_index(y: np.ndarray) -> tuple[np.ndarray, list | None]:
    """Integer labels stay as they are; other labels index their sorted distinct values."""
    if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.all(y == np.round(y))):
        return y.astype(int), None
    values = sorted(set(y.tolist()))
    return np.array([values.index(v) for v in y.tolist()]), values


def plot_activations(names=("step", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
                            "gelu", "swish", "mish", "softplus", "linear"),
                     path=None, x_range: tuple[float, float] = (-5.0, 5.0)):
    """Each activation f(x) and its derivative f'(x) (computed by autograd).

    Args:
        names: activation ids (default: the course's table).
        path: write a PNG here (default ``None``).
        x_range: the x interval (default (-5, 5)).
    """
    names = [names] if isinstance(names, str) else list(names)
    x = np.linspace(*x_range, 401).astype(np.float64)
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = _figure(3.2 * columns, 2.6 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, name in zip(axes, names):
        fn = activations.get(name)
        with no_grad():
            out = fn(x)  # a Tensor, or x itself for "linear"
        values = np.asarray(getattr(out, "data", out), dtype=np.float64)
        axis.plot(x, values, label="f(x)")
        axis.plot(x, activations.derivative(name, x), "--", label="f'(x)")
        axis.axhline(0, color="grey", linewidth=0.5)
        axis.axvline(0, color="grey", linewidth=0.5)
        axis.set_title(name)
        axis.grid(True, alpha=0.3)
    axes[0].legend()
    for axis in axes[len(names):]:
        axis.set_visible(False)
    return _finish(figure, path)


def _layer_index(model, layer) -> int:
    layers = model.layers
    if isinstance(layer, int):
        if not -len(layers) <= layer < len(layers):
            raise ValueError(f"layer index {layer} is out of range for {len(layers)} layers")
        return layer % len(layers)
    if isinstance(layer, str):
        names = [item.name for item in layers]
        if layer not in names:
            raise ValueError(f"no layer named {layer!r}; the layers are {names}")
        return names.index(layer)
    for index, item in enumerate(layers):
        if item is layer:
            return index
    raise ValueError(f"layer {layer!r} is not a layer of the model")


def intermediate_output(model, x, layer) -> np.ndarray:
    """The output of ``layer`` (a name, an index into ``model.layers`` or the layer itself)
    of a chain model (``Sequential``) for input ``x``, in inference mode."""
    if not hasattr(model, "layers") or not hasattr(model, "add"):
        raise ValueError(f"needs a Sequential model, got {type(model).__name__}")
    stop = _layer_index(model, layer)
    value = np.asarray(x)
    with no_grad():
        for item in model.layers[:stop + 1]:
            value = item(value, training=False)
    return value.data


def _project_2d(h: np.ndarray, *others: np.ndarray):
    """h itself when it has 2 columns, else its first two principal components (the same
    projection applied to ``others``)."""
    if h.shape[1] == 2:
        return (h, *others), ("$h_1$", "$h_2$"), None
    mean = h.mean(axis=0)
    _, _, vt = np.linalg.svd(h - mean, full_matrices=False)
    basis = vt[:2].T
    return tuple((a - mean) @ basis for a in (h, *others)), ("PC 1", "PC 2"), (mean, basis)


def plot_feature_space(model, x, y, layer, path=None, grid_lines: int = 11,
                       feature_names=None, class_names=None):
    """How a hidden layer bends the input space: the inputs (left) and their images in the
    layer's output space (right), with a grid carried along.

    For XOR, a 2-unit hidden layer moves (0,1) and (1,0) to one side and (0,0), (1,1) to the
    other, so that one straight line (the output unit) separates them. When the next layer is
    a one-unit Dense layer on a 2-D space, that line ``w1 h1 + w2 h2 + b = 0`` is drawn. A
    layer with more than two units is shown through its first two principal components.

    Args:
        model: a Sequential model with 2-D inputs.
        x: the points, shape (n, 2).
        y: their labels.
        layer: the hidden layer (name, index into ``model.layers`` or the layer).
        path: write a PNG here (default ``None``).
        grid_lines: grid lines per axis (default 11).
        feature_names: the input axes' labels (default ``x_1``, ``x_2``).
        class_names: legend names of the classes 0, 1, ... (default: the labels).
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_feature_space: x must have shape (n, 2), got {x.shape}")
    lines = _grid_lines(x.min(axis=0) - 0.25, x.max(axis=0) + 0.25, grid_lines)
    index = _layer_index(model, layer)
    h = intermediate_output(model, x, index).reshape(len(x), -1)
    mapped = [intermediate_output(model, line.astype(np.float32), index).reshape(len(line), -1)
              for line in lines]
    projected, labels, projection = _project_2d(h.astype(np.float64),
                                                *[m.astype(np.float64) for m in mapped])
    h2, mapped2 = projected[0], projected[1:]

    figure = _figure(10, 4.5)
    left, right = figure.subplots(1, 2)
    y_index, known = _label_index(y)
    names = list(class_names) if class_names is not None else [
        str(v) for v in (known if known is not None else range(int(y_index.max()) + 1))]
    for axis, points, curves in ((left, x, lines), (right, h2, mapped2)):
        _draw_points_on_grid(axis, points, curves, y_index, names)
    left.legend(loc="best", fontsize=8)
    left.set_title("input space")
    first, second = feature_names if feature_names is not None else ("$x_1$", "$x_2$")
    left.set_xlabel(first)
    left.set_ylabel(second)
    name = model.layers[index].name
    right.set_title(f"output space of layer {name!r}")
    right.set_xlabel(labels[0])
    right.set_ylabel(labels[1])
    following = model.layers[index + 1] if index + 1 < len(model.layers) else None
    kernel = getattr(following, "kernel", None)
    if projection is None and kernel is not None and kernel.shape == (2, 1):
        _draw_unit_boundary(right, following)
    return _finish(figure, path)


def _draw_points_on_grid(axis, points: np.ndarray, curves, y_index: np.ndarray, names) -> None:
    """The grid's curves in grey and the points coloured by class (``y_index``)."""
    for curve in curves:
        axis.plot(curve[:, 0], curve[:, 1], color="grey", linewidth=0.5, alpha=0.6)
    for k in range(int(y_index.max()) + 1):
        mine = y_index == k
        if mine.any():
            axis.scatter(points[mine, 0], points[mine, 1], color=PALETTE[k % len(PALETTE)],
                         edgecolors="k", s=40, zorder=3,
                         label=names[k] if k < len(names) else str(k))
    axis.grid(True, alpha=0.2)


def _grid_lines(lo: np.ndarray, hi: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` vertical then ``count`` horizontal lines across the box [lo, hi], each as
    100 points (100, 2)."""
    t = np.linspace(0, 1, 100)
    steps = np.linspace(0, 1, count)
    lines = [np.column_stack([np.full_like(t, lo[0] + s * (hi[0] - lo[0])),
                              lo[1] + t * (hi[1] - lo[1])]) for s in steps]
    lines += [np.column_stack([lo[0] + t * (hi[0] - lo[0]),
                               np.full_like(t, lo[1] + s * (hi[1] - lo[1]))]) for s in steps]
    return lines


def _draw_unit_boundary(axis, unit) -> None:
    """The boundary ``w1 h1 + w2 h2 + b = 0`` of a one-unit Dense layer on a 2-D space (0.5
    after a sigmoid), across the axis's current limits."""
    w = unit.kernel.data[:, 0].astype(np.float64)
    b = float(unit.bias.data[0]) if unit.bias is not None else 0.0
    (x0, x1), (y0, y1) = axis.get_xlim(), axis.get_ylim()
    if abs(w[1]) > abs(w[0]):
        hs = np.linspace(x0, x1, 50)
        axis.plot(hs, -(w[0] * hs + b) / w[1], "k-", linewidth=1.5, label="output boundary")
    else:
        hs = np.linspace(y0, y1, 50)
        axis.plot(-(w[1] * hs + b) / w[0], hs, "k-", linewidth=1.5, label="output boundary")
    axis.set_xlim(x0, x1)
    axis.set_ylim(y0, y1)
    axis.legend(loc="best")


def _filter_normalized_direction(weights: list[np.ndarray], rng) -> list[np.ndarray]:
    """A random Gaussian direction, each part rescaled to the norm of its weight (zero for a
    zero weight): Li et al.'s filter normalization, per layer weight."""
    direction = []
    for w in weights:
        d = rng.normal(size=w.shape)
        d *= (np.linalg.norm(w) / max(np.linalg.norm(d), 1e-12)) if np.any(w) else 0.0
        direction.append(d)
    return direction


def _losses_on_plane(model, x, y, weights, directions, alphas: np.ndarray) -> np.ndarray:
    """``L[i, j] = loss(w + alphas[j] d1 + alphas[i] d2)``; the weights are restored after."""
    origin = [w.data.copy() for w in weights]
    surface = np.empty((len(alphas), len(alphas)))
    try:
        with no_grad():
            for i, b in enumerate(alphas):
                for j, a in enumerate(alphas):
                    for w, w0, d1, d2 in zip(weights, origin, *directions):
                        w.data[...] = w0 + a * d1 + b * d2
                    loss = model.compute_loss(y, model(x, training=False))
                    surface[i, j] = float(loss.data)
    finally:
        for w, w0 in zip(weights, origin):
            w.data[...] = w0
    return surface


def plot_loss_surface(model, x, y, path=None, span: float = 1.0, resolution: int = 21,
                      seed=0):
    """The loss around the current weights along two random directions (Li et al., 2018).

    ``L(a, b) = loss(w + a d1 + b d2)`` for a, b in [-span, span]; d1, d2 are random Gaussian
    directions, each rescaled per layer weight to the norm of that weight ("filter
    normalization"), so the picture does not depend on the weights' scale. Left: contours
    with the current point; right: the surface in 3-D.

    Args:
        model: a compiled model (its loss is evaluated).
        x, y: the data the loss is computed on.
        path: write a PNG here (default ``None``).
        span: the extent of the plane, in units of the weight norms (default 1.0).
        resolution: grid points per axis (default 21).
        seed: seed of the two directions (default 0).

    Returns:
        The Figure; the weights are restored afterwards.
    """
    if getattr(model, "loss", None) is None:
        raise ValueError("plot_loss_surface: the model must be compiled (it needs a loss)")
    x = np.asarray(x)
    y = np.asarray(y)
    weights = model.trainable_weights
    if not weights:
        with no_grad():
            model(x[:1])
        weights = model.trainable_weights
    rng = np.random.default_rng(seed)
    directions = [_filter_normalized_direction([w.data for w in weights], rng)
                  for _ in range(2)]
    alphas = np.linspace(-span, span, resolution)
    surface = _losses_on_plane(model, x, y, weights, directions, alphas)
    grid_a, grid_b = np.meshgrid(alphas, alphas)
    figure = _figure(11, 4.5)
    left = figure.add_subplot(1, 2, 1)
    contours = left.contourf(grid_a, grid_b, surface, levels=30, cmap="viridis")
    figure.colorbar(contours, ax=left, label="loss")
    left.plot([0], [0], "r*", markersize=12, label="current weights")
    left.set_xlabel("direction 1")
    left.set_ylabel("direction 2")
    left.legend()
    right = figure.add_subplot(1, 2, 2, projection="3d")
    right.plot_surface(grid_a, grid_b, surface, cmap="viridis", linewidth=0)
    right.set_xlabel("direction 1")
    right.set_ylabel("direction 2")
    right.set_zlabel("loss")
    right.set_box_aspect(None, zoom=0.8)  # leaves room for the z label inside the figure
    return _finish(figure, path)


def _tiles(figure, images: np.ndarray, titles, cmap="gray", limits=None):
    """One tile per image; with ``limits`` (vmin, vmax) all share that colour scale and one
    colour bar. Returns the tiles' axes."""
    count = len(images)
    columns = min(8, count)
    rows = math.ceil(count / columns)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    shown = None
    for axis, image, title in zip(axes, images, titles):
        options = {} if limits is None or image.ndim == 3 else {"vmin": limits[0],
                                                                  "vmax": limits[1]}
        shown = axis.imshow(image, cmap=cmap, interpolation="nearest", **options)
        axis.set_title(title, fontsize=8)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[count:]:
        axis.set_visible(False)
    if limits is not None and shown is not None and images.ndim == 3:
        figure.colorbar(shown, ax=list(axes), shrink=0.8, label="weight")
    return axes


def plot_filters(layer, path=None, max_filters: int = 64):
    """The kernels of a 2-D convolution layer, one tile per output channel.

    All tiles share one colour scale, symmetric about 0 (``[-m, m]`` with m the largest
    ``|weight|``), in a diverging map with a colour bar, so that the sign and size of a weight
    read the same in every tile. Three input channels are shown as RGB (0 is mid-grey, on the
    same shared scale); with other counts than one or three, the mean over the input channels.

    Args:
        layer: a layer whose ``kernel`` has shape (kh, kw, in_channels, out_channels)
            (``layers.Conv2D``).
        path: write a PNG here (default ``None``).
        max_filters: show at most this many (default 64).
    """
    kernel = getattr(layer, "kernel", None)
    if kernel is None or np.ndim(getattr(kernel, "data", kernel)) != 4:
        raise ValueError(f"plot_filters: layer must have a 4-D kernel (kh, kw, in, out), as "
                         f"Conv2D (built); got {type(layer).__name__}")
    k = np.asarray(getattr(kernel, "data", kernel), dtype=np.float64)
    filters = np.moveaxis(k, 3, 0)[:max_filters]  # (out, kh, kw, in)
    m = float(np.max(np.abs(filters))) or 1.0
    # three channels: RGB on the shared symmetric scale mapped to [0, 1]; else the mean
    images = (filters + m) / (2 * m) if filters.shape[-1] == 3 else filters.mean(axis=-1)
    count = len(images)
    figure = _figure(1.3 * min(8, count) + 1.2, 1.4 * math.ceil(count / 8) + 0.5)
    _tiles(figure, images, [f"{i}" for i in range(count)], cmap="RdBu_r", limits=(-m, m))
    figure.suptitle(f"filters of {getattr(layer, 'name', 'layer')!r} "
                    f"({k.shape[0]}x{k.shape[1]}, {k.shape[2]} in)")
    return _finish(figure, path)


def plot_feature_maps(model, x, layer, path=None, max_maps: int = 32):
    """The feature maps one input produces at a convolution (or pooling) layer.

    Args:
        model: a Sequential model.
        x: one sample (without batch axis, e.g. (28, 28, 1) or (28, 28)) or a batch of one.
        layer: the layer (name, index into ``model.layers`` or the layer).
        path: write a PNG here (default ``None``).
        max_maps: show at most this many channels (default 32).
    """
    x = np.asarray(x)
    expected = getattr(model.layers[0], "input_shape", None)  # (None, H, W, C) once built
    if (x.ndim == len(expected) - 1) if expected is not None else x.ndim in (2, 3):
        x = x[None]  # one sample: add the batch axis
    if len(x) != 1:
        raise ValueError(f"plot_feature_maps: x must be one sample, got {len(x)}")
    maps = intermediate_output(model, x, layer)
    if maps.ndim != 4:
        raise ValueError(f"plot_feature_maps: the layer's output must be feature maps (N, H, "
                         f"W, C), got shape {maps.shape}")
    images = np.moveaxis(maps[0], -1, 0)[:max_maps]
    count = len(images)
    figure = _figure(1.3 * min(8, count), 1.4 * math.ceil(count / 8) + 0.4)
    _tiles(figure, images, [f"{i}" for i in range(count)], cmap="viridis")
    name = model.layers[_layer_index(model, layer)].name
    figure.suptitle(f"feature maps of {name!r} ({maps.shape[1]}x{maps.shape[2]})")
    return _finish(figure, path)
