"""Every viz function writes a PNG (Agg, no window) and returns its Figure; skipped without
matplotlib. ``import nervenet`` must not import matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nervenet
from nervenet import layers, models, viz
from nervenet.data import datasets
from tests.scripts import modules_left_imported

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"

matplotlib = pytest.importorskip("matplotlib")


def _png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG
    assert path.stat().st_size > 5000  # something was drawn


def test_import_nervenet_does_not_import_matplotlib():
    assert modules_left_imported("import nervenet, nervenet.viz", ("matplotlib",)) == []


@pytest.fixture(scope="module")
def xor_model():
    nervenet.utils.set_random_seed(0)
    x, y = datasets.xor()
    model = models.Sequential([layers.Input(shape=(2,)),
                               layers.Dense(2, activation="tanh", name="hidden"),
                               layers.Dense(1, activation="sigmoid", name="out")])
    model.compile(nervenet.optimizers.Adam(learning_rate=0.1), "binary_crossentropy")
    history = model.fit(x, y[:, None], epochs=150, batch_size=4, verbose=0,
                        validation_data=(x, y[:, None]))
    return model, x, y, history


def test_plot_history(tmp_path, xor_model):
    figure = viz.plot_history(xor_model[3], tmp_path / "history.png")
    _png(tmp_path / "history.png")
    (axis,) = figure.axes
    assert axis.get_title() == "loss"
    train_line, val_line = axis.get_lines()
    np.testing.assert_allclose(train_line.get_ydata(), xor_model[3].history["loss"])
    with pytest.raises(ValueError, match="History"):
        viz.plot_history({})


def test_plot_decision_boundary(tmp_path, xor_model):
    model, x, y, _ = xor_model
    assert ((model.predict(x)[:, 0] > 0.5) == y).all()  # the net solved XOR
    figure = viz.plot_decision_boundary(model, x, y, tmp_path / "boundary.png", resolution=50)
    _png(tmp_path / "boundary.png")
    assert len(figure.axes) == 1
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        viz.plot_decision_boundary(model, np.zeros((3, 3)), np.zeros(3))


def test_plot_activations(tmp_path):
    figure = viz.plot_activations(["sigmoid", "relu", "tanh"], tmp_path / "act.png")
    _png(tmp_path / "act.png")
    axes = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["sigmoid", "relu", "tanh"]
    f, derivative = axes[0].get_lines()[:2]
    x = f.get_xdata()
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(f.get_ydata(), s, rtol=1e-6)
    np.testing.assert_allclose(derivative.get_ydata(), s * (1 - s), rtol=1e-5, atol=1e-7)


def test_plot_feature_space_makes_xor_separable(tmp_path, xor_model):
    model, x, y, _ = xor_model
    figure = viz.plot_feature_space(model, x, y, "hidden", tmp_path / "space.png")
    _png(tmp_path / "space.png")
    h = viz.intermediate_output(model, x, "hidden")
    out = model.get_layer("out")
    net = h @ out.kernel.data[:, 0] + out.bias.data[0]
    assert ((net > 0) == (y == 1)).all()  # one straight line separates XOR in h-space
    assert "output boundary" in [t.get_text() for t in figure.axes[1].get_legend().get_texts()]


def test_plot_loss_surface_restores_weights(tmp_path, xor_model):
    model, x, y, _ = xor_model
    before = model.get_weights()
    figure = viz.plot_loss_surface(model, x, y[:, None], tmp_path / "surface.png",
                                   resolution=7)
    _png(tmp_path / "surface.png")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(figure.axes) >= 2


class _TinyConv(layers.Layer):
    """A stand-in 2-D convolution built from F.conv2d, for when layers.Conv2D is absent."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (3, 3, input_shape[-1], self.filters))

    def call(self, inputs):
        return nervenet.functional.conv2d(inputs, self.kernel, padding="same")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)


def _conv_layer(filters):
    if hasattr(layers, "Conv2D"):
        return layers.Conv2D(filters, 3, padding="same", name="conv")
    return _TinyConv(filters, name="conv")


