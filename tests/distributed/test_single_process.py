"""nervenet.distributed in a world of one process: the collectives return their input, fit
is unchanged, the Horovod-shaped objects keep what they wrap; SyncBatchNormalization is
BatchNormalization."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from nervenet import callbacks, distributed, layers, models, optimizers, utils, world
from nervenet.autograd import Tensor, gradcheck
from nervenet.autograd.ops.norm import SyncBatchNorm
from nervenet.distributed import data_parallel, training
from tests.scripts import modules_left_imported

needs_mpi4py = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                                  reason="mpi4py is not installed (pip install 'nervenet[mpi]')")


def test_import_nervenet_loads_no_mpi():
    assert modules_left_imported("import nervenet", ("mpi4py",)) == []


def test_one_process_world_before_init():
    assert (distributed.rank(), distributed.size(), distributed.local_rank()) == (0, 1, 0)
    distributed.barrier()
    a = np.arange(4.0)
    assert distributed.allreduce(a) is a  # in place: the same array back
    assert distributed.broadcast(a, root=0) is a
    np.testing.assert_array_equal(distributed.allreduce([1, 2], op="sum"), [1, 2])
    assert distributed.allgather_rows(a) is a


@pytest.mark.parametrize("call, message", [
    (lambda: distributed.allreduce(np.ones(2), op="avg"), "op must be one of"),
    (lambda: distributed.broadcast(np.ones(2), root=1), "root must be an int in [0, 0], got 1"),
    (lambda: distributed.allreduce(np.array([object()]), op="sum"), "numeric array"),
])
def test_bad_arguments(call, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[").replace(
            ")", r"\)")):
        call()


@needs_mpi4py
def test_init_makes_a_world_of_one():
    distributed.init()
    distributed.init()  # twice: nothing more
    assert distributed.is_initialized()
    assert (distributed.rank(), distributed.size(), distributed.local_rank()) == (0, 1, 0)
    assert sys.excepthook is not world._abort_on_exception  # one process: no abort hook
    a = np.array([1.0, 2.0])
    assert distributed.allreduce(a, op="mean") is a


def test_part_splits_rows_contiguously_and_unevenly():
    parts = [data_parallel.part(10, r, 4) for r in range(4)]
    assert [(p.start, p.stop) for p in parts] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    # fewer rows than ranks: every rank takes them all (no empty slice)
    assert [data_parallel.part(2, r, 3) for r in range(3)] == [slice(0, 2)] * 3


def test_layers_that_differ_per_rank_are_named_in_a_warning():
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3),
                               layers.BatchNormalization(name="bn"),
                               layers.SyncBatchNormalization(name="sync"),
                               layers.Dropout(0.5, name="drop"), layers.Dense(1)])
    with pytest.warns(UserWarning, match=r"bn \(BatchNormalization: use "
                                         r"SyncBatchNormalization\), drop \(random numbers"):
        data_parallel.warn_about_per_rank_layers(model)


def test_rank_zero_callbacks_are_kept_on_rank_zero(monkeypatch):
    progress, csv = callbacks.ProgbarLogger(), callbacks.CSVLogger("log.csv")
    history, early = callbacks.History(), callbacks.EarlyStopping()
    assert data_parallel.on_this_rank([progress, csv, history, early]) == [
        progress, csv, history, early]
    monkeypatch.setattr(world, "rank", lambda: 1)
    assert data_parallel.on_this_rank([progress, csv, history, early]) == [history, early]


def _mlp(optimizer="sgd"):
    utils.set_random_seed(3)
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(5, activation="relu"),
                               layers.Dense(2)])
    model.compile(optimizer, loss="mse")
    return model


def test_distributed_optimizer_keeps_name_config_and_saves_without_mpi(tmp_path):
    adam = optimizers.Adam(0.003, beta_1=0.8)
    wrapped = distributed.DistributedOptimizer(adam)
    assert type(wrapped).__name__ == "Adam" and isinstance(wrapped, optimizers.Adam)
    assert wrapped.get_config() == adam.get_config()
    assert optimizers.serialize(wrapped)["class_name"] == "Adam"
    assert distributed.DistributedOptimizer(wrapped) is wrapped
    model = _mlp(wrapped)
    x = np.random.default_rng(0).normal(size=(16, 4))
    model.fit(x, x[:, :2], epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.nervenet")
    loaded = models.load_model(tmp_path / "m.nervenet")
    assert type(loaded.optimizer) is optimizers.Adam
    assert loaded.optimizer.get_config() == adam.get_config()
    with pytest.raises(ValueError, match="full-batch"):
        distributed.DistributedOptimizer(optimizers.LBFGS())


def test_distributed_optimizer_steps_as_the_wrapped_one_in_one_process():
    x = np.random.default_rng(1).normal(size=(24, 4))
    plain, wrapped = _mlp(optimizers.SGD(0.1, momentum=0.9)), _mlp(
        distributed.DistributedOptimizer(optimizers.SGD(0.1, momentum=0.9)))
    for model in (plain, wrapped):
        model.fit(x, x[:, :2], epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(plain.get_weights(), wrapped.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_average_gradients_flat_buffer_keeps_shapes_and_none():
    w1, w2 = Tensor(np.zeros((2, 3))), Tensor(np.zeros(3))
    pairs = training.average_gradients([(np.ones((2, 3)), w1), (None, w2)])
    np.testing.assert_array_equal(pairs[0][0], np.ones((2, 3)))
    np.testing.assert_array_equal(pairs[1][0], np.zeros(3))
    assert pairs[0][1] is w1 and pairs[1][1] is w2


class _FourRanks:
    """What the callbacks see of a world of 4 (fit itself stays in one process)."""

    @staticmethod
    def size():
        return 4

    @staticmethod
    def rank():
        return 0


def test_learning_rate_warmup_follows_horovods_formula(monkeypatch):
    monkeypatch.setattr(training, "world", _FourRanks)
    warmup = distributed.LearningRateWarmup(warmup_epochs=2, initial_lr=0.4,
                                            steps_per_epoch=5)
    # Horovod: lr = initial_lr / size * (e * (size - 1) / warmup_epochs + 1),
    # e = epoch + (batch + 1) / steps_per_epoch
    assert warmup.learning_rate(0, 0) == pytest.approx(0.1 * (0.2 * 3 / 2 + 1))
    assert warmup.learning_rate(1, 4) == pytest.approx(0.4)  # the ramp ends at initial_lr
    model = _mlp(optimizers.SGD(0.4, momentum=0.5))
    seen = []
    record = callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(
            (model.optimizer.learning_rate, model.optimizer.momentum)))
    x = np.random.default_rng(2).normal(size=(40, 4))
    model.fit(x, x[:, :2], epochs=3, batch_size=8, verbose=0, callbacks=[warmup, record])
    lrs = [lr for lr, _ in seen]
    np.testing.assert_allclose(lrs[:10], [warmup.learning_rate(e, b) for e in range(2)
                                          for b in range(5)])
    assert lrs[10:] == [lrs[9]] * 5  # after the warm-up the rate stays at the last value
    assert all(momentum == 0.5 for _, momentum in seen)  # restored after each corrected step


def test_learning_rate_warmup_validates():
    with pytest.raises(ValueError, match="warmup_epochs must be a number > 0"):
        distributed.LearningRateWarmup(0)
    with pytest.raises(ValueError, match="root_rank must be an int >= 0"):
        distributed.BroadcastGlobalVariables(-1)


def test_broadcast_and_metric_average_change_nothing_in_one_process():
    model = _mlp()
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(4).normal(size=(16, 4))
    history = model.fit(x, x[:, :2], epochs=1, verbose=0, shuffle=False, callbacks=[
        distributed.BroadcastGlobalVariables(0), distributed.MetricAverage()])
    reference = _mlp()
    reference_history = reference.fit(x, x[:, :2], epochs=1, verbose=0, shuffle=False)
    assert history.history == reference_history.history
    assert any(np.any(a != b) for a, b in zip(before, model.get_weights()))


def test_sync_batch_normalization_is_batch_normalization_in_one_process():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 3, 3, 4)) * 3 + 2
    sync, plain = layers.SyncBatchNormalization(momentum=0.8), layers.BatchNormalization(
        momentum=0.8)
    gy = rng.normal(size=x.shape)
    results = []
    for layer in (sync, plain):
        inputs = Tensor(x, requires_grad=True)
        y = layer(inputs, training=True)
        (y * Tensor(gy)).sum().backward()
        results.append((y.data, inputs.grad, layer.gamma.grad, layer.beta.grad,
                        layer.moving_mean.data, layer.moving_variance.data,
                        layer(x, training=False).data))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert layers.SyncBatchNormalization.from_config(sync.get_config()).momentum == 0.8


def test_sync_batch_norm_op_gradcheck():
    rng = np.random.default_rng(6)
    x, gamma, beta = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)

    def op(x, gamma, beta):
        return SyncBatchNorm(-1, 1e-3, lambda a: a)(x, gamma, beta)

    assert gradcheck(op, [Tensor(x, requires_grad=True), Tensor(gamma, requires_grad=True),
                          Tensor(beta, requires_grad=True)])


@pytest.mark.parametrize("environment, launched", [
    ({}, False), ({"PMI_SIZE": "1"}, False), ({"PMI_SIZE": "4"}, True),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, True), ({"PMI_SIZE": "x"}, False),
])
def test_launched_by_mpi_reads_the_launchers_variables(monkeypatch, environment, launched):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert distributed.launched_by_mpi() is launched


def test_independent_is_a_world_of_one_and_restores_the_world():
    before = (distributed.rank(), distributed.size(), distributed.is_initialized())
    with distributed.independent():
        assert (distributed.rank(), distributed.size()) == (0, 1)
    assert (distributed.rank(), distributed.size(), distributed.is_initialized()) == before


def test_abort_waits_for_the_launcher_to_pass_the_error_on(monkeypatch):
    """Under mpiexec, ``abort`` gives the launcher ``ABORT_GRACE_SECONDS`` to forward what the
    rank wrote before ``MPI_Abort`` ends the job (an abort at once lost the error now and then)."""
    calls = []

    class World:
        def Get_size(self):
            return 2

        def Abort(self, code):
            calls.append(("abort", code))
            raise SystemExit(code)

    monkeypatch.setattr(world, "_mpi", type("MPI", (), {"COMM_WORLD": World()}))
    monkeypatch.setattr(world.time, "sleep", lambda seconds: calls.append(("sleep", seconds)))
    with pytest.raises(SystemExit):
        world.abort(3)
    assert calls == [("sleep", world.ABORT_GRACE_SECONDS), ("abort", 3)]
    assert world.ABORT_GRACE_SECONDS >= 0.2
