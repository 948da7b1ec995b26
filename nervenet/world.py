"""The world of processes an MPI launcher started: who am I, how many are we, and the two
collectives data-parallel training needs (sum over ranks, copy from one rank).

Everything goes through mpi4py's *buffer* methods (``Allreduce``, ``Bcast``, ``Allgatherv``
on NumPy arrays, in place): no pickling, one message per array. mpi4py is imported by
``init()`` only, so ``import nervenet`` never loads it; before ``init()`` (or without MPI)
the world is one process: ``rank() == 0``, ``size() == 1`` and the collectives return their
input.

It lives on the ground floor and imports nothing from nervenet but the argument checks (on
the ground floor too), so that any floor may use it (SyncBatchNormalization, the training
loop); ``nervenet.distributed`` re-exports it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback

import numpy as np

from nervenet.checks import check_int

_comm = None        # MPI.COMM_WORLD once init() has run (COMM_SELF within independent())
_mpi = None         # the mpi4py.MPI module
_local_rank = 0
_OPS = ("sum", "mean", "min", "max")


def init() -> None:
    """Join the world started by ``mpiexec`` (or by ``srun``): import mpi4py, which initializes
    MPI, and make an uncaught exception on any rank end the whole job.

    Calling it again does nothing. Without a launcher it makes a world of one process.

    NOTE: an MPI job whose rank dies while the others wait in a collective hangs until the
    cluster's time limit. After ``init()`` an uncaught exception prints its traceback under
    the rank's number and calls ``MPI_Abort``, which ends every rank within seconds (as
    ``python -m mpi4py script.py`` does).

    Raises:
        ImportError: mpi4py is not installed (``pip install 'nervenet[mpi]'``).
    """
    global _comm, _mpi, _local_rank
    if _comm is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("nervenet.distributed.init() needs mpi4py and an MPI library: "
                          "pip install 'nervenet[mpi]' (mpi4py and mpich), or mpi4py built "
                          f"against your cluster's MPI ({error})") from None
    _mpi, _comm = MPI, MPI.COMM_WORLD
    node = _comm.Split_type(MPI.COMM_TYPE_SHARED, key=_comm.Get_rank())
    _local_rank = node.Get_rank()
    node.Free()
    if _comm.Get_size() > 1:
        sys.excepthook = _abort_on_exception


def _abort_on_exception(kind, value, tb) -> None:
    """``sys.excepthook`` of a rank: print the error under the rank's number, end the job."""
    me, ranks = _mpi.COMM_WORLD.Get_rank(), _mpi.COMM_WORLD.Get_size()
    header = f"nervenet.distributed: rank {me} of {ranks} failed; aborting all ranks\n"
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(header + "".join(f"[rank {me}] {line}\n"
                                      for line in text.rstrip("\n").split("\n")))
    sys.stderr.flush()
    abort(1)


#: seconds a failing rank waits before ``MPI_Abort``: the launcher forwards each rank's output
#: through a pipe, and an abort may end the job before it has passed on the error just written
ABORT_GRACE_SECONDS = 0.5


def abort(code: int = 1) -> None:
    """End every rank of the job with exit status ``code`` (``MPI_Abort``, after
    ``ABORT_GRACE_SECONDS``); in a world of one process, exit this one now."""
    sys.stderr.flush()
    sys.stdout.flush()
    if _mpi is not None and _mpi.COMM_WORLD.Get_size() > 1:
        time.sleep(ABORT_GRACE_SECONDS)
        _mpi.COMM_WORLD.Abort(code)
    os._exit(code)


#: the variables MPI launchers set to the number of processes they started: MPICH's and Intel
#: MPI's hydra and Slurm's srun (PMI), Open MPI's mpirun
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launched_by_mpi() -> bool:
    """Whether an MPI launcher (``mpiexec -n P`` with P > 1, ``srun``) started this process,
    by its environment variables; imports nothing. Programs that run alone as well as under
    ``mpiexec`` (the ``nervenet`` command) call ``init()`` when this is true."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


@contextlib.contextmanager
def independent():
    """Within the block this process is a world of one (``rank() == 0``, ``size() == 1``, MPI's
    ``COMM_SELF``): fit trains on this process's data alone. For ranks that work on different
    things, as the workers of a hyperparameter search under ``mpiexec``."""
    global _comm
    saved = _comm
    if saved is not None:
        _comm = _mpi.COMM_SELF
    try:
        yield
    finally:
        _comm = saved


def is_initialized() -> bool:
    """Whether ``init()`` has run in this process."""
    return _comm is not None


def rank() -> int:
    """This process's number in the world, 0 to ``size() - 1`` (0 before ``init()``)."""
    return 0 if _comm is None else _comm.Get_rank()