def test_plot_filters_and_feature_maps(tmp_path):
    nervenet.utils.set_random_seed(1)
    model = models.Sequential([layers.Input(shape=(12, 12, 1)), _conv_layer(6),
                               layers.Flatten(), layers.Dense(2)])
    image = np.zeros((12, 12, 1), dtype=np.float32)
    image[3:9, 6] = 1.0  # a vertical bar
    model(image[None])
    conv = model.get_layer("conv")
    figure = viz.plot_filters(conv, tmp_path / "filters.png")
    _png(tmp_path / "filters.png")
    shown = [a for a in figure.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert len(shown) == 6
    np.testing.assert_allclose(shown[2].get_images()[0].get_array(),
                               conv.kernel.data[:, :, 0, 2])
    figure = viz.plot_feature_maps(model, image, "conv", tmp_path / "maps.png")
    _png(tmp_path / "maps.png")
    maps = viz.intermediate_output(model, image[None], "conv")
    shown = [a for a in figure.axes if a.get_visible()]
    np.testing.assert_allclose(shown[0].get_images()[0].get_array(), maps[0, :, :, 0])
    with pytest.raises(ValueError, match="4-D kernel"):
        viz.plot_filters(model.layers[-1])


def _texts_inside(figure) -> list[str]:
    """What is drawn outside the figure: every visible axes (its tick labels, axis labels,
    title, legend) and figure-level text, by the renderer's bounding boxes. ``[]`` is good."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = figure.bbox
    outside = []
    for artist in [a for a in figure.axes if a.get_visible()] + figure.texts + figure.legends:
        extent = artist.get_tightbbox(renderer) if hasattr(artist, "get_tightbbox") else (
            artist.get_window_extent(renderer))
        if extent is None:
            continue
        if (extent.x0 < box.x0 - 1 or extent.y0 < box.y0 - 1 or extent.x1 > box.x1 + 1
                or extent.y1 > box.y1 + 1):
            outside.append(getattr(artist, "get_title", artist.get_label)() or
                           artist.get_label())
    return outside


def test_no_plot_puts_text_outside_its_figure(xor_model):
    model, x, y, history = xor_model
    short = {key: values[:3] for key, values in history.history.items()}
    figures = [viz.plot_history(short),
               viz.plot_decision_boundary(model, x, y, resolution=20,
                                          feature_names=["input A", "input B"],
                                          class_names=["off", "on"]),
               viz.plot_feature_space(model, x, y, "hidden", class_names=["off", "on"]),
               viz.plot_loss_surface(model, x, y[:, None], resolution=5),
               viz.plot_activations(["relu", "tanh"])]
    for figure in figures:
        assert _texts_inside(figure) == []


def test_epoch_ticks_are_integers_on_short_runs(xor_model):
    short = {key: values[:3] for key, values in xor_model[3].history.items()}
    figure = viz.plot_history(short)
    _texts_inside(figure)  # draws it
    for axis in figure.axes:
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        labels = [label.get_text() for label in axis.get_xticklabels() if label.get_text()]
        assert all(label.lstrip("−-").isdigit() for label in labels), labels


def test_filters_share_one_symmetric_scale_with_a_colour_bar():
    nervenet.utils.set_random_seed(2)
    conv = _conv_layer(4)
    models.Sequential([layers.Input(shape=(8, 8, 1)), conv])(np.zeros((1, 8, 8, 1)))
    figure = viz.plot_filters(conv)
    images = [image for axis in figure.axes for image in axis.get_images()]
    m = float(np.abs(conv.kernel.data).max())
    assert len(images) == 4 and all(image.get_clim() == (-m, m) for image in images)
    bars = [axis for axis in figure.axes if axis.get_label() == "<colorbar>"]
    assert len(bars) == 1 and _texts_inside(figure) == []


def test_palette_is_distinct_and_readable_on_white():
    from matplotlib.colors import to_rgb

    def luminance(color):
        channels = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
                    for c in to_rgb(color)]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    assert len(set(viz.PALETTE)) == len(viz.PALETTE) >= 3
    for color in viz.PALETTE:  # WCAG contrast ratio against white
        assert 1.05 / (luminance(color) + 0.05) >= 2.0, color


def test_decision_boundary_of_estimators_ours_and_scikit_learns(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from nervenet.sklearn import MLPClassifier

    x, y = datasets.make_moons(80, noise=0.1, seed=0)
    names = np.array(["left", "right"])[y]  # string labels: matched through classes_
    for estimator in (LogisticRegression().fit(x, names),
                      MLPClassifier(hidden_layer_sizes=(8,), max_iter=20,
                                    random_state=0).fit(x, names)):
        figure = viz.plot_decision_boundary(estimator, x, names, resolution=30)
        legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
        assert legend == ["left", "right"]
        assert figure.axes[0].collections  # regions, contour and points were drawn


def test_plot_gradient_flow_from_a_monitor(tmp_path, xor_model):
    model, x, y, _ = xor_model
    monitor = nervenet.callbacks.GradientMonitor(x, y[:, None])
    model.fit(x, y[:, None], epochs=3, verbose=0, callbacks=[monitor])
    figure = viz.plot_gradient_flow(monitor, tmp_path / "flow.png")
    _png(tmp_path / "flow.png")
    left, right = figure.axes[:2]
    assert len(left.get_lines()) == 3  # one line per epoch
    np.testing.assert_allclose(left.get_lines()[-1].get_ydata(),
                               [monitor.history["grad_norm/hidden"][-1],
                                monitor.history["grad_norm/out"][-1]])
    assert any(axis.get_label() == "<colorbar>" for axis in figure.axes)
    assert _texts_inside(figure) == []
    with pytest.raises(ValueError, match="GradientMonitor"):
        viz.plot_gradient_flow({})
