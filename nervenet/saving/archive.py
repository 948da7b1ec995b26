"""Files on disk: atomic writes, and reading a model zip without trusting it.

**Atomic write.** A save writes a temporary file in the target's directory (so that the rename
stays on one file system), flushes and fsyncs it, renames it over the target with
``os.replace`` (atomic on POSIX and Windows), then fsyncs the directory so that the rename
itself survives a power cut. A process killed at any moment leaves either the old file or the
new one at the target path, never a mixture. What it can leave is its temporary file
(``.<name>.<pid>.<random>.tmp``); the next save to the same target removes those whose
process is gone.

**Checksum.** The zip's comment is ``nervenet-sha256:<64 hex digits>``, the SHA-256 of every
byte of the file before the comment. Reading checks it first, on the raw bytes, so that a
truncated file (the end of the zip, or part of the comment, is missing) and a corrupted one
(a byte changed anywhere: the digest differs) are told apart in the error message before any
zip or JSON parser sees the file.

**Reading.** A model file is a zip of exactly three members; any other name (``../x``,
``/etc/passwd``, ``a/b``), a repeated name, a member over its size limit, a bad CRC or a
truncated archive is rejected with ``ModelFormatError`` before anything is parsed. Nothing is
ever extracted to disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable

#: the members of a model file and the most bytes each may have. The JSON limits keep a
#: "JSON bomb" (a small deflated member that parses into millions of Python objects) within a
#: few tens of MiB; a real config is a few KiB per layer.
MEMBER_LIMITS = {
    "config.json": 2**20,
    "metadata.json": 64 * 2**10,
    "weights.safetensors": 64 * 2**30,
}

#: what the zip comment of a model file starts with; 64 hex digits follow
DIGEST_PREFIX = b"nervenet-sha256:"
_COMMENT_SIZE = len(DIGEST_PREFIX) + 64
_END_RECORD = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record
_END_SIGNATURE = b"PK\x05\x06"


class ModelFormatError(ValueError):
    """A model or weights file is malformed, truncated, altered or names something that is not
    registered. Nothing from the file was executed."""


#: the temporary files this process is writing now (another thread may save the same target)
_writing: set[str] = set()
_writing_lock = threading.RLock()


def atomic_write(path, write: Callable, overwrite: bool = True) -> None:
    """Create or replace ``path`` atomically with what ``write(binary_file)`` writes.

    Args:
        path: the target file.
        write: called with the open temporary file.
        overwrite: replace an existing file (default ``True``); otherwise raise
            FileExistsError.
    """
    path = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: the directory {directory} does not "
                                "exist")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    with _writing_lock:
        remove_stale_temporaries(path)
        fd, temporary = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".tmp",
                                         dir=directory)
        _writing.add(temporary)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        with _writing_lock:
            _writing.discard(temporary)
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be opened for fsync
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours: stale unless in ``_writing``
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(path) -> list[str]:
    """Delete the temporary files that interrupted saves to ``path`` left behind (those whose
    writing process no longer runs, or that this process is no longer writing); returns their
    names."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    removed = []
    prefix = f".{base}."
    with _writing_lock:
        for entry in os.listdir(directory):
            if not (entry.startswith(prefix) and entry.endswith(".tmp")):
                continue
            pid = entry[len(prefix):].split(".", 1)[0]
            temporary = os.path.join(directory, entry)
            if pid.isdigit() and not _process_alive(int(pid)) and temporary not in _writing:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                    removed.append(entry)
    return removed


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """The model zip of ``members`` (JSON deflated, the weights stored as is), its comment the
    SHA-256 of all the bytes before it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            method = zipfile.ZIP_STORED if name.endswith(".safetensors") else (
                zipfile.ZIP_DEFLATED)
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                             compress_type=method)
        archive.comment = DIGEST_PREFIX + b"0" * 64  # the length is what the digest covers
    data = buffer.getbuffer()
    covered = len(data) - _COMMENT_SIZE
    data[covered + len(DIGEST_PREFIX):] = hashlib.sha256(data[:covered]).hexdigest().encode()
    return data.tobytes()


def write_zip(handle, members: dict[str, bytes]) -> None:
    """Write the model zip of ``members`` (see ``zip_bytes``) to the binary file ``handle``."""
    handle.write(zip_bytes(members))


def check_digest(data: bytes, where: str) -> None:
    """Check the trailing ``nervenet-sha256:`` digest of a model file's bytes.

    Raises:
        ModelFormatError: saying whether the file looks truncated (its end is missing) or
            corrupted (complete, but the digest does not match), or is not a model file.
    """
    covered = len(data) - _COMMENT_SIZE  # the digest covers the bytes before the comment
    end = covered - _END_RECORD.size  # where a complete file's end record starts
    has_record = end >= 0 and data[end:end + 4] == _END_SIGNATURE
    has_comment = covered >= 0 and data[covered:covered + len(DIGEST_PREFIX)] == DIGEST_PREFIX
    if has_record or has_comment:  # a changed byte can break one of them, never both
        digest = hashlib.sha256(memoryview(data)[:covered]).hexdigest().encode()
        if has_record and has_comment and digest == data[-64:]:
            return
        raise ModelFormatError(f"{where}: the file is corrupted: its SHA-256 checksum does not "
                               "match the one stored at its end (bytes were changed after the "
                               "save)")
    if data[:4] == b"PK\x03\x04":
        raise ModelFormatError(f"{where}: the file is truncated: a model file ends with its "
                               f"checksum, and this one stops after {len(data)} bytes without "
                               "it (an interrupted copy?), or it is a zip not written by "
                               "Model.save")
    raise ModelFormatError(f"{where}: not a nervenet model file (it does not start as a zip"
                           f"{'; it is empty' if not data else ''})")


def read_zip(path, limits: dict[str, int] = MEMBER_LIMITS) -> dict[str, bytes]:
    """The members of the model zip at ``path``, after checking names, sizes and CRCs.

    Raises:
        ModelFormatError: not a zip, truncated, unexpected or repeated member names (path
            traversal included), members too big, corrupted data.
    """
    where = os.fspath(path)
    limit = sum(limits.values()) + 2**20
    size = os.path.getsize(where)
    if size > limit:
        raise ModelFormatError(f"{where}: {size} bytes is over the limit of {limit} for a "
                               "model file")
    with open(where, "rb") as handle:
        data = handle.read()
    check_digest(data, where)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ModelFormatError(f"{where}: not a nervenet model file (not a readable zip: "
                               f"{error}); truncated or not written by Model.save?") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        unexpected = [n for n in names if n not in limits]
        if unexpected:
            raise ModelFormatError(f"{where}: unexpected member(s) {unexpected}; a model file "
                                   f"holds exactly {sorted(limits)}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ModelFormatError(f"{where}: member(s) {repeated} appear more than once")
        missing = sorted(set(limits) - set(names))
        if missing:
            raise ModelFormatError(f"{where}: missing member(s) {missing}")
        members = {}
        for info in infos:
            if info.file_size > limits[info.filename]:
                raise ModelFormatError(f"{where}: {info.filename} claims {info.file_size} "
                                       f"bytes, over the limit of {limits[info.filename]}")
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                    NotImplementedError, ValueError) as error:
                raise ModelFormatError(f"{where}: cannot read {info.filename}: {error} "
                                       "(truncated or corrupted)") from None
            if len(data) != info.file_size:
                raise ModelFormatError(f"{where}: {info.filename} has {len(data)} bytes, the "
                                       f"directory says {info.file_size}")
            members[info.filename] = data
    return members