def size() -> int:
    """The number of processes in the world (1 before ``init()``)."""
    return 1 if _comm is None else _comm.Get_size()


def local_rank() -> int:
    """This process's number among the ranks on the same machine (to pick a device or pin
    threads; 0 before ``init()``)."""
    return _local_rank


def barrier() -> None:
    """Wait until every rank has called ``barrier()``."""
    if _comm is not None:
        _comm.Barrier()


def _buffer(array, function: str) -> np.ndarray:
    """``array`` itself when MPI can work on it in place (a writeable C-contiguous ndarray),
    else a contiguous copy."""
    if isinstance(array, np.ndarray) and array.flags.c_contiguous and array.flags.writeable:
        out = array
    else:
        out = np.array(getattr(array, "data", array), order="C")
    if out.dtype.kind not in "biufc":
        raise TypeError(f"{function}: expected a numeric array, got dtype {out.dtype}")
    return out


def allreduce(array, op: str = "mean") -> np.ndarray:
    """Combine ``array`` elementwise over all ranks; every rank gets the result.

    ``op="sum"``: ``sum_r array_r``; ``"mean"``: ``(1/size) sum_r array_r``; ``"min"``,
    ``"max"``. A writeable C-contiguous ndarray is reduced in place (``MPI.IN_PLACE``) and
    returned; anything else is copied first. Every rank must pass the same shape and dtype.

    Example (one process):
        >>> allreduce(np.array([1.0, 2.0]), op="sum")
        array([1., 2.])
    """
    if op not in _OPS:
        raise ValueError(f"allreduce: op must be one of {list(_OPS)}, got {op!r}")
    buffer = _buffer(array, "allreduce")
    if _comm is None or _comm.Get_size() == 1:
        return buffer
    mpi_op = {"sum": _mpi.SUM, "mean": _mpi.SUM, "min": _mpi.MIN, "max": _mpi.MAX}[op]
    _comm.Allreduce(_mpi.IN_PLACE, buffer, op=mpi_op)
    if op == "mean":
        if buffer.dtype.kind != "f":
            raise TypeError(f"allreduce: op='mean' needs a floating array, got {buffer.dtype}")
        buffer /= buffer.dtype.type(_comm.Get_size())
    return buffer


def broadcast(array, root: int = 0) -> np.ndarray:
    """Copy ``array`` from rank ``root`` to every rank (in place where possible, as
    ``allreduce``); every rank must pass an array of the same shape and dtype.

    Example (one process):
        >>> broadcast(np.arange(3))
        array([0, 1, 2])
    """
    check_int("broadcast", "root", root, 0, size() - 1)
    buffer = _buffer(array, "broadcast")
    if _comm is not None and _comm.Get_size() > 1:
        _comm.Bcast(buffer, root=int(root))
    return buffer


def allgather_rows(array: np.ndarray, counts=None) -> np.ndarray:
    """Concatenate every rank's ``array`` along axis 0, in rank order (``Allgatherv``).

    Ranks may hold different numbers of rows (``counts``, one per rank, when every rank knows
    them; else they are exchanged first); the other axes and the dtype must agree.
    """
    array = np.ascontiguousarray(array)
    if _comm is None or _comm.Get_size() == 1:
        return array
    if counts is None:
        counts = np.zeros(size(), dtype=np.int64)
        counts[rank()] = array.shape[0]
        allreduce(counts, op="sum")
    counts = np.asarray(counts, dtype=np.int64)
    out = np.empty((int(counts.sum()),) + array.shape[1:], dtype=array.dtype)
    row = int(np.prod(array.shape[1:], dtype=np.int64))
    _comm.Allgatherv(array, [out, counts * row])
    return out
