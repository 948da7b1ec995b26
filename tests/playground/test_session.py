"""Sessions: independent tabs, the stream's end stopping the thread, clean shutdown, the
course's networks, the frames' contents and the exported script."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nervenet.playground import Session, network, validate
from tests.playground.helpers import next_event


def _wait(predicate, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _step(session: Session, epochs: int) -> None:
    for _ in range(epochs):
        session.submit("action", "step")


@pytest.fixture
def sessions():
    made = []

    def make(**setup):
        made.append(Session(validate(setup)))
        return made[-1]

    yield make
    for session in made:
        session.close()
        session.thread.join(10)


# ------------------------------------------------------------------------ threads, streams
def test_two_sessions_train_independently(client, server):
    a = client.new_session(dataset="xor", learning_rate=0.1)
    b = client.new_session(dataset="circle", hidden=[3])
    streams = [client.open_stream(a), client.open_stream(b)]
    first = next_event(streams[0][1])
    assert first["session"] == a and first["epoch"] == 0
    assert next_event(streams[1][1])["session"] == b
    client.call("POST", f"/api/sessions/{a}/action", {"action": "play"})
    assert _wait(lambda: server.sessions[a].epoch > 5)
    assert server.sessions[b].epoch == 0  # b was not started
    client.call("POST", f"/api/sessions/{b}/action", {"action": "play"})
    client.call("POST", f"/api/sessions/{a}/action", {"action": "pause"})
    paused_at = server.sessions[a].epoch
    assert _wait(lambda: server.sessions[b].epoch > 5)
    assert server.sessions[a].epoch == paused_at
    assert server.sessions[a].setup["dataset"] == "xor"
    assert server.sessions[b].setup["hidden"] == [3]
    event = next_event(streams[1][1])
    assert event["session"] == b and event["playing"]
    for connection, _ in streams:
        connection.close()


def test_closed_stream_stops_the_thread(client, server):
    session = client.new_session(dataset="xor")
    thread = server.sessions[session].thread
    connection, response = client.open_stream(session)
    next_event(response)
    assert client.call("POST", f"/api/sessions/{session}/action", {"action": "play"})[0] == 200
    second = client.call("GET", f"/api/sessions/{session}/events")
    assert second[0] == 409  # one stream per session
    response.close()
    connection.close()
    assert _wait(lambda: not thread.is_alive(), 10)
    assert session not in server.sessions
    assert client.call("GET", f"/api/sessions/{session}/state")[0] == 404


def test_shutdown_ends_sessions_and_streams(server, client):
    session = client.new_session()
    thread = server.sessions[session].thread
    connection, response = client.open_stream(session)
    next_event(response)
    client.call("POST", f"/api/sessions/{session}/action", {"action": "play"})
    server.shutdown()
    server.server_close()
    assert not thread.is_alive() and server.sessions == {}
    assert _wait(lambda: response.fp.readline() == b"", 5)  # the stream ended
    connection.close()


def test_ctrl_c_stops_the_command_cleanly():
    process = subprocess.Popen([sys.executable, "-m", "nervenet", "playground", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
        assert url, line
        import urllib.request

        with urllib.request.urlopen(url.group(1), timeout=10) as page:
            assert page.status == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        output = process.stdout.read()
        assert "stopping" in output and "Traceback" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_cli_refuses_a_bad_port():
    result = subprocess.run([sys.executable, "-m", "nervenet", "playground", "--no-browser",
                             "--port", "70000"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "port" in result.stderr


# ----------------------------------------------------------------------------- frames
def _decode(text: str, side: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(side, side)


def test_frame_contents(sessions):
    session = sessions(dataset="circle", hidden=[3, 2], features=["x1", "x2", "x1sq"])
    _step(session, 2)
    frame = json.loads(session.frame)
    heatmap = _decode(frame["heatmap"], 100)
    predicted = session.model.predict(session.grid, verbose=0)[:, 0]
    np.testing.assert_allclose(heatmap.ravel(), np.rint(predicted * 255), atol=1)
    assert [len(layer) for layer in frame["neurons"]] == [3, 2]
    assert _decode(frame["neurons"][0][0], 25).shape == (25, 25)
    assert [np.array(w["kernel"]).shape for w in frame["weights"]] == [(3, 3), (3, 2), (2, 1)]
    assert [row[0] for row in frame["history"]] == [0, 1, 2]
    assert frame["loss_test"] == pytest.approx(session.loss_test)
    assert [name for name, _ in frame["gradients"]] == ["hidden_1", "hidden_2", "output"]


def test_vanishing_gradients_visible_in_deep_sigmoid_networks(sessions):
    deep = sessions(dataset="circle", hidden=[8] * 6, activation="sigmoid")
    norms = dict(json.loads(deep.frame)["gradients"])
    # each sigmoid layer multiplies the gradient by at most 1/4: the first layer gets least
    assert norms["hidden_1"] < 0.1 * norms["output"]


# --------------------------------------------------------------------- course networks
def test_perceptron_learns_separable_data_not_xor(sessions):
    gauss = sessions(mode="perceptron", hidden=[], activation="step", dataset="gauss",
                     learning_rate=0.1)
    assert gauss.model.get_layer("output").activation.__name__ == "step"
    _step(gauss, 10)
    assert gauss.loss_train == 0.0  # two far Gaussians: Rosenblatt's rule converges
    xor = sessions(mode="perceptron", hidden=[], activation="step", dataset="xor_gate")
    _step(xor, 20)
    # no line separates XOR: some corner is always wrong, and every point there with it
    corners = [np.mean(np.all(xor.x_train == c, axis=1)) for c in ([0, 0], [0, 1], [1, 0],
                                                                   [1, 1])]
    assert min(row[1] for row in xor.history) >= min(corners) - 1e-6 > 0


def test_fixed_xor_network_and_its_feature_space(sessions):
    fixed = sessions(mode="fixed", dataset="xor_gate", hidden=[2], activation="step",
                     samples=40)
    assert fixed.loss_train == 0.0 and fixed.loss_test == 0.0
    for got, want in zip(fixed.model.get_weights(), network.XOR_WEIGHTS):
        np.testing.assert_array_equal(got, want)
    space = json.loads(fixed.frame)["feature_space"]
    corners = {tuple(x): tuple(h) for x, h in zip(fixed.x_train.tolist(), space["points"])}
    assert corners[(0.0, 0.0)] == (1.0, 0.0) and corners[(1.0, 1.0)] == (0.0, 1.0)
    assert corners[(0.0, 1.0)] == (1.0, 1.0) == corners[(1.0, 0.0)]  # NAND, OR
    assert space["boundary"] == [1.0, 1.0, -1.5]  # the AND unit's line h1 + h2 = 1.5
    with pytest.raises(ValueError, match="does not learn"):
        fixed.submit("action", "play")
    fixed.submit("weight", {"layer": 1, "row": None, "unit": 0, "value": -0.5})  # AND -> OR
    # OR(NAND, OR) is 1 everywhere: every point of class 0 is now wrong
    assert fixed.loss_train == pytest.approx(np.mean(fixed.y_train == 0))
    steep = sessions(mode="fixed", dataset="xor_gate", hidden=[2], activation="sigmoid",
                     sigmoid_a=10.0, samples=40)
    gentle = sessions(mode="fixed", dataset="xor_gate", hidden=[2], activation="sigmoid",
                      sigmoid_a=1.0, samples=40)
    # sigmoid(a z) tends to the step as a grows
    assert steep.loss_train < 1e-3 < gentle.loss_train


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adagrad", "rmsprop", "adam",
                                       "lbfgs", "newton"])
def test_every_optimizer_lowers_the_loss(sessions, optimizer):
    rate = {"adagrad": 0.1, "rmsprop": 0.01, "adam": 0.01}.get(optimizer, 0.03)
    session = sessions(dataset="xor", hidden=[4], optimizer=optimizer, learning_rate=rate,
                       samples=200)
    start = session.loss_train
    _step(session, 5)
    assert session.epoch == 5 and session.loss_train < start
    assert type(session.model.optimizer).__name__ == network.optimizer_call(
        session.setup).name


def test_batch_norm_dropout_regularization_and_initializer(sessions):
    session = sessions(dataset="circle", hidden=[4, 4], batch_norm=True, dropout=0.2,
                       regularization="l1", regularization_rate=0.01, initializer="he_normal",
                       activation="sigmoid", sigmoid_a=2.0)
    names = [type(layer).__name__ for layer in session.model.layers]
    assert names[:5] == ["Dense", "BatchNormalization", "Rescaling", "Activation", "Dropout"]
    dense = session.model.get_layer("hidden_1")
    assert dense.get_config()["kernel_initializer"]["class_name"] == "HeNormal"
    assert dense.kernel_regularizer.get_config() == {"l1": 0.01}
    assert session.model.get_layer("slope_1").scale == 2.0
    _step(session, 2)
    assert np.isfinite(session.loss_test)
    assert network.block_ends(session.model) == [3, 8, 10]  # activation_1, _2, output


# ------------------------------------------------------------------------------ export
def test_exported_script_reaches_the_same_test_loss(sessions, tmp_path):
    session = sessions(dataset="xor", seed=0)
    _step(session, 30)
    script = tmp_path / "playground_run.py"
    script.write_text(session.submit("export_code"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    loss = float(re.search(r"test loss: ([\d.]+)", result.stdout).group(1))
    # same data, network and initial weights; only the order of the mini-batches differs
    # (seeds 0-3 of xor and circle: differences 0.000-0.026 at losses 0.15-0.69)
    assert abs(loss - session.loss_test) < 0.05 + 0.05 * session.loss_test


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_divergence_stops_training_and_sends_null(sessions):
    session = sessions(dataset="reg_plane", problem="regression", learning_rate=10.0,
                       activation="relu", hidden=[8, 8])
    session.submit("action", "play")
    assert _wait(lambda: not json.loads(session.frame)["playing"], 20)  # stopped by itself
    frame = json.loads(session.frame)
    assert frame["loss_train"] is None and frame["gradients"] is None
    assert len(base64.b64decode(frame["heatmap"])) == 100 * 100


def test_converged_second_order_step_returns(sessions):
    # logistic regression on XOR: a convex loss, Newton reaches its minimum in a few steps
    session = sessions(dataset="xor", hidden=[], optimizer="newton", samples=100)
    _step(session, 30)  # the steps after convergence take no iteration and return
    assert 1 <= session.epoch < 30


def test_a_failing_training_step_is_reported_and_the_session_lives_on(sessions):
    session = sessions(dataset="xor")

    def broken(*args, **kwargs):
        raise ArithmeticError("boom")

    session.model.train_on_batch = broken
    session.submit("action", "play")
    assert _wait(lambda: not json.loads(session.frame)["playing"], 10)
    assert json.loads(session.frame)["error"] == "training stopped: boom"
    assert session.submit("action", "reset") == {"epoch": 0, "playing": False}
    _step(session, 1)  # a new model: training works again
    assert session.epoch == 1
