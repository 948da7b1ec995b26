"""Downloading dataset files into a local cache: verified, resumable, atomic.

* The cache is ``~/.cache/nervenet`` (``$NERVENET_HOME`` overrides it); a dataset keeps its
  files in a folder of its own, e.g. ``~/.cache/nervenet/mnist/train-images-idx3-ubyte.gz``.
* Every file has a pinned SHA-256; a file is used only after its digest matched, and a cached
  file that no longer matches is downloaded again.
* Bytes arrive in ``<name>.part``; an interrupted transfer is resumed with an HTTP ``Range``
  request (a server that ignores it sends the whole file again, which is detected); only a
  complete, verified file is renamed to its final name (``os.replace`` is atomic), so a partial
  file is never mistaken for the real one.
* Each mirror gets ``retries`` attempts (default 3) before the next mirror is tried.
* A redirect from https to http is refused (it would let anyone on the path swap the data);
  only http and https URLs are opened at all.
* ``NERVENET_OFFLINE=1`` opens no socket: a file missing from the cache raises
  ``DownloadError`` saying which URL to fetch by hand and where to put it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from nervenet.checks import check_int

CHUNK = 1 << 16


class DownloadError(OSError):
    """A dataset file could not be obtained (offline, every mirror failed, bad checksum)."""


def cache_dir() -> Path:
    """The cache folder: ``$NERVENET_HOME`` if set, else ``~/.cache/nervenet``.

    Example:
        >>> import os
        >>> os.environ["NERVENET_HOME"] = "/tmp/nn-cache"
        >>> str(cache_dir())
        '/tmp/nn-cache'
        >>> del os.environ["NERVENET_HOME"]
    """
    home = os.environ.get("NERVENET_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "nervenet"


def is_offline() -> bool:
    """True when ``NERVENET_OFFLINE`` is set to 1, true or yes (any case)."""
    return os.environ.get("NERVENET_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def sha256_of(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Interrupted(OSError):
    """A transfer ended early (worth another attempt: it resumes where it stopped)."""


class _NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https to anything else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlsplit(req.full_url).scheme
        new = urllib.parse.urlsplit(newurl).scheme
        if new not in ("http", "https") or (old == "https" and new != "https"):
            raise DownloadError(f"refusing the redirect from {req.full_url} to {newurl}: "
                                "a download never leaves https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_NoDowngradeRedirects)


def fetch(filename: str, urls: str | Sequence[str], sha256: str, subdir: str = "",
          retries: int = 3, timeout: float = 60.0, backoff: float = 1.0,
          verbose: bool = True) -> Path:
    """Return the cached path of ``filename``, downloading it first if needed.

    Args:
        filename: the file's name in the cache.
        urls: the URL (or mirror URLs, tried in order) of the file.
        sha256: the expected hex SHA-256 of the file.
        subdir: the dataset's folder inside the cache (default ``""``).
        retries: attempts per mirror (default 3).
        timeout: seconds to wait for the server on each read (default 60).
        backoff: seconds to wait before the 2nd attempt, doubled each time (default 1).
        verbose: print one line per download to stderr (default ``True``).

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: offline (``NERVENET_OFFLINE=1``) with the file missing, or every
            attempt failed; the message names the URLs and the place to put the file by hand.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("fetch: urls must name at least one URL")
    for url in urls:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"fetch: only http and https URLs are supported, got {url!r}")
    check_int("fetch", "retries", retries, low=1)
    sha256 = sha256.lower()
    folder = cache_dir() / subdir
    target = folder / filename
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        target.unlink()  # damaged or replaced by hand: fetch it again
    if is_offline():
        raise DownloadError(
            f"{filename} is not in the cache and NERVENET_OFFLINE is set, so nothing is "
            f"downloaded. Download {urls[0]} by hand (SHA-256 {sha256}) and put it at {target}")
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        if _fetch_from(url, target, sha256, failures, retries, timeout, backoff, verbose):
            return target
    raise DownloadError(
        f"could not download {filename}:\n  " + "\n  ".join(failures) +
        f"\nDownload it by hand from {urls[0]} (SHA-256 {sha256}) and put it at {target}")


def _fetch_from(url: str, target: Path, sha256: str, failures: list[str], retries: int,
                timeout: float, backoff: float, verbose: bool) -> bool:
    """Download ``url`` into ``target`` through ``target.part`` (resumed across attempts),
    waiting ``backoff * 2**k`` seconds before attempt k + 2; True once the file is there and
    verified, False (with the reasons added to ``failures``) when this mirror gave up."""
    partial = target.with_name(target.name + ".part")
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            if verbose:
                print(f"Downloading {url} -> {target}", file=sys.stderr)
            _download(url, partial, timeout)
        except (OSError, http.client.HTTPException) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code == 416:
                partial.unlink(missing_ok=True)  # our .part is longer than the file
            failures.append(f"{url} (attempt {attempt + 1}): {error}")
            if isinstance(error, DownloadError) or _permanent(error):
                return False
            continue
        digest = sha256_of(partial)
        if digest == sha256:
            os.replace(partial, target)
            return True
        partial.unlink()
        failures.append(f"{url}: SHA-256 mismatch, got {digest}, expected {sha256}")
        return False  # the mirror serves other bytes: retrying it would not help
    return False


def _permanent(error: BaseException) -> bool:
    """HTTP errors that another attempt at the same URL would not fix (404, 403, ...)."""
    return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500 and (
        error.code not in (408, 416, 429))


def _download(url: str, partial: Path, timeout: float) -> None:
    """Fetch ``url`` into ``partial``, continuing from its current length if it exists."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "nervenet"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with _opener.open(request, timeout=timeout) as response:
        status = response.status
        if status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise _Interrupted(f"asked for bytes {have}- but the server sent a range "
                                    f"starting at {start}")
            mode = "ab"
        elif status == 200:
            mode, have = "wb", 0  # no resume: the whole file from the start
        else:
            raise DownloadError(f"unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        received = 0
        with open(partial, mode) as handle:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                handle.write(block)
                received += len(block)
        if expected is not None and received != expected:
            raise _Interrupted(f"transfer interrupted after {have + received} bytes "
                                f"({received} of {expected} in this attempt)")


def _range_start(content_range: str) -> int:
    """The first byte of ``Content-Range: bytes START-END/TOTAL``."""
    try:
        unit, _, spec = content_range.partition(" ")
        return int(spec.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1
