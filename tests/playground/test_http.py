"""Every endpoint of the playground's server, and every kind of bad request: each refused one
gets a 4xx with a message and changes nothing."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from nervenet import models
from nervenet.playground import DEFAULTS, PlaygroundServer, config, server as server_module


def _weights(server, session: str) -> list[np.ndarray]:
    return [w.copy() for w in server.sessions[session].model.get_weights()]


# ------------------------------------------------------------------------------ the page
def test_page_and_static_files_carry_the_token(client):
    status, page = client.call("GET", f"/?token={client.token}", token=None)
    assert status == 200
    text = page.decode()
    assert f'<meta name="token" content="{client.token}">' in text
    assert f"/static/app.js?token={client.token}" in text
    for element in ("play", "pause", "step", "reset", "dataset", "learning-rate", "activation",
                    "add-layer", "epoch", "loss-train", "loss-test", "heatmap", "export-model",
                    "export-code"):
        assert f'id="{element}"' in text
    for name in server_module.STATIC:
        status, data = client.call("GET", f"/static/{name}")
        assert status == 200 and data, name
    status, texts = client.call("GET", "/static/i18n.json")
    assert texts["learning_rate"] == {"en": "Learning rate", "ko": "학습률"}


@pytest.mark.parametrize("path", ["/static/../../../etc/passwd", "/static/server.py",
                                  "/static/", "/nothing", "/api/sessions/0123456789abcdef/x"])
def test_unknown_paths_are_404(client, path):
    status, body = client.call("GET", path)
    assert status == 404 and body["error"]


# ------------------------------------------------------------------------ token and origin
@pytest.mark.parametrize("token, status, word", [(None, 401, "missing token"),
                                                  ("wrong", 403, "wrong token")])
def test_token_required_everywhere(client, server, token, status, word):
    for method, path, body in [("GET", "/", None), ("GET", "/static/app.js", None),
                               ("POST", "/api/sessions", {})]:
        got, answer = client.call(method, path, body, token=token)
        assert got == status and word in answer["error"], (method, path)
    assert server.sessions == {}


def test_token_in_the_query_works(client):
    status, body = client.call("POST", f"/api/sessions?token={client.token}", {}, token=None)
    assert status == 201


def test_foreign_origin_and_host_refused(client, server):
    status, body = client.call("POST", "/api/sessions", {},
                               headers={"Origin": "http://evil.example"})
    assert status == 403 and "foreign Origin" in body["error"]
    status, body = client.call("POST", "/api/sessions", {}, headers={"Host": "evil.example"})
    assert status == 403 and "Host" in body["error"]
    assert server.sessions == {}
    status, _ = client.call("POST", "/api/sessions", {},
                            headers={"Origin": f"http://127.0.0.1:{client.port}"})
    assert status == 201


# ----------------------------------------------------------------------------- sessions
def test_new_session_has_the_defaults(client, server):
    status, body = client.call("POST", "/api/sessions", {})
    assert status == 201
    assert body["setup"] == DEFAULTS
    assert list(server.sessions) == [body["session"]]


BAD_SETUPS = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"noise": NaN}', 400, "noise"),
    ({"colour": "red"}, 400, "unknown field"),
    ({"samples": -5}, 400, "samples"),
    ({"batch_size": -1}, 400, "batch_size"),
    ({"batch_size": True}, 400, "batch_size"),
    ({"hidden": [-1]}, 400, "hidden"),
    ({"hidden": [10**6]}, 400, "hidden"),
    ({"hidden": [1] * 7}, 400, "hidden"),
    ({"noise": "0.1"}, 400, "noise"),
    ({"learning_rate": 1e300}, 400, "learning_rate"),
    ({"features": []}, 400, "features"),
    ({"features": ["x1", "x1"]}, 400, "features"),
    ({"dataset": "../../etc"}, 400, "dataset"),
    ({"dataset": "reg_plane"}, 400, "does not fit problem"),
    ({"activation": "step"}, 400, "backpropagation cannot train"),
    ({"mode": "perceptron"}, 400, "perceptron"),
    ({"optimizer": "newton", "hidden": [8, 8, 8]}, 400, "newton"),
]


@pytest.mark.parametrize("body, status, word", BAD_SETUPS)
def test_bad_new_session_refused(client, server, body, status, word):
    raw = body if isinstance(body, bytes) else None
    got, answer = client.call("POST", "/api/sessions", None if raw else body, raw=raw)
    assert got == status and word in answer["error"], answer
    assert server.sessions == {}


def test_body_size_type_and_length_checked(client, server):
    big = json.dumps({"seed": 1, "pad": "x" * (server_module.MAX_BODY + 10)}).encode()
    status, body = client.call("POST", "/api/sessions", raw=big)
    assert status == 413 and "at most" in body["error"]
    status, body = client.call("POST", "/api/sessions", raw=b"{}",
                               headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in body["error"]
    with socket.create_connection(("127.0.0.1", client.port), timeout=10) as raw:
        raw.sendall(f"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
                    f"X-Token: {client.token}\r\nContent-Type: application/json\r\n"
                    "Connection: close\r\n\r\n{}".encode())
        assert raw.recv(100).startswith(b"HTTP/1.1 411")  # no Content-Length
    assert server.sessions == {}


def test_methods_checked(client):
    assert client.call("GET", "/api/sessions")[0] == 405
    assert client.call("DELETE", "/api/sessions")[0] == 405
    session = client.new_session()
    assert client.call("POST", f"/api/sessions/{session}/events", {})[0] == 405
    assert client.call("GET", f"/api/sessions/{session}/action")[0] == 405
    assert client.call("GET", "/api/sessions/ffffffffffffffff/state")[0] == 404


def test_too_many_sessions(client, server, monkeypatch):
    monkeypatch.setattr(server_module, "MAX_SESSIONS", 2)
    client.new_session()
    client.new_session()
    status, body = client.call("POST", "/api/sessions", {})
    assert status == 503 and "too many sessions" in body["error"]
    assert len(server.sessions) == 2


# -------------------------------------------------------------------- session endpoints
def test_state_setup_action_endpoints(client, server):
    session = client.new_session(dataset="xor", samples=200, train_fraction=0.6)
    status, state = client.call("GET", f"/api/sessions/{session}/state")
    assert status == 200
    assert len(state["train"]) == 120 and len(state["test"]) == 80
    assert state["domain"] == [-6.0, 6.0] and state["setup"]["dataset"] == "xor"
    status, _ = client.call("POST", f"/api/sessions/{session}/action", {"action": "step"})
    assert status == 200 and server.sessions[session].epoch == 1
    status, _ = client.call("POST", f"/api/sessions/{session}/setup", {"hidden": [3, 3, 3]})
    assert status == 200
    model = server.sessions[session].model
    assert [layer.units for layer in model.layers] == [3, 3, 3, 1]
    assert server.sessions[session].epoch == 0  # a new network starts again
    status, _ = client.call("POST", f"/api/sessions/{session}/setup", {"learning_rate": 0.3})
    assert status == 200 and server.sessions[session].model is model  # changed live
    assert model.optimizer.learning_rate == pytest.approx(0.3)
    for name in ("play", "pause", "reset"):
        assert client.call("POST", f"/api/sessions/{session}/action", {"action": name})[0] == 200
    assert server.sessions[session].epoch == 0


@pytest.mark.parametrize("name, body, word", [
    ("setup", {"hidden": [10**6]}, "hidden"),
    ("setup", {"surprise": 1}, "unknown field"),
    ("setup", {"samples": -1}, "samples"),
    ("action", {"action": "explode"}, "action"),
    ("action", {"action": "play", "speed": 9}, "action"),
    ("weight", {"layer": 0, "row": 0, "unit": 0}, "exactly the fields"),
    ("weight", {"layer": 9, "row": 0, "unit": 0, "value": 1.0}, "layer must be below"),
    ("weight", {"layer": 0, "row": 5, "unit": 0, "value": 1.0}, "inputs"),
    ("weight", {"layer": -1, "row": 0, "unit": 0, "value": 1.0}, "layer"),
    ("weight", {"layer": 0, "row": 0, "unit": 0, "value": 1e9}, "value"),
    ("weight", {"layer": 0, "row": 0, "unit": 0, "value": "1"}, "value"),
    ("surface", {"resolution": 10**6}, "resolution"),
    ("surface", {"resolution": 9, "x": 1}, "resolution"),
])
def test_bad_session_requests_change_nothing(client, server, name, body, word):
    session = client.new_session()
    client.call("POST", f"/api/sessions/{session}/action", {"action": "step"})
    before = _weights(server, session)
    setup = dict(server.sessions[session].setup)
    status, answer = client.call("POST", f"/api/sessions/{session}/{name}", body)
    assert status == 400 and word in answer["error"], answer
    assert server.sessions[session].setup == setup
    assert server.sessions[session].epoch == 1
    for old, new in zip(before, _weights(server, session)):
        np.testing.assert_array_equal(old, new)


def test_weight_edit(client, server):
    session = client.new_session()
    status, _ = client.call("POST", f"/api/sessions/{session}/weight",
                            {"layer": 1, "row": 3, "unit": 1, "value": -2.5})
    assert status == 200
    assert server.sessions[session].model.layers[1].kernel.data[3, 1] == -2.5
    status, _ = client.call("POST", f"/api/sessions/{session}/weight",
                            {"layer": 2, "row": None, "unit": 0, "value": 0.75})
    assert status == 200
    assert server.sessions[session].model.layers[2].bias.data[0] == 0.75
    status, code = client.call("GET", f"/api/sessions/{session}/train.py")
    assert "set by hand" in code.decode()  # the script cannot know them; it says so


def test_ipv6_loopback():
    try:
        server = PlaygroundServer("::1", 0)
    except OSError as error:
        pytest.skip(f"no IPv6 loopback here: {error}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url.startswith("http://[::1]:")
        connection = http.client.HTTPConnection("::1", server.server_address[1], timeout=10)
        connection.request("GET", f"/?token={server.token}")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_surface(client):
    session = client.new_session(dataset="xor", hidden=[3])
    for _ in range(3):
        client.call("POST", f"/api/sessions/{session}/action", {"action": "step"})
    status, surface = client.call("POST", f"/api/sessions/{session}/surface", {"resolution": 7})
    assert status == 200
    assert len(surface["ticks"]) == 7 and np.array(surface["losses"]).shape == (7, 7)
    path = np.array(surface["path"])
    assert path.shape == (4, 2)  # epochs 0..3
    np.testing.assert_allclose(path[-1], 0, atol=1e-9)  # the plane goes through the weights
    assert abs(path).max() <= surface["ticks"][-1]


def test_exports(client, server, tmp_path):
    session = client.new_session(dataset="circle")
    client.call("POST", f"/api/sessions/{session}/action", {"action": "step"})
    status, data = client.call("GET", f"/api/sessions/{session}/model.nervenet")
    assert status == 200 and data[:2] == b"PK"  # a zip
    (tmp_path / "m.nervenet").write_bytes(data)
    model = models.load_model(tmp_path / "m.nervenet")
    live = server.sessions[session]
    np.testing.assert_allclose(model.predict(live.x_test, verbose=0),
                               live.model.predict(live.x_test, verbose=0), rtol=1e-6)
    status, code = client.call("GET", f"/api/sessions/{session}/train.py")
    assert status == 200
    text = code.decode()
    compile(text, "train.py", "exec")
    assert "EPOCHS = 1" in text and "model.fit(" in text
    assert io.StringIO(text).readline().startswith('"""circle data, a 2-4-2-1 network')


