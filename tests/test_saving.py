"""Saving and loading: identical predictions after a round trip, training that resumes on the
same trajectory, atomic saves that survive a killed process, and hostile files rejected with
ModelFormatError without running anything."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nervenet
from nervenet import layers, models, optimizers, saving
from nervenet.saving import ModelFormatError, archive, safetensors

ROOT = Path(__file__).resolve().parents[1]


@saving.register_serializable(package="Tests")
class ScaledDense(layers.Layer):
    """A custom layer with a weight and a constructor argument: y = scale * x @ w."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1], self.units), "glorot_uniform")

    def call(self, inputs):
        return (inputs @ self.w) * self.scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    y = (x[:, :1] * 1.5 - x[:, 1:2] + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    return x, y


def sequential():
    return models.Sequential([layers.Input(shape=(5,)), layers.Dense(8, activation="tanh"),
                              layers.Dense(1)])


def functional():
    inputs = layers.Input(shape=(5,), name="features")
    hidden = layers.Dense(8, activation="relu")(inputs)
    concat = layers.Concatenate()([inputs, hidden])
    return models.Model(inputs=inputs, outputs=layers.Dense(1)(concat))


def custom():
    return models.Sequential([layers.Input(shape=(5,)), ScaledDense(6, scale=0.5),
                              layers.Activation("tanh"), layers.Dense(1)])


BUILDERS = {"sequential": sequential, "functional": functional, "custom": custom}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_load_predicts_identically_and_resumes_the_same_trajectory(kind, tmp_path):
    x, y = data()
    runs = []
    for interrupted in (False, True):
        nervenet.utils.set_random_seed(1)
        model = BUILDERS[kind]()
        model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="mse",
                      metrics=["mae"])
        nervenet.utils.set_random_seed(2)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        if interrupted:
            path = tmp_path / f"{kind}.nervenet"
            model.save(path)
            loaded = models.load_model(path)
            np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
            assert type(loaded) is type(model)
            assert loaded.optimizer.iterations == model.optimizer.iterations == 8
            model = loaded
        nervenet.utils.set_random_seed(3)
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        runs.append((history.history, model.get_weights()))
    (history_a, weights_a), (history_b, weights_b) = runs
    assert history_a == history_b
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def test_two_input_two_output_model_round_trips_with_its_compile_settings(tmp_path):
    input_a, input_b = layers.Input(shape=(2,), name="wide"), layers.Input(shape=(3,), name="deep")
    hidden = layers.Dense(4, activation="relu")(input_b)
    main = layers.Dense(1, name="main")(layers.Concatenate()([input_a, hidden]))
    aux = layers.Dense(1, name="aux")(hidden)
    model = models.Model(inputs=[input_a, input_b], outputs=[main, aux])
    model.compile(optimizer="sgd", loss=["mse", "mae"], loss_weights=[0.9, 0.1])
    x_a, x_b = np.ones((4, 2), np.float32), np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.ones((4, 1), np.float32)
    model.fit([x_a, x_b], [y, y], epochs=1, verbose=0)
    model.save(tmp_path / "wd.nervenet")
    loaded = models.load_model(tmp_path / "wd.nervenet")
    assert loaded.compile_arguments["loss_weights"] == [0.9, 0.1]
    assert loaded.evaluate([x_a, x_b], [y, y]) == model.evaluate([x_a, x_b], [y, y])
    for a, b in zip(loaded.predict({"wide": x_a, "deep": x_b}), model.predict([x_a, x_b])):
        np.testing.assert_array_equal(a, b)


def test_model_file_is_a_zip_of_config_weights_and_metadata(tmp_path):
    model = sequential()
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.nervenet")
    with zipfile.ZipFile(tmp_path / "m.nervenet") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json",
                                              "weights.safetensors"]
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
        tensors = safetensors.loads(archive.read("weights.safetensors"))
    assert config["model"]["class_name"] == "Sequential"
    assert config["compile"]["loss"] == "mse"
    assert metadata["nervenet_version"] == nervenet.__version__ and "date" in metadata
    assert sorted(tensors) == ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"] \
        or all("/" in name for name in tensors)
    np.testing.assert_array_equal(tensors[next(iter(tensors))],
                                  model.named_weights()[next(iter(tensors))].data)


