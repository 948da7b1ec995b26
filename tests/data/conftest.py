"""A real HTTP server on 127.0.0.1 (http.server in a thread) serving IDX fixtures."""

from __future__ import annotations

import http.server
import threading

import pytest


class FixtureServer:
    """Serves ``files`` (path -> bytes); honours ``Range: bytes=N-``; records every request.

    ``truncate[path] = k``: the next k full-file (200) responses to ``path`` announce the whole
    length but send only half of the bytes, then close the connection (an interrupted transfer).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):  # noqa: N802  (http.server's name)
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                spec = self.headers.get("Range")
                if spec and not server.ignore_range:
                    start = int(spec.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    self.send_header("Content-Length", str(len(body) - start))
                    self.end_headers()
                    self.wfile.write(body[start:])
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate.get(self.path, 0) > 0:
                    server.truncate[self.path] -= 1
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fixture_server():
    server = FixtureServer()
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder (NERVENET_HOME), online."""
    monkeypatch.setenv("NERVENET_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NERVENET_OFFLINE", raising=False)
    return tmp_path / "cache"
