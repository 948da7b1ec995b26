"""Data-parallel training over MPI (``pip install 'nervenet[mpi]'``: mpi4py and mpich).

Start the same script on several processes (``mpiexec -n 4 python train.py``, or ``srun``
under Slurm) and call ``init()`` at its top: ``Model.fit`` then splits each global batch over
the ranks and sums their gradients (the result equals the one-process run), and only rank 0
prints and writes files. See docs/distributed.md.

* the world (``nervenet/world.py``, on the ground floor, so that layers may use it): ``init,
  rank, size, local_rank, is_initialized, barrier, allreduce, broadcast``;
* Horovod's API (``training.py``): ``DistributedOptimizer, BroadcastGlobalVariables,
  MetricAverage, LearningRateWarmup``;
* what fit, evaluate and predict do on each rank: ``data_parallel.py`` (used by the models).

mpi4py is imported by ``init()`` alone, so ``import nervenet`` does not load it.
"""

from nervenet.distributed.training import (
    BroadcastGlobalVariables,
    DistributedOptimizer,
    LearningRateWarmup,
    MetricAverage,
    broadcast_model,
)
from nervenet.world import (
    abort,
    allgather_rows,
    allreduce,
    barrier,
    broadcast,
    independent,
    init,
    is_initialized,
    launched_by_mpi,
    local_rank,
    rank,
    size,
)

__all__ = [
    "BroadcastGlobalVariables", "DistributedOptimizer", "LearningRateWarmup", "MetricAverage",
    "abort", "allgather_rows", "allreduce", "barrier", "broadcast", "broadcast_model",
    "independent", "init", "is_initialized", "launched_by_mpi", "local_rank", "rank", "size",
]