def test_save_weights_and_load_weights_by_name_with_shape_checks(tmp_path):
    model = sequential()
    path = tmp_path / "w.weights.safetensors"
    model.save_weights(path)
    other = models.Sequential([layers.Input(shape=(5,)),
                               layers.Dense(8, activation="tanh", name=model.layers[0].name),
                               layers.Dense(1, name=model.layers[1].name)])
    other.load_weights(path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = models.Sequential([layers.Input(shape=(5,)),
                               layers.Dense(7, name=model.layers[0].name),
                               layers.Dense(1, name=model.layers[1].name)])
    before = wrong.get_weights()
    with pytest.raises(ModelFormatError, match=r"has shape \(5, 8\) in the file.*\(5, 7\)"):
        wrong.load_weights(path)
    for a, b in zip(wrong.get_weights(), before):  # all or nothing
        np.testing.assert_array_equal(a, b)


def test_subclassed_model_saves_weights_but_explains_what_save_needs(tmp_path):
    class Tower(models.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(4, activation="relu")
            self.out = layers.Dense(1)

        def call(self, inputs, training=None):
            return self.out(self.hidden(inputs))

    model = Tower()
    x, y = data(16)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(NotImplementedError, match="get_config.*register_serializable"):
        model.save(tmp_path / "tower.nervenet")
    assert not (tmp_path / "tower.nervenet").exists()
    model.save_weights(tmp_path / "tower.weights.safetensors")
    twin = Tower()
    twin(x[:1])
    twin.load_weights(tmp_path / "tower.weights.safetensors")
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))


def test_unregistered_custom_layer_is_refused_at_save_time(tmp_path):
    class Plain(layers.Layer):
        def call(self, inputs):
            return inputs

    model = models.Sequential([layers.Input(shape=(2,)), Plain(), layers.Dense(1)])
    with pytest.raises(ValueError, match="not registered.*register_serializable"):
        model.save(tmp_path / "m.nervenet")


# ----------------------------------------------------------------------- hostile files
@pytest.fixture
def saved(tmp_path):
    model = sequential()
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "good.nervenet"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return path, members


def write_members(path, members):
    """A model zip of ``members`` with a valid checksum: what an attacker can always make."""
    path.write_bytes(archive.zip_bytes(members))
    return path


def edited_config(members, edit):
    config = json.loads(members["config.json"])
    edit(config)
    return {**members, "config.json": json.dumps(config).encode()}


def test_config_naming_an_unregistered_class_or_a_callable_is_rejected(saved, tmp_path):
    _, members = saved
    probe = tmp_path / "executed"

    def evil_class(config):
        config["model"]["config"]["layers"][1]["class_name"] = "os.system"

    def evil_activation(config):
        config["model"]["config"]["layers"][1]["config"]["activation"] = "builtins.eval"

    def evil_initializer(config):
        config["model"]["config"]["layers"][1]["config"]["kernel_initializer"] = {
            "class_name": "subprocess.Popen", "config": {"args": ["touch", str(probe)]}}

    for edit, message in ((evil_class, "unknown layer 'os.system'"),
                          (evil_activation, "unknown activation 'builtins.eval'"),
                          (evil_initializer, "unknown initializer 'subprocess.Popen'")):
        path = write_members(tmp_path / "evil.nervenet", edited_config(members, edit))
        with pytest.raises(ModelFormatError, match=message):
            models.load_model(path)
    assert not probe.exists()


def test_config_asking_for_huge_weights_is_refused_before_allocating(saved, tmp_path):
    _, members = saved

    def huge(config):
        config["model"]["config"]["layers"][1]["config"]["units"] = 10**9

    path = write_members(tmp_path / "huge.nervenet", edited_config(members, huge))
    with pytest.raises(ModelFormatError, match="more values than the whole weights file"):
        models.load_model(path)


def test_zip_with_path_traversal_or_extra_members_is_rejected(saved, tmp_path):
    _, members = saved
    for name in ("../escape.txt", "/tmp/abs.txt", "sub/config.json"):
        path = write_members(tmp_path / "trav.nervenet", {**members, name: b"x"})
        with pytest.raises(ModelFormatError, match="unexpected member"):
            models.load_model(path)
    assert not (tmp_path.parent / "escape.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["good.nervenet", "trav.nervenet"]


def test_truncated_or_corrupted_files_are_rejected(saved, tmp_path):
    path, members = saved
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 10):
        bad = tmp_path / "cut.nervenet"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError):
            models.load_model(bad)
    flipped = bytearray(data)
    start = data.index(b"dense")  # inside the stored (uncompressed) weights header
    flipped[start] ^= 0x01
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ModelFormatError):
        models.load_model(bad)
    with pytest.raises(ModelFormatError, match="missing member"):
        models.load_model(write_members(tmp_path / "m.nervenet", {
            k: v for k, v in members.items() if k != "metadata.json"}))


