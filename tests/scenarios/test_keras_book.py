"""The book's chapter-10/11 Keras programs ("Hands-On Machine Learning", 3rd edition), written
as Keras code with only the import changed (``import nervenet as keras``), on the shipped data
sets (MNIST subset, California housing), with fewer epochs and samples to stay fast.

Thresholds: the worst of seeds 0-4 under both BLAS kernels (OPENBLAS_CORETYPE=Haswell and
unset), with a margin; the measured ranges are written beside each assertion. Keras reaches
similar values (the book: about 0.88 validation accuracy on Fashion MNIST, RMSE about 0.53-0.57
on California housing with the full data and 20 epochs).

The data loading is the one line that is not the book's: California housing comes from
nervenet's shipped file instead of scikit-learn's download (``fetch_california_housing``), and
the book's ``tf.summary`` writer is ``nervenet.summary``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import nervenet as keras
from nervenet.data import datasets

RMSE = "root_mean_squared_error"  # how Keras logs metrics=["RootMeanSquaredError"]

# --------------------------------------------------------------------------- the data


@pytest.fixture(scope="module")
def housing():
    return housing_data()


def housing_data():
    data, target, _ = datasets.load_california_housing()  # the book: fetch_california_housing
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(data))[:4000]  # a subset: the programs stay fast
    X_train_full, X_test, y_train_full, y_test = train_test_split(  # noqa: N806 (the book's)
        data[keep], target[keep], random_state=42)
    X_train, X_valid, y_train, y_valid = train_test_split(  # noqa: N806
        X_train_full, y_train_full, random_state=42)
    return X_train, X_valid, X_test, y_train, y_valid, y_test


def wide_deep_split(*arrays):
    return [(x[:, :5], x[:, 2:]) for x in arrays]


# ------------------------------------------------------------------------ the programs
def sequential_classifier(seed=42, epochs=5):
    mnist = keras.datasets.mnist.load_data()  # the book: fashion_mnist (a download)
    (X_train_full, y_train_full), (X_test, y_test) = mnist  # noqa: N806
    X_train, y_train = X_train_full[:-1000], y_train_full[:-1000]  # noqa: N806
    X_valid, y_valid = X_train_full[-1000:], y_train_full[-1000:]  # noqa: N806
    X_train, X_valid, X_test = X_train / 255., X_valid / 255., X_test / 255.  # noqa: N806

    keras.utils.set_random_seed(seed)
    model = keras.Sequential()
    model.add(keras.layers.Input(shape=[28, 28]))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(300, activation="relu"))
    model.add(keras.layers.Dense(100, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lines = []
    model.summary(print_fn=lines.append)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd",
                  metrics=["accuracy"])
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid),
                        verbose=0)
    test_loss, test_accuracy = model.evaluate(X_test, y_test, verbose=0)
    X_new = X_test[:3]  # noqa: N806
    y_proba = model.predict(X_new, verbose=0)
    y_pred = y_proba.argmax(axis=-1)
    return dict(summary="\n".join(lines), history=history.history, accuracy=test_accuracy,
                y_proba=y_proba, y_pred=y_pred, y_new=y_test[:3])


def regression_mlp(data, seed=42, epochs=10):
    X_train, X_valid, X_test, y_train, y_valid, y_test = data  # noqa: N806
    keras.utils.set_random_seed(seed)
    norm_layer = keras.layers.Normalization(input_shape=X_train.shape[1:])
    model = keras.Sequential([
        norm_layer,
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dense(1)
    ])
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss="mse", optimizer=optimizer, metrics=["RootMeanSquaredError"])
    norm_layer.adapt(X_train)
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid),
                        verbose=0)
    mse_test, rmse_test = model.evaluate(X_test, y_test, verbose=0)
    y_pred = model.predict(X_test[:3], verbose=0)
    return dict(model=model, history=history.history, mse=mse_test, rmse=rmse_test,
                y_pred=y_pred)


def wide_and_deep_one_input(data, seed=42, epochs=10):
    X_train, X_valid, X_test, y_train, y_valid, y_test = data  # noqa: N806
    keras.utils.set_random_seed(seed)
    normalization_layer = keras.layers.Normalization()
    hidden_layer1 = keras.layers.Dense(30, activation="relu")
    hidden_layer2 = keras.layers.Dense(30, activation="relu")
    concat_layer = keras.layers.Concatenate()
    output_layer = keras.layers.Dense(1)

    input_ = keras.layers.Input(shape=X_train.shape[1:])
    normalized = normalization_layer(input_)
    hidden1 = hidden_layer1(normalized)
    hidden2 = hidden_layer2(hidden1)
    concat = concat_layer([normalized, hidden2])
    output = output_layer(concat)

    model = keras.Model(inputs=[input_], outputs=[output])
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss="mse", optimizer=optimizer, metrics=["RootMeanSquaredError"])
    normalization_layer.adapt(X_train)
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid),
                        verbose=0)
    mse_test = model.evaluate(X_test, y_test, verbose=0)
    y_pred = model.predict(X_test[:3], verbose=0)
    return dict(history=history.history, mse=mse_test[0], y_pred=y_pred)


def _two_input_graph():
    input_wide = keras.layers.Input(shape=[5])  # features 0 to 4
    input_deep = keras.layers.Input(shape=[6])  # features 2 to 7
    norm_layer_wide = keras.layers.Normalization()
    norm_layer_deep = keras.layers.Normalization()
    norm_wide = norm_layer_wide(input_wide)
    norm_deep = norm_layer_deep(input_deep)
    hidden1 = keras.layers.Dense(30, activation="relu")(norm_deep)
    hidden2 = keras.layers.Dense(30, activation="relu")(hidden1)
    concat = keras.layers.concatenate([norm_wide, hidden2])
    return (input_wide, input_deep), (norm_layer_wide, norm_layer_deep), hidden2, concat


def wide_and_deep_two_inputs(data, seed=42, epochs=10):
    X_train, X_valid, X_test, y_train, y_valid, y_test = data  # noqa: N806
    keras.utils.set_random_seed(seed)
    (input_wide, input_deep), (norm_layer_wide, norm_layer_deep), _, concat = \
        _two_input_graph()
    output = keras.layers.Dense(1)(concat)
    model = keras.Model(inputs=[input_wide, input_deep], outputs=[output])

    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss="mse", optimizer=optimizer, metrics=["RootMeanSquaredError"])

    X_train_wide, X_train_deep = X_train[:, :5], X_train[:, 2:]  # noqa: N806
    X_valid_wide, X_valid_deep = X_valid[:, :5], X_valid[:, 2:]  # noqa: N806
    X_test_wide, X_test_deep = X_test[:, :5], X_test[:, 2:]  # noqa: N806
    X_new_wide, X_new_deep = X_test_wide[:3], X_test_deep[:3]  # noqa: N806

    norm_layer_wide.adapt(X_train_wide)
    norm_layer_deep.adapt(X_train_deep)
    history = model.fit((X_train_wide, X_train_deep), y_train, epochs=epochs,
                        validation_data=((X_valid_wide, X_valid_deep), y_valid), verbose=0)
    mse_test = model.evaluate((X_test_wide, X_test_deep), y_test, verbose=0)
    y_pred = model.predict((X_new_wide, X_new_deep), verbose=0)
    return dict(history=history.history, mse=mse_test[0], y_pred=y_pred)


def wide_and_deep_two_outputs(data, seed=42, epochs=10):
    X_train, X_valid, X_test, y_train, y_valid, y_test = data  # noqa: N806
    keras.utils.set_random_seed(seed)
    (input_wide, input_deep), (norm_layer_wide, norm_layer_deep), hidden2, concat = \
        _two_input_graph()
    output = keras.layers.Dense(1)(concat)
    aux_output = keras.layers.Dense(1)(hidden2)
    model = keras.Model(inputs=[input_wide, input_deep],
                               outputs=[output, aux_output])
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss=("mse", "mse"), loss_weights=(0.9, 0.1), optimizer=optimizer,
                  metrics=["RootMeanSquaredError"])

    (X_train_wide, X_train_deep), (X_valid_wide, X_valid_deep), (X_test_wide, X_test_deep) = \
        wide_deep_split(X_train, X_valid, X_test)  # noqa: N806
    X_new_wide, X_new_deep = X_test_wide[:3], X_test_deep[:3]  # noqa: N806
    norm_layer_wide.adapt(X_train_wide)
    norm_layer_deep.adapt(X_train_deep)
    history = model.fit(
        (X_train_wide, X_train_deep), (y_train, y_train), epochs=epochs,
        validation_data=((X_valid_wide, X_valid_deep), (y_valid, y_valid)), verbose=0)
    eval_results = model.evaluate((X_test_wide, X_test_deep), (y_test, y_test), verbose=0)
    weighted_sum_of_losses, main_loss, aux_loss, main_rmse, aux_rmse = eval_results
    y_pred_main, y_pred_aux = model.predict((X_new_wide, X_new_deep), verbose=0)
    y_pred_tuple = model.predict((X_new_wide, X_new_deep), verbose=0)
    y_pred = dict(zip(model.output_names, y_pred_tuple))
    return dict(model=model, history=history.history, total=weighted_sum_of_losses,
                main_loss=main_loss, aux_loss=aux_loss, main_rmse=main_rmse, aux_rmse=aux_rmse,
                y_pred=y_pred, y_pred_main=y_pred_main, y_pred_aux=y_pred_aux)


class WideAndDeepModel(keras.Model):
    def __init__(self, units=30, activation="relu", **kwargs):
        super().__init__(**kwargs)  # needed to support naming the model
        self.norm_layer_wide = keras.layers.Normalization()
        self.norm_layer_deep = keras.layers.Normalization()
        self.hidden1 = keras.layers.Dense(units, activation=activation)
        self.hidden2 = keras.layers.Dense(units, activation=activation)
        self.main_output = keras.layers.Dense(1)
        self.aux_output = keras.layers.Dense(1)

    def call(self, inputs):
        input_wide, input_deep = inputs
        norm_wide = self.norm_layer_wide(input_wide)
        norm_deep = self.norm_layer_deep(input_deep)
        hidden1 = self.hidden1(norm_deep)
        hidden2 = self.hidden2(hidden1)
        concat = keras.layers.concatenate([norm_wide, hidden2])
        output = self.main_output(concat)
        aux_output = self.aux_output(hidden2)
        return output, aux_output


def subclassed_wide_and_deep(data, seed=42, epochs=10, callbacks=None):
    X_train, X_valid, X_test, y_train, y_valid, y_test = data  # noqa: N806
    keras.utils.set_random_seed(seed)
    model = WideAndDeepModel(30, activation="relu", name="my_cool_model")
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss="mse", loss_weights=[0.9, 0.1], optimizer=optimizer,
                  metrics=["RootMeanSquaredError"])
    (X_train_wide, X_train_deep), (X_valid_wide, X_valid_deep), (X_test_wide, X_test_deep) = \
        wide_deep_split(X_train, X_valid, X_test)  # noqa: N806
    X_new_wide, X_new_deep = X_test_wide[:3], X_test_deep[:3]  # noqa: N806
    model.norm_layer_wide.adapt(X_train_wide)
    model.norm_layer_deep.adapt(X_train_deep)
    history = model.fit(
        (X_train_wide, X_train_deep), (y_train, y_train), epochs=epochs,
        validation_data=((X_valid_wide, X_valid_deep), (y_valid, y_valid)), verbose=0,
        callbacks=callbacks)
    eval_results = model.evaluate((X_test_wide, X_test_deep), (y_test, y_test), verbose=0)
    weighted_sum_of_losses, main_loss, aux_loss, main_rmse, aux_rmse = eval_results
    y_pred_main, y_pred_aux = model.predict((X_new_wide, X_new_deep), verbose=0)
    return dict(model=model, history=history.history, total=weighted_sum_of_losses,
                main_loss=main_loss, aux_loss=aux_loss, main_rmse=main_rmse, aux_rmse=aux_rmse,
                y_pred_main=y_pred_main, y_pred_aux=y_pred_aux)


def callbacks_program(data, seed=42, epochs=30):
    X_train, X_valid, X_test, y_train, y_valid, y_test = data  # noqa: N806
    printed = []

    class PrintValTrainRatioCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs):
            ratio = logs["val_loss"] / logs["loss"]
            printed.append(f"Epoch={epoch}, val/train={ratio:.2f}")

    checkpoint_cb = keras.callbacks.ModelCheckpoint("my_checkpoints", save_weights_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    result = subclassed_wide_and_deep(
        data, seed=seed, epochs=epochs,
        callbacks=[checkpoint_cb, early_stopping_cb, PrintValTrainRatioCallback()])
    return dict(result, printed=printed)


def mc_dropout(seed=42, epochs=3):
    mnist = keras.datasets.mnist.load_data()
    (X_train_full, y_train_full), (X_test, y_test) = mnist  # noqa: N806
    X_train, y_train = X_train_full / 255., y_train_full  # noqa: N806
    X_test = X_test[:300] / 255.  # noqa: N806
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.layers.Flatten(input_shape=[28, 28]),
        keras.layers.Dropout(rate=0.2),
        keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal"),
        keras.layers.Dropout(rate=0.2),
        keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal"),
        keras.layers.Dropout(rate=0.2),
        keras.layers.Dense(10, activation="softmax")
    ])
    optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer,
                  metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=epochs, verbose=0)
    y_probas = np.stack([model(X_test, training=True) for sample in range(20)])
    y_proba = y_probas.mean(axis=0)
    y_pred = y_proba.argmax(axis=1)
    accuracy = (y_pred == y_test[:300]).sum() / len(y_test[:300])
    return dict(model=model, X_test=X_test, y_probas=y_probas, accuracy=accuracy)


# --------------------------------------------------------------------------- the tests
def test_sequential_classifier():
    result = sequential_classifier()
    assert "Total params: 266,610" in result["summary"]
    history = result["history"]
    assert list(history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history["loss"][-1] < history["loss"][0]
    assert result["accuracy"] > 0.82  # seeds 0-4, both kernels: 0.851-0.865; 42: 0.849
    assert result["y_proba"].shape == (3, 10)
    np.testing.assert_allclose(result["y_proba"].sum(axis=1), 1.0, rtol=1e-5)


def test_regression_mlp_with_normalization(housing):
    result = regression_mlp(housing)
    assert list(result["history"]) == ["loss", RMSE, "val_loss", f"val_{RMSE}"]
    assert result["rmse"] == pytest.approx(np.sqrt(result["mse"]), rel=1e-4)
    assert result["rmse"] < 0.67  # seeds 0-4, both kernels: 0.589-0.616
    assert result["y_pred"].shape == (3, 1)
    summary = []
    result["model"].summary(print_fn=summary.append)
    assert "Non-trainable params: 17" in "\n".join(summary)  # Normalization's, as Keras


def test_functional_wide_and_deep_with_one_input(housing):
    result = wide_and_deep_one_input(housing)
    assert np.sqrt(result["mse"]) < 0.72  # seeds 0-4, both kernels: 0.623-0.661
    assert result["y_pred"].shape == (3, 1)


def test_functional_wide_and_deep_with_two_inputs(housing):
    result = wide_and_deep_two_inputs(housing)
    assert np.sqrt(result["mse"]) < 0.75  # seeds 0-4, both kernels: 0.648-0.692
    assert result["y_pred"].shape == (3, 1)


def test_functional_wide_and_deep_with_two_outputs(housing, tmp_path, monkeypatch):
    result = wide_and_deep_two_outputs(housing)
    main, aux = result["model"].output_names  # the output layers' names, as Keras
    logged = ["loss", f"{main}_loss", f"{aux}_loss", f"{main}_{RMSE}", f"{aux}_{RMSE}"]
    assert list(result["history"]) == logged + [f"val_{key}" for key in logged]
    assert result["total"] == pytest.approx(0.9 * result["main_loss"]
                                            + 0.1 * result["aux_loss"], rel=1e-5)
    assert result["main_rmse"] < 0.77  # seeds 0-4, both kernels: 0.646-0.709
    assert list(result["y_pred"]) == result["model"].output_names
    # saving and restoring, as the book writes it
    monkeypatch.chdir(tmp_path)
    model = result["model"]
    with pytest.warns(UserWarning, match="nervenet writes its own model file"):
        model.save("my_keras_model", save_format="tf")
    model = keras.models.load_model("my_keras_model")
    X_new_wide, X_new_deep = housing[2][:3, :5], housing[2][:3, 2:]  # noqa: N806
    y_pred_main, y_pred_aux = model.predict((X_new_wide, X_new_deep), verbose=0)
    np.testing.assert_allclose(y_pred_main, result["y_pred_main"], rtol=1e-6)
    model.save_weights("my_weights")
    model.load_weights("my_weights")


def test_subclassed_wide_and_deep(housing):
    result = subclassed_wide_and_deep(housing)
    logged = ["loss", "output_1_loss", "output_2_loss", f"output_1_{RMSE}", f"output_2_{RMSE}"]
    assert list(result["history"]) == logged + [f"val_{key}" for key in logged]
    assert result["total"] == pytest.approx(0.9 * result["main_loss"]
                                            + 0.1 * result["aux_loss"], rel=1e-5)
    assert result["main_rmse"] < 0.77  # seeds 0-4, both kernels: 0.646-0.709
    assert result["y_pred_main"].shape == result["y_pred_aux"].shape == (3, 1)


def test_callbacks_checkpoint_early_stopping_and_a_custom_one(housing, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = callbacks_program(housing)
    val_losses = result["history"]["val_loss"]
    epochs, best = len(val_losses), min(val_losses)
    # seeds 0-4, both kernels: stopped after 15-25 of the 30 epochs, 2 after the best
    assert epochs == 30 or val_losses.index(best) == epochs - 3
    assert result["printed"][0].startswith("Epoch=0, val/train=")
    assert len(result["printed"]) == epochs
    X_train, X_valid = housing[0], housing[1]  # noqa: N806
    restored = WideAndDeepModel(30, activation="relu")
    restored.norm_layer_wide.adapt(X_train[:, :5])
    restored.norm_layer_deep.adapt(X_train[:, 2:])
    restored((X_train[:1, :5], X_train[:1, 2:]))  # built, as Keras needs before load_weights
    restored.load_weights("my_checkpoints")  # the last epoch's weights
    restored.compile(loss="mse", loss_weights=[0.9, 0.1], optimizer="adam")
    y_valid = housing[4]
    final = restored.evaluate((X_valid[:, :5], X_valid[:, 2:]), (y_valid, y_valid),
                              verbose=0)[0]
    assert final == pytest.approx(result["history"]["val_loss"][-1], rel=1e-5)
    model = result["model"]  # restore_best_weights: the best epoch's weights
    now = model.evaluate((X_valid[:, :5], X_valid[:, 2:]), (y_valid, y_valid), verbose=0)[0]
    assert now == pytest.approx(best, rel=1e-5)


def test_tensorboard(housing, tmp_path, monkeypatch):
    from pathlib import Path
    from time import strftime

    monkeypatch.chdir(tmp_path)

    def get_run_logdir(root_logdir="my_logs"):
        return Path(root_logdir) / strftime("run_%Y_%m_%d_%H_%M_%S")

    run_logdir = get_run_logdir()
    with pytest.warns(UserWarning, match="profile_batch"):  # TensorFlow's profiler: no effect
        tensorboard_cb = keras.callbacks.TensorBoard(run_logdir, profile_batch=(100, 200))
    subclassed_wide_and_deep(housing, epochs=2, callbacks=[tensorboard_cb])
    events = sorted(p.parent.name for p in run_logdir.rglob("events.out.tfevents.*"))
    assert events == ["train", "validation"]

    test_logdir = get_run_logdir() / "test"
    writer = keras.summary.create_file_writer(str(test_logdir))  # tf.summary in the book
    with writer.as_default():
        for step in range(1, 20 + 1):
            keras.summary.scalar("my_scalar", np.sin(step / 10), step=step)
            data = (np.random.default_rng(step).standard_normal(100) + 2) * step / 20
            keras.summary.histogram("my_hist", data, buckets=50, step=step)
    assert list(test_logdir.glob("events.out.tfevents.*"))


def test_mc_dropout():
    result = mc_dropout()
    y_probas = result["y_probas"]
    assert y_probas.shape == (20, 300, 10)
    assert not np.allclose(y_probas[0], y_probas[1])  # every call draws new masks
    assert y_probas.std(axis=0).max() > 0.05
    plain = result["model"].predict(result["X_test"], verbose=0)
    np.testing.assert_allclose(plain, result["model"](result["X_test"]).numpy(), atol=1e-6)
    assert result["accuracy"] > 0.86  # seeds 0-4, both kernels: 0.897-0.913
