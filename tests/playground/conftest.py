"""Fixtures: a playground server in this process and its client (see helpers.py)."""

from __future__ import annotations

import pytest

from tests.playground.helpers import Client, running_server


@pytest.fixture
def server():
    with running_server() as server:
        yield server


@pytest.fixture
def client(server):
    return Client(server)