def test_mismatched_or_oversized_tensors_are_rejected(saved, tmp_path):
    _, members = saved
    tensors = safetensors.loads(members["weights.safetensors"])
    name = "dense/kernel" if "dense/kernel" in tensors else next(iter(tensors))
    wrong_shape = {**tensors, name: np.zeros((3, 3), np.float32)}
    path = write_members(tmp_path / "shape.nervenet",
                         {**members, "weights.safetensors": safetensors.dumps(wrong_shape)})
    with pytest.raises(ModelFormatError, match="shape"):
        models.load_model(path)
    missing = {k: v for k, v in tensors.items() if k != name}
    path = write_members(tmp_path / "missing.nervenet",
                         {**members, "weights.safetensors": safetensors.dumps(missing)})
    with pytest.raises(ModelFormatError, match="missing"):
        models.load_model(path)


def header_file(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("payload, message", [
    (b"\x01\x00", "fewer than the 8-byte"),
    (struct.pack("<Q", 10**12), "over the limit"),
    (struct.pack("<Q", 100) + b"{}", "truncated"),
    (header_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8),
     "needs 16 bytes"),
    (header_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
     "run past the end"),
    (header_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
     "overlaps"),
    (header_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
     "leaves a gap"),
    (header_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),
     "cover 4 bytes"),
    (header_file({"a": {"dtype": "PY", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
     "unknown dtype"),
    (header_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
     "non-negative ints"),
    (struct.pack("<Q", 105) + b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
     b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' + b"\0", "more than once"),
    (header_file([1, 2]), "JSON object"),
])
def test_safetensors_reader_validates_everything(payload, message):
    with pytest.raises(safetensors.SafetensorsError, match=message):
        safetensors.loads(payload)


def test_safetensors_round_trip_of_every_dtype_and_the_reference_layout():
    arrays = {f"t{i}": np.arange(6).reshape(2, 3).astype(dtype)
              for i, dtype in enumerate(["<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "i1",
                                         "<u8", "<u4", "<u2", "u1", "?"])}
    arrays["empty"] = np.zeros((0, 3), np.float32)
    data = safetensors.dumps(arrays, metadata={"k": "v"})
    (header_size,) = struct.unpack("<Q", data[:8])
    assert (8 + header_size) % 8 == 0
    loaded, metadata = safetensors.loads(data, with_metadata=True)
    assert metadata == {"k": "v"}
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    reference = safetensors_torch.load(data)
    np.testing.assert_array_equal(reference["t1"].numpy(), arrays["t1"])
    assert torch.is_tensor(reference["t0"])


# ----------------------------------------------------------------------- atomic saves
SAVER = """
import sys
import numpy as np
import nervenet
from nervenet import layers, models
model = models.Sequential([layers.Input(shape=(300,)), layers.Dense(400), layers.Dense(300)])
value = float(sys.argv[2])
for w in model.weights:
    w.data[...] = value
print("ready", flush=True)
while True:
    model.save(sys.argv[1])
"""


def test_a_process_killed_while_saving_never_corrupts_the_target(tmp_path):
    target = tmp_path / "model.nervenet"
    first = models.Sequential([layers.Input(shape=(300,)), layers.Dense(400), layers.Dense(300)])
    for w in first.weights:
        w.data[...] = -1.0
    first.save(target)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    rng = np.random.default_rng(0)
    seen_values = {-1.0}
    for attempt in range(10):
        process = subprocess.Popen([sys.executable, "-c", SAVER, str(target), str(attempt)],
                                   stdout=subprocess.PIPE, env=env, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        loaded = models.load_model(target)  # never corrupt: the old file or a new one
        values = {float(v) for w in loaded.weights for v in np.unique(w.data)}
        assert len(values) == 1 and values <= seen_values | {float(attempt)}
        seen_values |= values
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    first.save(target)  # the next save removes the temporaries of dead processes
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
    assert sorted(os.listdir(tmp_path)) == ["model.nervenet"]
    assert len(seen_values) > 1 or leftovers  # the kills did land during saves


def _kill_rounds(target: Path, rounds: int, seed: int) -> tuple[set, int]:
    """Fork a child that saves the model (every weight equal to the round number) in a loop,
    SIGKILL it at a random moment, and check that the target loads as exactly one of the
    models saved so far. Returns the values seen and how many kills left a temporary file."""
    model = models.Sequential([layers.Input(shape=(64,)), layers.Dense(128), layers.Dense(8)])
    for w in model.weights:
        w.data[...] = -1.0
    model.save(target)
    # Kill moments are drawn over 20 ms or ten saves' time (measured here), whichever is
    # longer, so that kills land both between and inside saves however loaded the machine is
    # (a fixed 20 ms window left fewer than 20 complete saves on a machine busy with other
    # processes; four saves' time was too short on a quiet one, where the forked child needs
    # a few milliseconds before its first save completes).
    durations = []
    for _ in range(5):
        start = time.perf_counter()
        model.save(target)
        durations.append(time.perf_counter() - start)
    window = max(0.02, 10 * float(np.median(durations)))
    rng = np.random.default_rng(seed)
    seen, torn = {-1.0}, 0
    for attempt in range(rounds):
        for w in model.weights:
            w.data[...] = attempt
        pid = os.fork()
        if pid == 0:  # the child: save forever, until killed
            try:
                while True:
                    model.save(target)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        torn += any(name.endswith(".tmp") for name in os.listdir(target.parent))
        values = {float(v) for w in models.load_model(target).weights for v in np.unique(w.data)}
        assert len(values) == 1 and values <= seen | {float(attempt)}, (attempt, values)
        seen |= values
    return seen, torn


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_hundred_kills_at_random_moments_never_corrupt_the_target(tmp_path):
    target = tmp_path / "model.nervenet"
    seen, torn = _kill_rounds(target, rounds=200, seed=0)
    assert len(seen) > 20  # many kills landed after a complete save ...
    assert torn > 20  # ... and many in the middle of one, leaving its temporary file
    models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)]).save(target)
    assert sorted(os.listdir(tmp_path)) == ["model.nervenet"]  # the next save cleaned up


def test_failing_write_fsync_or_rename_propagates_and_keeps_the_old_file(tmp_path,
                                                                          monkeypatch):
    target = tmp_path / "m.nervenet"
    model = sequential()
    model.save(target)
    before = target.read_bytes()
    model.layers[0].weights[0].data[...] = 5.0

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    def denied(*args):
        raise PermissionError(13, "Permission denied")

    for name, failure in (("fsync", disk_full), ("replace", denied)):
        with monkeypatch.context() as patch:
            patch.setattr(os, name, failure)
            with pytest.raises(OSError, match="No space|Permission denied"):
                model.save(target)
        assert target.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["m.nervenet"]  # its temporary file removed

    def write_fails(handle):
        handle.write(b"partial")
        disk_full()

    with pytest.raises(OSError, match="No space"):
        archive.atomic_write(target, write_fails)
    assert target.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.nervenet"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing" / "m.nervenet")
    with pytest.raises(FileExistsError):
        model.save(target, overwrite=False)


