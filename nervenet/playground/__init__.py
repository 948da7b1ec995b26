"""The nervenet playground: the course's networks training live in the browser, on nervenet.

``nervenet playground`` (or ``nervenet.playground.serve()``) starts a local web server and
opens its page: TensorFlow Playground's datasets, features and controls, plus the course's
perceptron, the notes' XOR network, every optimizer, batch normalization, dropout and the
gradient-norm bars. Each browser tab gets its own session, a thread that trains a real
nervenet model; the page draws the frames it streams. "Export" downloads the model file and a
Python script that reproduces the run. See docs/playground.md.

Nothing here is imported by ``import nervenet``; it needs only the standard library.
"""

from nervenet.playground.config import DEFAULTS, validate
from nervenet.playground.server import PlaygroundServer, serve
from nervenet.playground.session import Session

__all__ = ["DEFAULTS", "PlaygroundServer", "Session", "serve", "validate"]
