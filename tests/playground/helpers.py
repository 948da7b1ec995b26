"""A playground server on a free port of 127.0.0.1, in this process, and a small client."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading

from nervenet.playground import PlaygroundServer


class Client:
    """Requests to one server: ``call`` returns (status, decoded JSON or bytes)."""

    def __init__(self, server: PlaygroundServer):
        self.server = server
        self.port = server.server_address[1]
        self.token = server.token

    def call(self, method: str, path: str, body=None, headers=None, token: str | None = "",
             raw: bytes | None = None):
        """``token=""`` sends the right token in X-Token, ``None`` none, other text that."""
        sent = {"Host": f"127.0.0.1:{self.port}"}
        if token is not None:
            sent["X-Token"] = self.token if token == "" else token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            kind = response.getheader("Content-Type", "")
        finally:
            connection.close()
        return response.status, json.loads(payload) if kind.startswith("application/json") \
            else payload

    def new_session(self, **setup) -> str:
        status, body = self.call("POST", "/api/sessions", setup)
        assert status == 201, body
        return body["session"]

    def open_stream(self, session: str):
        """An open event stream: (connection, response); read events with ``next_event``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", f"/api/sessions/{session}/events?token={self.token}",
                           headers={"Host": f"127.0.0.1:{self.port}"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        return connection, response


def next_event(response) -> dict:
    """The next frame (``data:`` line) of an event stream, skipping heartbeat comments."""
    while True:
        line = response.fp.readline()
        assert line, "the stream ended"
        if line.startswith(b"data: "):
            return json.loads(line[6:])


@contextlib.contextmanager
def running_server():
    """A server answering in a thread of this process; shut down and closed afterwards."""
    server = PlaygroundServer("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