def test_threads_saving_the_same_file_each_write_their_own_temporary(tmp_path):
    # A save removes the temporaries that dead writers left; it must not remove one another
    # thread of this process is still writing (parallel tuner workers save trials.json so).
    target = tmp_path / "shared.bin"
    payloads = [bytes([n]) * 4096 for n in range(4)]

    def save_often(payload):
        for _ in range(100):
            archive.atomic_write(target, lambda handle: handle.write(payload))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(save_often, payloads))
    assert target.read_bytes() in payloads
    assert os.listdir(tmp_path) == ["shared.bin"]


def test_model_metadata_travels_in_the_file(tmp_path):
    from nervenet import layers, models

    model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)])
    model.metadata = {"class_names": ["no", "yes"], "task": "binary"}
    model.save(tmp_path / "m.nervenet")
    assert models.load_model(tmp_path / "m.nervenet").metadata == model.metadata
    plain = models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)])
    plain.save(tmp_path / "p.nervenet")
    assert models.load_model(tmp_path / "p.nervenet").metadata == {}


def test_a_file_written_before_normalization_kept_its_count_still_loads():
    # Saved by nervenet at ea67072 (before Normalization had Keras's `count` weight):
    # Normalization adapted on x * [1, 2, 3, 4] + 5, then Dense(2); the predictions below are
    # what that version printed for x.
    path = Path(__file__).parent / "files" / "normalization_before_count.nervenet"
    model = models.load_model(path)
    x = np.arange(12, dtype="float32").reshape(3, 4)
    expected = [[8.013603, -4.66734], [5.8066354, -3.0612762], [3.5996675, -1.4552119]]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    normalization = model.layers[0]
    assert normalization.adapted and float(normalization.count.data) == 1.0
    # a file that lacks any other weight is still refused
    with pytest.raises(archive.ModelFormatError, match="missing"):
        saving._assign(model, {"normalization/mean": np.zeros(4, "float32")}, "w")
