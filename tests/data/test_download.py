"""The downloader against a real HTTP server on 127.0.0.1: cache hit, checksum mismatch,
interrupted transfer (resumed with Range), offline mode, mirrors, and full-set loading."""

from __future__ import annotations

import hashlib
import socket
import urllib.request

import numpy as np
import pytest

from nervenet.data import datasets, download
from nervenet.data.idx import encode_idx


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def images() -> bytes:
    rng = np.random.default_rng(0)
    return encode_idx(rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8), compress=True)


def test_download_then_cache_hit(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images
    path = download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), subdir="set",
                          verbose=False)
    assert path == cache / "set" / "a.gz"
    assert path.read_bytes() == images
    assert not (cache / "set" / "a.gz.part").exists()
    assert len(fixture_server.requests) == 1
    again = download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), subdir="set")
    assert again == path
    assert len(fixture_server.requests) == 1  # served from the cache: no request


def test_checksum_mismatch_leaves_nothing(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images[:-1] + bytes([images[-1] ^ 1])  # one bit flipped
    with pytest.raises(download.DownloadError, match="SHA-256 mismatch") as error:
        download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), retries=3,
                       backoff=0, verbose=False)
    assert "put it at" in str(error.value)
    assert list(cache.iterdir()) == []  # neither the file nor a .part
    assert len(fixture_server.requests) == 1  # bad bytes: no retry at the same mirror


def test_damaged_cached_file_is_fetched_again(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images
    cache.mkdir(parents=True)
    (cache / "a.gz").write_bytes(b"stale")
    path = download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), verbose=False)
    assert path.read_bytes() == images
    assert len(fixture_server.requests) == 1


def test_interrupted_transfer_is_resumed_with_range(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images
    fixture_server.truncate["/a.gz"] = 1  # the first response stops half-way
    path = download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), retries=3,
                          backoff=0, verbose=False)
    assert path.read_bytes() == images
    half = len(images) // 2
    assert fixture_server.requests == [("/a.gz", None), ("/a.gz", f"bytes={half}-")]


def test_part_file_from_an_earlier_run_is_resumed(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images
    cache.mkdir(parents=True)
    (cache / "a.gz.part").write_bytes(images[:1000])
    download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), verbose=False)
    assert fixture_server.requests == [("/a.gz", "bytes=1000-")]
    assert (cache / "a.gz").read_bytes() == images


def test_server_ignoring_range_sends_the_whole_file(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images
    fixture_server.ignore_range = True
    cache.mkdir(parents=True)
    (cache / "a.gz.part").write_bytes(images[:1000])
    path = download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), verbose=False)
    assert path.read_bytes() == images  # 200 instead of 206: started over, not appended


def test_interrupted_every_time_fails_after_the_retries(fixture_server, cache, images):
    fixture_server.files["/a.gz"] = images
    fixture_server.ignore_range = True
    fixture_server.truncate["/a.gz"] = 10
    with pytest.raises(download.DownloadError, match="could not download a.gz"):
        download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), retries=3,
                       backoff=0, verbose=False)
    assert len(fixture_server.requests) == 3
    assert not (cache / "a.gz").exists()  # a partial file never takes the final name


def test_next_mirror_after_a_404(fixture_server, cache, images):
    fixture_server.files["/mirror2/a.gz"] = images
    urls = [fixture_server.url + "/mirror1/a.gz", fixture_server.url + "/mirror2/a.gz"]
    path = download.fetch("a.gz", urls, _sha(images), backoff=0, verbose=False)
    assert path.read_bytes() == images
    assert [p for p, _ in fixture_server.requests] == ["/mirror1/a.gz", "/mirror2/a.gz"]


def test_offline_opens_no_socket(cache, monkeypatch):
    monkeypatch.setenv("NERVENET_OFFLINE", "1")

    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened while offline")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    with pytest.raises(download.DownloadError) as error:
        download.fetch("a.gz", "https://example.org/data/a.gz", "0" * 64, subdir="set")
    message = str(error.value)
    assert "NERVENET_OFFLINE" in message
    assert "https://example.org/data/a.gz" in message
    assert str(cache / "set" / "a.gz") in message


def test_offline_still_serves_the_cache(fixture_server, cache, images, monkeypatch):
    fixture_server.files["/a.gz"] = images
    download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images), verbose=False)
    monkeypatch.setenv("NERVENET_OFFLINE", "1")
    assert download.fetch("a.gz", fixture_server.url + "/a.gz", _sha(images)).exists()


def test_https_to_http_redirect_is_refused():
    handler = download._NoDowngradeRedirects()
    request = urllib.request.Request("https://example.org/a.gz")
    with pytest.raises(download.DownloadError, match="never leaves https"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://example.org/a.gz")
    # https -> https is followed
    assert handler.redirect_request(request, None, 302, "Found", {},
                                    "https://mirror.example.org/a.gz") is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="only http and https"):
        download.fetch("a", "ftp://example.org/a", "0" * 64)
    with pytest.raises(ValueError, match="retries"):
        download.fetch("a", "https://example.org/a", "0" * 64, retries=0)


def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("NERVENET_HOME", raising=False)
    assert download.cache_dir() == download.Path.home() / ".cache" / "nervenet"
    monkeypatch.setenv("NERVENET_HOME", str(tmp_path))
    assert download.cache_dir() == tmp_path


def test_full_mnist_loads_from_the_mirror(fixture_server, cache, monkeypatch):
    """load_mnist(subset="full") end to end, with the four IDX files served locally."""
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, 30, dtype=np.uint8),
              rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, 7, dtype=np.uint8)]
    hashes = {}
    for name, array in zip(datasets.IDX_FILES, arrays):
        body = encode_idx(array, compress=True)
        fixture_server.files[f"/mnist/{name}"] = body
        hashes[name] = _sha(body)
    monkeypatch.setitem(datasets.REMOTE, "mnist",
                        {"mirrors": [fixture_server.url + "/mnist/"], "sha256": hashes})
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(subset="full")
    for got, want in zip((x_train, y_train, x_test, y_test), arrays):
        np.testing.assert_array_equal(got, want)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(datasets.IDX_FILES)


def test_pinned_hashes_are_the_published_ones():
    """The SHA-256 of the real files (as TensorFlow Datasets and torchvision publish them)."""
    mnist = datasets.REMOTE["mnist"]["sha256"]
    assert mnist["train-images-idx3-ubyte.gz"].startswith("440fcabf73cc546f")
    assert mnist["t10k-labels-idx1-ubyte.gz"].startswith("f7ae60f92e00ec6d")
    fashion = datasets.REMOTE["fashion_mnist"]["sha256"]
    assert fashion["train-images-idx3-ubyte.gz"].startswith("3aede38d61863908")
    for spec in datasets.REMOTE.values():
        assert sorted(spec["sha256"]) == sorted(datasets.IDX_FILES)
        assert all(len(h) == 64 for h in spec["sha256"].values())
        assert all(m.startswith("https://") and m.endswith("/") for m in spec["mirrors"])
