"""The playground's HTTP server: the standard library's ThreadingHTTPServer, JSON requests,
Server-Sent Events for the frames, the page's files from the package.

Security: the server listens on 127.0.0.1 by default; every request carries the random token
of the printed URL (``?token=`` or the ``X-Token`` header); a request whose ``Host`` is not
the server's own (DNS rebinding) or whose ``Origin`` is foreign is refused; request bodies
are small JSON objects checked field by field, and nothing in a request is ever evaluated.
A refused request gets a 4xx status and ``{"error": message}`` and changes nothing.

Endpoints (``ID`` is a session id):

    GET  /                          the page
    GET  /static/NAME               its script, style sheet and texts
    POST /api/sessions              {setup fields}  -> {"session": ID, "setup": {...}}
    GET  /api/sessions/ID/events    the frames (text/event-stream); closing it ends the session
    GET  /api/sessions/ID/state     the data points and the setup
    POST /api/sessions/ID/setup     {setup fields to change}
    POST /api/sessions/ID/action    {"action": "play" | "pause" | "step" | "reset"}
    POST /api/sessions/ID/weight    {"layer": i, "row": j | null, "unit": k, "value": w}
    POST /api/sessions/ID/surface   {"resolution": n}  -> the loss surface and weight path
    GET  /api/sessions/ID/model.nervenet   the trained model (download)
    GET  /api/sessions/ID/train.py         the script that reproduces the run (download)
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from nervenet.playground import config
from nervenet.playground.session import Session, stream_frames

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BODY = 64 * 1024
MAX_SESSIONS = 8
#: a session whose page never opened its event stream is dropped after this many seconds
UNCLAIMED_TIMEOUT = 30.0
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "i18n.json": "application/json"}
_SESSION_PATH = re.compile(r"^/api/sessions/([0-9a-f]{16})/([a-z_.]+)$")
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",  # the URL carries the token
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                       "frame-ancestors 'none'"}


class RequestError(Exception):
    """A refused request: its HTTP status and the message sent back."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _check_weight_edit(body: dict) -> dict:
    fields = {"layer", "row", "unit", "value"}
    if set(body) != fields:
        raise ValueError(f"a weight edit has exactly the fields {sorted(fields)}, got "
                         f"{sorted(body)}")
    for name in ("layer", "unit", "row"):
        value = body[name]
        if name == "row" and value is None:  # null: the unit's bias
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 64:
            raise ValueError(f"{name} must be an int from 0 to 63 (row: or null for the bias), "
                             f"got {value!r}")
    value = body["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and abs(value) <= 100):
        raise ValueError(f"value must be a number from -100 to 100, got {value!r}")
    return {**body, "value": float(value)}


class PlaygroundServer(ThreadingHTTPServer):
    """The server and its sessions. ``url`` is the address to open (it carries the token)."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 frame_rate: float = 15.0):
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), PlaygroundHandler)
        self.token = token or secrets.token_urlsafe(24)
        self.frame_rate = frame_rate
        port = self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        # on the loopback only these Host headers are answered (a DNS-rebinding page sends its
        # own name); listening on another address, the machine's names are not known here
        self.hosts = ({f"{shown}:{port}", f"localhost:{port}", f"127.0.0.1:{port}",
                       f"[::1]:{port}"} if host in LOOPBACK else None)
        self.url = f"http://{shown}:{port}/?token={self.token}"

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (a closed tab, a refused body) is no error worth a trace."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def new_session(self, setup: dict) -> Session:
        with self.lock:
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.streams == 0 and now - session.created > UNCLAIMED_TIMEOUT:
                    self._drop(session)
            if len(self.sessions) >= MAX_SESSIONS:
                raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, f"too many sessions: at most "
                                   f"{MAX_SESSIONS} tabs train at once; close one")
            session = Session(setup, self.frame_rate)
            self.sessions[session.id] = session
            return session

    def _drop(self, session: Session) -> None:
        session.close()
        self.sessions.pop(session.id, None)

    def end_session(self, session: Session) -> None:
        """Close a session and wait for its thread (its stream was closed)."""
        with self.lock:
            self._drop(session)
        session.thread.join(timeout=10)

    def server_close(self) -> None:
        """Close every session (their threads and streams end), then the socket."""
        with self.lock:
            sessions = list(self.sessions.values())
            for session in sessions:
                self._drop(session)
        for session in sessions:
            session.thread.join(timeout=10)
        super().server_close()


class PlaygroundHandler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    protocol_version = "HTTP/1.1"
    server_version = "nervenet-playground"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # quiet: the terminal shows the URL and errors only

    # --------------------------------------------------------------------- dispatch
    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            self._check_origin()
            url = urlsplit(self.path)
            self.query = parse_qs(url.query)
            self._check_token()
            body = self._read_body() if method == "POST" else None
            self._route(method, url.path, body)
        except RequestError as error:
            self._send_json({"error": str(error)}, error.status)
        except ValueError as error:
            self._send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except (RuntimeError, TimeoutError) as error:  # the session ended or hangs
            self._send_json({"error": str(error) or "the session did not answer"},
                            HTTPStatus.SERVICE_UNAVAILABLE)

    def _route(self, method: str, path: str, body) -> None:
        if path == "/":
            self._only(method, "GET")
            return self._send_page()
        if path.startswith("/static/"):
            self._only(method, "GET")
            return self._send_static(path[len("/static/"):])
        if path == "/api/sessions":
            self._only(method, "POST")
            session = self.server.new_session(config.validate(body))
            return self._send_json({"session": session.id, "setup": session.setup},
                                   HTTPStatus.CREATED)
        match = _SESSION_PATH.match(path)
        if not match:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")
        session = self.server.sessions.get(match.group(1))
        if session is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no session {match.group(1)} (it ended "
                               "when its page closed the event stream)")
        self._session_route(method, session, match.group(2), body)

    def _session_route(self, method: str, session: Session, name: str, body) -> None:
        gets = {"events", "state", "model.nervenet", "train.py"}
        posts = {"setup", "action", "weight", "surface"}
        if name not in gets | posts:
            raise RequestError(HTTPStatus.NOT_FOUND, f"sessions have no {name!r}; they have "
                               f"{sorted(gets | posts)}")
        self._only(method, "GET" if name in gets else "POST")
        if name == "events":
            return self._stream(session)
        if name == "state":
            return self._send_json(session.submit("state"))
        if name == "model.nervenet":
            return self._send(session.submit("export_model"), "application/octet-stream",
                              attachment="playground.nervenet")
        if name == "train.py":
            return self._send(session.submit("export_code").encode(), "text/x-python",
                              attachment="playground_run.py")
        if name == "setup":
            return self._send_json(session.submit("setup", config.validate(body, session.setup)))
        if name == "action":
            actions = ("play", "pause", "step", "reset")
            if set(body) != {"action"} or body["action"] not in actions:
                raise ValueError(f"an action is {{\"action\": one of {list(actions)}}}, got "
                                 f"{json.dumps(body)[:200]}")
            return self._send_json(session.submit("action", body["action"]))
        if name == "weight":
            return self._send_json(session.submit("weight", _check_weight_edit(body)))
        resolution = body.get("resolution", 21) if set(body) <= {"resolution"} else None
        if isinstance(resolution, bool) or not isinstance(resolution, int) or not (
                5 <= resolution <= 41):
            raise ValueError(f"a surface request is {{\"resolution\": an int from 5 to 41}}, "
                             f"got {json.dumps(body)[:200]}")
        return self._send_json(session.submit("surface", resolution))

    # ---------------------------------------------------------------------- checks
    def _only(self, method: str, allowed: str) -> None:
        if method != allowed:
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here; "
                               f"use {allowed}")

    def _check_origin(self) -> None:
        host = self.headers.get("Host", "")
        if self.server.hosts is not None and host not in self.server.hosts:
            raise RequestError(HTTPStatus.FORBIDDEN, f"wrong Host header {host[:100]!r}: the "
                               "playground answers only its own address")
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":  # only the page itself
            raise RequestError(HTTPStatus.FORBIDDEN, f"foreign Origin {origin[:100]!r}: only "
                               "the playground's own page may call it")

    def _check_token(self) -> None:
        given = self.headers.get("X-Token") or (self.query.get("token") or [""])[0]
        if not given:
            raise RequestError(HTTPStatus.UNAUTHORIZED, "missing token: open the URL that "
                               "`nervenet playground` printed (it carries ?token=...)")
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            raise RequestError(HTTPStatus.FORBIDDEN, "wrong token: open the URL that "
                               "`nervenet playground` printed")

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length")
        if not length.isdigit():
            raise RequestError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length[:40]!r}")
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is not read
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body has {length} "
                               f"bytes; at most {MAX_BODY} are accepted")
        data = self.rfile.read(int(length))
        kind = self.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != "application/json":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"the body must be "
                               f"application/json, got {kind or 'no Content-Type'!r}")
        try:
            body = json.loads(data, parse_constant=lambda name: float("nan"))
        except (ValueError, RecursionError) as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: "
                               f"{str(error)[:200]}") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body must be a JSON object, got "
                               f"{type(body).__name__}")
        return body

    # -------------------------------------------------------------------- responses
    def _send(self, data: bytes, content_type: str, status: int = HTTPStatus.OK,
              attachment: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in _HEADERS.items():
            self.send_header(key, value)
        if attachment:
            self.send_header("Content-Disposition", f'attachment; filename="{attachment}"')
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, value, status: int = HTTPStatus.OK) -> None:
        self._send(json.dumps(value).encode(), "application/json", status)

    def _send_page(self) -> None:
        page = resources.files("nervenet.playground").joinpath("static/index.html").read_text(
            encoding="utf-8")
        # the token is URL-safe base64: safe inside an attribute
        self._send(page.replace("__TOKEN__", self.server.token).encode(),
                   "text/html; charset=utf-8")

    def _send_static(self, name: str) -> None:
        if name not in STATIC:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no static file {name[:100]!r}")
        data = resources.files("nervenet.playground").joinpath("static", name).read_bytes()
        self._send(data, STATIC[name] + "; charset=utf-8")

    def _stream(self, session: Session) -> None:
        with self.server.lock:
            if session.streams:
                raise RequestError(HTTPStatus.CONFLICT, f"session {session.id} already has "
                                   "an event stream: open a new session per tab")
            session.streams += 1
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        for key, value in _HEADERS.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def write(data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()

        try:
            stream_frames(session, write)
        except OSError:
            pass  # the page went away
        finally:
            self.server.end_session(session)


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True) -> int:
    """Run the playground until Ctrl-C; print its URL (with the token) first."""
    server = PlaygroundServer(host, port)
    print(f"nervenet playground: {server.url}", flush=True)
    if host not in LOOPBACK:
        print(f"note: listening on {host}: other machines can reach it (with the token)",
              flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("nervenet playground: stopping", flush=True)
    finally:
        server.server_close()
    return 0
