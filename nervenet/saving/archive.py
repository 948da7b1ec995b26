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

**Reading.** Only a regular file is opened (never a FIFO or a device), and it is read with
bounds: never more than its size, in chunks. A model file is a zip of exactly three members;
any other name (``../x``, ``/etc/passwd``, ``a/b``), a repeated name, another member count, a
compressed ``weights.safetensors`` (``save`` stores it), a member over its size limit or outside
the file, or a truncated archive is rejected with ``ModelFormatError`` before any member is
read (``ModelArchive``). The weights are then read from the file straight into their arrays;
nothing is ever extracted to disk.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import stat
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
#: the most zip entries read (a model file has three; a few more are named in the error) and
#: the largest central directory accepted (three entries need about 200 bytes)
MAX_MEMBERS = 16
_MAX_DIRECTORY_BYTES = 64 * 2**10
#: the chunk in which a file is read to check its digest
_READ_CHUNK = 2**20
_METHODS = {zipfile.ZIP_STORED: "no compression", zipfile.ZIP_DEFLATED: "deflate"}


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
    view = memoryview(data)

    def readinto(offset: int, buffer) -> None:
        buffer[:] = view[offset:offset + len(buffer)]

    _check_digest(readinto, len(view), where)


def _check_digest(readinto, size: int, where: str) -> None:
    """``check_digest`` on a file read by ``readinto(offset, buffer)``: the end is looked at
    first, so that a file without a nervenet ending is rejected without reading it whole; the
    digest is then computed in chunks (constant memory)."""
    covered = size - _COMMENT_SIZE  # the digest covers the bytes before the comment
    end = covered - _END_RECORD.size  # where a complete file's end record starts
    tail = bytearray(min(size, _COMMENT_SIZE + _END_RECORD.size))
    readinto(size - len(tail), tail)
    at = len(tail) - (size - end)  # the end record's position inside ``tail``
    has_record = end >= 0 and tail[at:at + 4] == _END_SIGNATURE
    has_comment = covered >= 0 and tail[at + _END_RECORD.size:][:len(DIGEST_PREFIX)] == (
        DIGEST_PREFIX)
    if has_record or has_comment:  # a changed byte can break one of them, never both
        digest = hashlib.sha256()
        chunk = bytearray(min(_READ_CHUNK, max(covered, 0)))
        for offset in range(0, covered, len(chunk) or 1):
            part = memoryview(chunk)[:min(len(chunk), covered - offset)]
            readinto(offset, part)
            digest.update(part)
        if has_record and has_comment and digest.hexdigest().encode() == bytes(tail[-64:]):
            return
        raise ModelFormatError(f"{where}: the file is corrupted: its SHA-256 checksum does not "
                               "match the one stored at its end (bytes were changed after the "
                               "save)")
    head = bytearray(min(size, 4))
    readinto(0, head)
    if head == b"PK\x03\x04":
        raise ModelFormatError(f"{where}: the file is truncated: a model file ends with its "
                               f"checksum, and this one stops after {size} bytes without "
                               "it (an interrupted copy?), or it is a zip not written by "
                               "Model.save")
    raise ModelFormatError(f"{where}: not a nervenet model file (it does not start as a zip"
                           f"{'; it is empty' if not size else ''})")