def test_every_text_in_both_languages():
    """Every key the page or its script uses has an English and a Korean text, and the Korean
    ones use the glossary's terms."""
    static = Path(server_module.__file__).parent / "static"
    texts = json.loads((static / "i18n.json").read_text(encoding="utf-8"))
    page = (static / "index.html").read_text(encoding="utf-8")
    script = (static / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-title|-label)?="([a-z_]+)"', page))
    used |= set(re.findall(r'text\("([a-z_]+)"\)', script))
    used |= {f"note_mode_{mode}" for mode in config.MODES}
    used |= {f"note_act_{name}" for name in config.ACTIVATIONS}
    assert used - set(texts) == set()
    for key, entry in texts.items():
        assert set(entry) == {"en", "ko"} and all(entry.values()), key
        assert re.search("[\uac00-\ud7a3]", entry["ko"]) or key in ("title",), key
        if key.startswith("tip_"):
            assert f'id="{key[4:]}"' in page, key
    glossary = {"learning_rate": "학습률", "activation": "활성함수", "batch_norm": "배치 정규화",
                "epoch": "에포크", "dropout": "드롭아웃", "initializer": "가중치 초기화"}
    for key, term in glossary.items():
        assert term in texts[key]["ko"], key
    assert "기울기 소실" in texts["note_gradients"]["ko"]
