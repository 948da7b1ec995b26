"""Augmentation: the resampling routine against scipy.ndimage, each transform's geometry and
statistics, the layers (training only, configs, seeds) and test-time augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nervenet
from nervenet import layers, models
from nervenet.data import augment
from nervenet.layers import augmentation as aug
from nervenet.models.tta import five_crops, predict_tta
from tests.layers.test_layer_harness import (
    test_config_round_trip_gives_identical_outputs as harness_config,
    test_output_shape_and_weight_counts as harness_shapes,
)

HARNESS = {
    "RandomFlip": (lambda: aug.RandomFlip(seed=0), (2, 5, 6, 3), (2, 5, 6, 3), 0, 0),
    "RandomRotation": (lambda: aug.RandomRotation(0.1, fill_mode="constant"), (2, 5, 5, 1),
                       (2, 5, 5, 1), 0, 0),
    "RandomTranslation": (lambda: aug.RandomTranslation((-0.1, 0.2), 0.1), (2, 5, 5, 1),
                          (2, 5, 5, 1), 0, 0),
    "RandomZoom": (lambda: aug.RandomZoom(0.5, interpolation="nearest"), (2, 5, 5, 1),
                   (2, 5, 5, 1), 0, 0),
    "RandomShear": (lambda: aug.RandomShear(0.2, 0.1, fill_mode="wrap"), (2, 5, 5, 1),
                    (2, 5, 5, 1), 0, 0),
    "RandomCrop": (lambda: aug.RandomCrop(3, 4, seed=1), (2, 5, 6, 3), (2, 3, 4, 3), 0, 0),
    "RandomContrast": (lambda: aug.RandomContrast(0.5, value_range=(-5, 5)), (2, 4, 4, 3),
                       (2, 4, 4, 3), 0, 0),
    "RandomBrightness": (lambda: aug.RandomBrightness(0.1, value_range=[-5, 5]), (2, 4, 4, 3),
                         (2, 4, 4, 3), 0, 0),
    "RandomPCAColor": (lambda: aug.RandomPCAColor(eigenvalues=[1.0, 2.0, 3.0],
                                                  eigenvectors=np.eye(3).tolist()),
                       (2, 4, 4, 3), (2, 4, 4, 3), 0, 0),
}


@pytest.mark.parametrize("name", sorted(HARNESS))
def test_layer_harness(name):
    harness_shapes(HARNESS[name])
    harness_config(HARNESS[name])
    factory, input_shape, output_shape, *_ = HARNESS[name]
    layer = factory()
    x = np.random.default_rng(0).uniform(-4, 4, input_shape).astype(np.float32)
    y = layer(x, training=True)
    assert y.shape == output_shape and y.dtype == np.float32
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()


SCIPY_MODES = {"reflect": "reflect", "mirror": "mirror", "wrap": "grid-wrap",
               "nearest": "nearest", "constant": "grid-constant"}


@pytest.mark.parametrize("fill_mode", sorted(SCIPY_MODES))
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_equals_scipy_map_coordinates(fill_mode, interpolation):
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    images = rng.normal(size=(3, 7, 9, 2))
    # rotations, zooms, shears and large shifts, so that points fall far outside the image
    # (no exact .5 coordinates: nearest-pixel ties are broken differently)
    transforms = np.concatenate([
        augment.rotation_transforms([0.3, -1.1, 2.5], 7, 9)[:1],
        augment.zoom_transforms([1.7], [0.6], 7, 9),
        augment.shear_transforms([0.4], [-0.3], 7, 9) + [[0, 0, 11.37, 0, 0, -8.71, 0, 0]],
    ])
    got = augment.affine_transform(images, transforms, interpolation, fill_mode, fill_value=-2.5)
    rows, cols = np.mgrid[0:7, 0:9].astype(np.float64)
    for i, t in enumerate(transforms):
        x_in = t[0] * cols + t[1] * rows + t[2]
        y_in = t[3] * cols + t[4] * rows + t[5]
        for c in range(2):
            expected = ndimage.map_coordinates(images[i, :, :, c], [y_in, x_in],
                                               order=1 if interpolation == "bilinear" else 0,
                                               mode=SCIPY_MODES[fill_mode], cval=-2.5)
            np.testing.assert_allclose(got[i, :, :, c], expected, atol=1e-12)


def test_geometry_of_each_transform():
    image = np.arange(16.0).reshape(1, 4, 4, 1)
    quarter_turn = augment.rotation_transforms([np.pi / 2], 4, 4)
    np.testing.assert_allclose(augment.affine_transform(image, quarter_turn)[0, ..., 0],
                               np.rot90(image[0, ..., 0]), atol=1e-12)  # counter-clockwise
    shift = augment.translation_transforms([1.0], [2.0])  # right 1, down 2
    moved = augment.affine_transform(image, shift, fill_mode="constant")[0, ..., 0]
    np.testing.assert_array_equal(moved[2:, 1:], image[0, :2, :3, 0])
    np.testing.assert_array_equal(moved[:2], 0.0)
    identity = augment.zoom_transforms([1.0], [1.0], 4, 4)
    np.testing.assert_array_equal(augment.affine_transform(image, identity), image)
    zoom_in = augment.zoom_transforms([0.5], [0.5], 5, 5)  # the center stays put
    big = np.arange(25.0).reshape(1, 5, 5, 1)
    assert augment.affine_transform(big, zoom_in)[0, 2, 2, 0] == big[0, 2, 2, 0]
    shear = augment.shear_transforms([1.0], [0.0], 3, 3)  # row y samples x + (y - 1)
    sheared = augment.affine_transform(np.arange(9.0).reshape(1, 3, 3, 1), shear,
                                       fill_mode="constant", fill_value=-1)[0, ..., 0]
    np.testing.assert_array_equal(sheared, [[-1, 0, 1], [3, 4, 5], [7, 8, -1]])


def test_flips_and_crops():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(400, 3, 4, 2))
    flipped = augment.random_flip(images, "horizontal", rng=0)
    changed = ~np.all(flipped == images, axis=(1, 2, 3))
    np.testing.assert_array_equal(flipped[changed], images[changed][:, :, ::-1])
    np.testing.assert_array_equal(flipped[~changed], images[~changed])
    assert abs(changed.mean() - 0.5) < 4 * 0.5 / np.sqrt(400)
    crops = augment.random_crop(images, 2, 2, rng=1)
    for image, window in zip(images[:20], crops[:20]):  # each crop is some window of its image
        assert any(np.array_equal(image[t:t + 2, s:s + 2], window)
                   for t in range(2) for s in range(3))
    np.testing.assert_array_equal(augment.center_crop(images, 1, 2), images[:, 1:2, 1:3])
    with pytest.raises(ValueError, match=r"the crop \(4, 4\) is larger than the images"):
        augment.random_crop(images, 4, 4)


def test_color_transforms():
    rng = np.random.default_rng(3)
    images = rng.uniform(50, 200, (6, 5, 5, 3)).astype(np.float32)
    contrast = augment.random_contrast(images, (0.5, 0.5), rng=4)
    mean = images.mean(axis=(1, 2), keepdims=True)
    factors = ((contrast - mean) / (images - mean)).reshape(6, -1)
    np.testing.assert_allclose(factors, factors[:, :1] * np.ones_like(factors), rtol=1e-3)
    assert np.all((factors >= 0.5 - 1e-3) & (factors <= 1.5 + 1e-3))
    bright = augment.random_brightness(images, 0.1, rng=5)
    deltas = (bright - images).reshape(6, -1)
    np.testing.assert_allclose(deltas, deltas[:, :1] * np.ones_like(deltas), atol=1e-3)
    assert np.all(np.abs(deltas) <= 25.5 + 1e-3)
    assert augment.random_brightness(images, (1.0, 1.0)).max() == 255  # clipped
    values, vectors = augment.pca_color_basis(images)
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, np.cov(pixels.T),
                               rtol=1e-8)
    shifted = augment.random_pca_color(images, values, vectors, stddev=0.1, rng=6)
    shifts = (shifted - images).reshape(6, -1, 3)
    np.testing.assert_allclose(shifts, shifts[:, :1] * np.ones_like(shifts), atol=1e-3)


def test_layers_are_active_in_training_only_and_reproducible():
    x = np.random.default_rng(4).uniform(0, 1, (8, 6, 6, 3)).astype(np.float32)
    for name in sorted(HARNESS):
        layer = HARNESS[name][0]()
        if name == "RandomCrop":
            np.testing.assert_array_equal(layer(x).data, augment.center_crop(x, 3, 4))
        else:
            np.testing.assert_array_equal(layer(x).data, x)
        assert not np.array_equal(layer(x, training=True).data, layer(x).data), name
    a, b = aug.RandomRotation(0.2, seed=7), aug.RandomRotation(0.2, seed=7)
    np.testing.assert_array_equal(a(x, training=True).data, b(x, training=True).data)
    with pytest.raises(ValueError, match="call adapt"):
        aug.RandomPCAColor()(x, training=True)
    pca = aug.RandomPCAColor(seed=0)
    pca.adapt(x)
    assert pca(x, training=True).shape == x.shape


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        aug.RandomRotation(0.1, fill_mode="edge")
    with pytest.raises(ValueError, match="mode must be one of"):
        aug.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="RandomZoom: height_factor must give a finite range"):
        aug.RandomZoom((-1.5, 0.2))
    with pytest.raises(ValueError, match="RandomCrop: height must be a positive int"):
        aug.RandomCrop(0, 3)
    with pytest.raises(ValueError, match=r"affine_transform: transforms must have shape"):
        augment.affine_transform(np.zeros((2, 3, 3, 1)), np.zeros((3, 8)))
    with pytest.raises(ValueError, match=r"images must have shape \(N, H, W, C\)"):
        augment.flip_horizontal(np.zeros((3, 3)))


def test_augmentation_in_a_model_and_test_time_augmentation():
    nervenet.utils.set_random_seed(5)
    model = models.Sequential([layers.Input(shape=(6, 6, 1)), aug.RandomFlip("horizontal"),
                               aug.RandomCrop(4, 4), layers.Flatten(), layers.Dense(2)])
    x = np.random.default_rng(5).normal(size=(10, 6, 6, 1)).astype(np.float32)
    y = np.random.default_rng(6).integers(0, 2, 10)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=5, verbose=0)
    assert model.predict(x).shape == (10, 2)
    # TTA: the mean of the predictions of the listed views
    views = [x, x[:, :, ::-1]]
    expected = np.mean([model.predict(v) for v in views], axis=0)
    np.testing.assert_allclose(predict_tta(model, x), expected, rtol=1e-6)
    crops = five_crops(4, 4)
    head = models.Sequential(model.layers[2:])  # the layers after the crop take 4x4 inputs
    expected = np.mean([head.predict(np.ascontiguousarray(t(x))) for t in crops], axis=0)
    np.testing.assert_allclose(predict_tta(head, x, crops), expected, rtol=1e-6)
    corners = [t(x) for t in crops]
    np.testing.assert_array_equal(corners[0], x[:, :4, :4])
    np.testing.assert_array_equal(corners[3], x[:, 2:, 2:])
    np.testing.assert_array_equal(corners[4], x[:, 1:5, 1:5])
    weighted = predict_tta(model, x, ["identity", "vertical_flip"], weights=[3, 1])
    np.testing.assert_allclose(weighted, 0.75 * model.predict(x)
                               + 0.25 * model.predict(np.ascontiguousarray(x[:, ::-1])),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="unknown transform 'mirror'"):
        predict_tta(model, x, ["mirror"])