def open_regular_file(path, limit: int):
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes; returns
    ``(binary file, size)``.

    A FIFO would block the open and a device (``/dev/zero``, also behind a symlink) would read
    without end: the file is opened without blocking and its type checked on the open
    descriptor (no race with a rename), before a byte is read.

    Raises:
        ModelFormatError: not a regular file, or over ``limit``.
        OSError: the file cannot be opened (missing, no permission).
    """
    where = os.fspath(path)
    fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ModelFormatError(f"{where}: not a regular file (a directory, FIFO, socket or "
                                   "device); a model file is an ordinary file")
        if status.st_size > limit:
            raise ModelFormatError(f"{where}: {status.st_size} bytes is over the limit of "
                                   f"{limit}")
        return os.fdopen(fd, "rb", buffering=0), status.st_size
    except BaseException:
        os.close(fd)
        raise


def region_reader(handle, base: int, size: int, where: str):
    """``readinto(offset, buffer)`` for the ``size`` bytes of ``handle`` from ``base``: reads
    exactly ``len(buffer)`` bytes inside the region, or raises ModelFormatError (the file
    shrank while it was read)."""
    def readinto(offset: int, buffer) -> None:
        view = memoryview(buffer).cast("B")
        if offset < 0 or offset + len(view) > size:
            raise ModelFormatError(f"{where}: a read of {len(view)} bytes at {offset} leaves "
                                   f"the {size} bytes it may read")
        handle.seek(base + offset)
        done = 0
        while done < len(view):
            got = handle.readinto(view[done:])
            if not got:
                raise ModelFormatError(f"{where}: the file ended while it was read (it is "
                                       "truncated, or changed during the load)")
            done += got

    return readinto


class ModelArchive:
    """An open model file whose checksum, zip structure and member table are checked.

    Members are not read until asked: ``read(name)`` returns a (small, JSON) member's bytes,
    bounded by its limit; ``reader(name)`` gives ``readinto(offset, buffer)`` over a stored
    member's bytes in the file, so that the weights are read straight into their arrays.

    Every check happens before any member is read: the file is a regular file within the
    limits; its SHA-256 matches; the zip's end record names at most ``MAX_MEMBERS`` entries
    and a central directory of at most ``_MAX_DIRECTORY_BYTES``; the names are exactly the
    expected ones, each once; ``weights.safetensors`` is stored (never compressed, as ``save``
    writes it) and the JSON members stored or deflated; no member is encrypted; every
    member's bytes lie inside the file and its size is within its limit.

    Use as a context manager (the file is closed at the end).
    """

    def __init__(self, path, limits: dict[str, int] = MEMBER_LIMITS):
        self.where = os.fspath(path)
        self.limits = limits
        self.handle, self.size = open_regular_file(path, sum(limits.values()) + 2**20)
        try:
            self._open()
        except BaseException:
            self.handle.close()
            raise

    def _open(self) -> None:
        where, limits = self.where, self.limits
        readinto = region_reader(self.handle, 0, self.size, where)
        _check_digest(readinto, self.size, where)
        record = bytearray(_END_RECORD.size)
        readinto(self.size - _COMMENT_SIZE - len(record), record)
        _, disk, _, _, entries, directory_size, directory_offset, comment = (
            _END_RECORD.unpack(record))
        if disk or entries > MAX_MEMBERS or directory_size > _MAX_DIRECTORY_BYTES or (
                directory_offset + directory_size != self.size - _COMMENT_SIZE - len(record)):
            raise ModelFormatError(f"{where}: the zip directory claims {entries} members in "
                                   f"{directory_size} bytes at {directory_offset}; a model file "
                                   f"holds exactly {sorted(limits)} (at most {MAX_MEMBERS} "
                                   f"members and {_MAX_DIRECTORY_BYTES} directory bytes are "
                                   "read)")
        try:
            self.zip = zipfile.ZipFile(self.handle)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error,
                NotImplementedError) as error:
            raise ModelFormatError(f"{where}: not a nervenet model file (not a readable zip: "
                                   f"{error}); truncated or not written by Model.save?") from None
        self.infos = _check_members(infos, limits, directory_offset, where)

    def read(self, name: str) -> bytes:
        """The bytes of member ``name`` (decompressed, at most its limit)."""
        info = self.infos[name]
        try:
            with self.zip.open(info) as member:
                data = member.read(self.limits[name] + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                NotImplementedError, ValueError) as error:
            raise ModelFormatError(f"{self.where}: cannot read {name}: {error} (truncated or "
                                   "corrupted)") from None
        if len(data) != info.file_size:
            raise ModelFormatError(f"{self.where}: {name} has {len(data)} bytes, the "
                                   f"directory says {info.file_size}")
        return data

    def reader(self, name: str):
        """``(readinto, size)`` over the bytes of the stored member ``name`` in the file."""
        info = self.infos[name]
        local = bytearray(30)
        region_reader(self.handle, 0, self.size, self.where)(info.header_offset, local)
        signature, *_, name_length, extra_length = struct.unpack("<4s5H3L2H", local)
        start = info.header_offset + 30 + name_length + extra_length
        if signature != b"PK\x03\x04" or start + info.file_size > self.size:
            raise ModelFormatError(f"{self.where}: the local header of {name} is malformed")
        return region_reader(self.handle, start, info.file_size, self.where), info.file_size

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> ModelArchive:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _check_members(infos, limits: dict[str, int], directory_offset: int, where: str) -> dict:
    names = [info.filename for info in infos]
    unexpected = [n for n in names if n not in limits]
    if unexpected:
        raise ModelFormatError(f"{where}: unexpected member(s) {unexpected}; a model file "
                               f"holds exactly {sorted(limits)}")
    if len(set(names)) != len(names):
        repeated = sorted(n for n, count in collections.Counter(names).items() if count > 1)
        raise ModelFormatError(f"{where}: member(s) {repeated} appear more than once")
    missing = sorted(set(limits) - set(names))
    if missing:
        raise ModelFormatError(f"{where}: missing member(s) {missing}")
    for info in infos:
        name = info.filename
        allowed = (zipfile.ZIP_STORED,) if name.endswith(".safetensors") else (
            zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        if info.compress_type not in allowed:
            raise ModelFormatError(f"{where}: {name} uses compression method "
                                   f"{info.compress_type}; a model file stores it with "
                                   f"{' or '.join(_METHODS[m] for m in allowed)}")
        if info.flag_bits & 0x1:
            raise ModelFormatError(f"{where}: {name} is encrypted")
        if info.file_size > limits[name]:
            raise ModelFormatError(f"{where}: {name} claims {info.file_size} bytes, over the "
                                   f"limit of {limits[name]}")
        if info.header_offset + info.compress_size > directory_offset or (
                info.compress_type == zipfile.ZIP_STORED
                and info.compress_size != info.file_size):
            raise ModelFormatError(f"{where}: {name} claims {info.compress_size} bytes at "
                                   f"{info.header_offset}, which do not fit in the file")
    return {info.filename: info for info in infos}


def read_zip(path, limits: dict[str, int] = MEMBER_LIMITS) -> dict[str, bytes]:
    """The members of the model zip at ``path``, after every check of ``ModelArchive``.

    Raises:
        ModelFormatError: not a regular file, not a zip, truncated, unexpected or repeated
            member names (path traversal included), compressed weights, members too big,
            corrupted data.
    """
    with ModelArchive(path, limits) as archive:
        return {name: archive.read(name) for name in archive.infos}
