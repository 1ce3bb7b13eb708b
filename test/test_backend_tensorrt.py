"""Native TensorRT backend without a GPU: cache key, sidecar validation, calibration stream, missing
packages, and the load/build/run flow against an in-process stand-in for tensorrt + pycuda.

The stand-in implements the slice of the TensorRT 10 / pycuda API the backend uses (name-based tensor
API, build_serialized_network, page-locked buffers, memcpy on a stream) and executes the "engine"
with ONNX Runtime, so the backend's bookkeeping and buffer flow are exercised end to end.
"""

import enum
import json
import logging
import sys
import types

import cv2
import numpy as np
import pytest

from fsmde_ros.backends import BackendError, create_backend
from fsmde_ros.backends.model_info import read_onnx_info
from fsmde_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from fsmde_ros.backends.tensorrt_backend import rebuild_reason
from fsmde_ros.backends.tensorrt_calibration import (
    CalibrationBatchStream,
    image_sets_from_bag,
    image_sets_from_files,
    make_entropy_calibrator,
)
from fsmde_ros.backends.tensorrt_engine import (
    BuildEnvironment,
    TensorSpec,
    engine_cache_key,
    expected_io,
    io_mismatches,
    make_sidecar,
    sidecar_mismatches,
    sidecar_path,
    timing_cache_path_for,
)
from fsmde_ros.model import build_student
from fsmde_ros.model.onnx_export import export_onnx
from fsmde_ros.tools import build_engine as build_engine_cli

ENV = BuildEnvironment("10.3.0", "NVIDIA RTX A4000", "8.6")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    return export_onnx(build_student("tiny", seed=0), root / "tiny.onnx").path


def sidecar_for(info, precision="fp16", env=ENV, n=6):
    return make_sidecar(env, precision, "ab" * 32, n, expected_io(info, n), 1 << 30)


# --- cache key and sidecar ------------------------------------------------------------------------

def test_cache_key_changes_with_everything_the_engine_depends_on():
    base = engine_cache_key("a" * 64, "fp16", 6, ENV)
    assert base == engine_cache_key("a" * 64, "fp16", 6, ENV) and len(base) == 16
    variants = [
        engine_cache_key("b" * 64, "fp16", 6, ENV),
        engine_cache_key("a" * 64, "int8", 6, ENV),
        engine_cache_key("a" * 64, "fp16", 5, ENV),
        engine_cache_key("a" * 64, "fp16", 6, BuildEnvironment("10.4.0", ENV.gpu_name, "8.6")),
        engine_cache_key("a" * 64, "fp16", 6, BuildEnvironment("10.3.0", "NVIDIA A100", "8.6")),
        engine_cache_key("a" * 64, "fp16", 6, BuildEnvironment("10.3.0", ENV.gpu_name, "8.7")),
    ]
    assert len({base, *variants}) == 7


def test_expected_io_is_the_deploy_contract(tiny_onnx, tmp_path):
    info = read_onnx_info(tiny_onnx)
    io = {t.name: t for t in expected_io(info, 6)}
    assert io["images"] == TensorSpec("images", "input", (6, 64, 96, 3), "uint8")
    assert io["probabilities"].shape == (6, 64, 96, 8) and io["bin_centres"].shape == (6, 8)
    dynamic = read_onnx_info(export_onnx(build_student("tiny", seed=0), tmp_path / "d.onnx",
                                         dynamic_batch=True, check_parity=False).path)
    assert {t.shape[0] for t in expected_io(dynamic, 6)} == {-1}


@pytest.mark.parametrize(
    ("field", "value"),
    [("tensorrt_version", "10.0.1"), ("gpu_name", "NVIDIA Jetson Orin"), ("compute_capability", "8.7"),
     ("precision", "fp32"), ("onnx_sha256", "cd" * 32), ("num_cameras", 5), ("format", "other")],
)
def test_sidecar_mismatch_names_the_field(tiny_onnx, tmp_path, field, value):
    info = read_onnx_info(tiny_onnx)
    expected = sidecar_for(info)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine")
    stored = dict(expected, **{field: value})
    sidecar_path(engine).write_text(json.dumps(stored))
    assert sidecar_mismatches(expected, expected) == []
    reason = rebuild_reason(engine, expected)
    assert reason is not None and reason.startswith(f"{engine}: {field}: engine {value!r}")


def test_sidecar_io_mismatch_and_matching_sidecar(tiny_onnx, tmp_path):
    info = read_onnx_info(tiny_onnx)
    expected = sidecar_for(info)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine")
    sidecar_path(engine).write_text(json.dumps(expected))
    assert rebuild_reason(engine, expected) is None
    stored = json.loads(json.dumps(expected))
    stored["io"][1]["dtype"] = "float16"
    sidecar_path(engine).write_text(json.dumps(stored))
    assert "io: engine" in rebuild_reason(engine, expected)


def test_missing_engine_and_bad_sidecars(tiny_onnx, tmp_path):
    expected = sidecar_for(read_onnx_info(tiny_onnx))
    engine = tmp_path / "m.engine"
    assert rebuild_reason(engine, expected) == f"{engine}: no engine yet"
    engine.write_bytes(b"engine")
    assert rebuild_reason(engine, expected) == f"{sidecar_path(engine)}: engine sidecar not found"
    sidecar_path(engine).write_text("{not json")
    assert "engine sidecar is not valid JSON" in rebuild_reason(engine, expected)


def test_engine_io_checked_against_sidecar(tiny_onnx):
    info = read_onnx_info(tiny_onnx)
    sidecar = sidecar_for(info)
    io = expected_io(info, 6)
    assert io_mismatches(io, sidecar) == []
    changed = (*io[:2], TensorSpec("confidence", "output", (6, 32, 48), "float32"), *io[3:])
    assert io_mismatches(changed, sidecar)[0].startswith("tensor 'confidence': engine")
    assert io_mismatches(io[:-1], sidecar) == ["sidecar tensor 'bin_centres' is not in the engine"]
    extra = (*io, TensorSpec("logits", "output", (6, 8), "float32"))
    assert io_mismatches(extra, sidecar) == ["engine tensor 'logits' is not in the sidecar"]


# --- calibration ----------------------------------------------------------------------------------

def camera_sets(count, n=6, h=90, w=160):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8) for _ in range(count)]


def test_calibration_stream_resizes_and_limits():
    batches = list(CalibrationBatchStream(camera_sets(5), (6, 64, 96, 3), max_batches=3))
    assert len(batches) == 3
    assert all(b.shape == (6, 64, 96, 3) and b.dtype == np.uint8 and b.flags.c_contiguous for b in batches)
    same = camera_sets(1, h=64, w=96)
    assert np.array_equal(next(iter(CalibrationBatchStream(same, (6, 64, 96, 3)))), same[0])


def test_calibration_stream_rejects_bad_sets():
    with pytest.raises(BackendError, match="set 0 has 4 images, the model takes 6 cameras"):
        list(CalibrationBatchStream(camera_sets(1, n=4), (6, 64, 96, 3), source="bag x"))
    with pytest.raises(BackendError, match=r"set 0 is not uint8 \(N, H, W, 3\) RGB"):
        list(CalibrationBatchStream([camera_sets(1)[0].astype(np.float32)], (6, 64, 96, 3)))
    with pytest.raises(BackendError, match="empty: no calibration images"):
        list(CalibrationBatchStream([], (6, 64, 96, 3), source="empty"))
    with pytest.raises(BackendError, match="max_batches must be >= 1"):
        CalibrationBatchStream([], (6, 64, 96, 3), max_batches=0)


def test_image_files_are_grouped_per_camera_set(tmp_path):
    written = camera_sets(2, n=2, h=20, w=30)
    paths = []
    for i, image in enumerate(np.concatenate(written)):
        paths.append(tmp_path / f"{i:02d}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    sets = list(image_sets_from_files(paths, 2))
    assert len(sets) == 2
    assert np.array_equal(sets[0], written[0]) and np.array_equal(sets[1], written[1])
    with pytest.raises(BackendError, match="3 calibration image files do not split into sets of 2"):
        list(image_sets_from_files(paths[:3], 2))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"no png")
    with pytest.raises(BackendError, match=r"broken\.png: not a readable image"):
        list(image_sets_from_files([broken, paths[0]], 2))


def test_bag_frames_become_camera_sets(tmp_path):
    from fsmde_ros.bagio import write_surround_bag
    from fsmde_ros.datasets.sample import SurroundSample

    names = ("CAM_A", "CAM_B")
    frames = camera_sets(3, n=2, h=24, w=32)
    samples = [SurroundSample(images=images, K=np.tile(np.eye(3), (2, 1, 1)),
                              cam2ego=np.tile(np.eye(4), (2, 1, 1)),
                              sparse_depth=np.full((2, 24, 32), np.nan, np.float32), camera_names=names,
                              stamps_ns=np.array([i * 100 + 1, i * 100 + 2], np.int64), frame_index=i)
               for i, images in enumerate(frames)]
    bag = tmp_path / "calib_bag"
    write_surround_bag(bag, samples)
    sets = list(image_sets_from_bag(bag, names))
    assert len(sets) == 3
    for got, want in zip(sets, frames, strict=True):
        assert np.array_equal(got, want)


# --- without tensorrt / pycuda (this machine) ------------------------------------------------------

def test_missing_tensorrt_is_a_clear_error(tiny_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match="needs the 'tensorrt' Python package"):
        create_backend("tensorrt", tiny_onnx)
    with pytest.raises(BackendError, match="needs the 'tensorrt' Python package"):
        make_entropy_calibrator(None, tiny_onnx.with_suffix(".calib"))


def test_build_engine_cli_reports_missing_tensorrt(tiny_onnx, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert build_engine_cli.main([str(tiny_onnx), "--build-only"]) == 1
    error = capsys.readouterr().err
    assert "fsmde-build-engine: error: native TensorRT backend needs the 'tensorrt'" in error


def test_build_engine_cli_rejects_a_mismatched_camera_count(tiny_onnx, capsys):
    assert build_engine_cli.main([str(tiny_onnx), "--num-cameras", "4", "--build-only"]) == 1
    assert "exported for 6 cameras (static batch), the caller expects 4" in capsys.readouterr().err


# --- the load / build / run flow on a stand-in for tensorrt + pycuda -------------------------------

class FakeGpu:
    """Device memory, engines and build counts of the stand-in."""

    def __init__(self):
        self.memory: dict[int, np.ndarray] = {}
        self.builds: list[dict] = []
        self.timing_seeds: list[bytes] = []  # the timing cache each build started from
        self.contexts = 0
        self.detached = 0


def fake_modules(gpu: FakeGpu):
    """(tensorrt, pycuda, pycuda.driver) stand-ins following the documented Python API."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"

    class Severity(enum.Enum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        def __init__(self):
            pass

    ILogger.Severity = Severity
    trt.ILogger = ILogger
    trt.TensorIOMode = enum.Enum("TensorIOMode", "NONE INPUT OUTPUT")
    trt.MemoryPoolType = enum.Enum("MemoryPoolType", "WORKSPACE")
    trt.BuilderFlag = enum.Enum("BuilderFlag", "FP16 INT8")
    trt.nptype = np.dtype

    class IInt8EntropyCalibrator2:
        def __init__(self):
            pass

    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    class Network:
        onnx_path = None

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            self.network = network

        def parse_from_file(self, path):
            self.network.onnx_path = path
            return True

    class TimingCache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return self.data

    class Config:
        def __init__(self):
            self.flags, self.pool = set(), {}
            self.int8_calibrator = None
            self.timing_cache = None

        def create_timing_cache(self, serialized):
            return TimingCache(bytes(serialized))

        def set_timing_cache(self, cache, ignore_mismatch):
            assert ignore_mismatch is False
            if cache.data and not cache.data.startswith(b"timing:"):  # header check of a foreign cache
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

        def set_memory_pool_limit(self, pool, size):
            self.pool[pool] = size

        def set_flag(self, flag):
            self.flags.add(flag.name)

    class Builder:
        def __init__(self, logger):
            assert isinstance(logger, ILogger)

        def create_network(self, flags):
            assert flags == 0
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            if config.int8_calibrator is not None:  # what TensorRT does: drain the batches
                calibrator = config.int8_calibrator
                cache = calibrator.read_calibration_cache()
                while cache is None and calibrator.get_batch(["images"]):
                    pass
                if cache is None:
                    calibrator.write_calibration_cache(b"scales")
            gpu.builds.append({"flags": sorted(config.flags)})
            if config.timing_cache is not None:  # layers timed in this build join the cache
                gpu.timing_seeds.append(config.timing_cache.data)
                config.timing_cache.data = (config.timing_cache.data or b"timing:") + b"L"
            return json.dumps({"onnx": network.onnx_path}).encode()

    class Engine:
        def __init__(self, onnx_path):
            self.session = OnnxRuntimeBackend(onnx_path, "cpu").session
            self.tensors = [(i.name, trt.TensorIOMode.INPUT, i.shape, np.uint8)
                            for i in self.session.get_inputs()]
            self.tensors += [(o.name, trt.TensorIOMode.OUTPUT, o.shape, np.float32)
                             for o in self.session.get_outputs()]
            self.num_io_tensors = len(self.tensors)

        def _tensor(self, name):
            return next(t for t in self.tensors if t[0] == name)

        def get_tensor_name(self, index):
            return self.tensors[index][0]

        def get_tensor_mode(self, name):
            return self._tensor(name)[1]

        def get_tensor_shape(self, name):
            return [d if isinstance(d, int) else -1 for d in self._tensor(name)[2]]

        def get_tensor_dtype(self, name):
            return self._tensor(name)[3]

        def create_execution_context(self):
            return Context(self)

    class Context:
        def __init__(self, engine):
            self.engine, self.addresses = engine, {}

        def get_tensor_shape(self, name):
            return self.engine.get_tensor_shape(name)

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def execute_async_v3(self, stream_handle):
            assert stream_handle == 7 and gpu.contexts == 1
            names = [t[0] for t in self.engine.tensors if t[1] == trt.TensorIOMode.OUTPUT]
            images = gpu.memory[self.addresses["images"]].reshape(self.get_tensor_shape("images"))
            outputs = self.engine.session.run(names, {"images": images})
            for name, value in zip(names, outputs, strict=True):
                gpu.memory[self.addresses[name]][...] = value.view(np.uint8).reshape(-1)
            return True

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            try:
                return Engine(json.loads(data)["onnx"])
            except (ValueError, KeyError):
                return None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime

    driver = types.ModuleType("pycuda.driver")
    driver.Error = RuntimeError
    driver.init = lambda: None

    class PrimaryContext:
        def push(self):
            gpu.contexts += 1

        def pop(self):
            gpu.contexts -= 1

        def detach(self):
            gpu.detached += 1

    class Device:
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return 1

        def name(self):
            return ENV.gpu_name

        def compute_capability(self):
            return (8, 6)

        def retain_primary_context(self):
            return PrimaryContext()

    class DeviceBuffer:
        def __init__(self, nbytes):
            self.address = 4096 * (len(gpu.memory) + 1)
            gpu.memory[self.address] = np.zeros(nbytes, np.uint8)

        def __int__(self):
            return self.address

        def free(self):
            del gpu.memory[self.address]

    def memcpy_htod(device, host):
        gpu.memory[int(device)][...] = host.view(np.uint8).reshape(-1)

    def memcpy_htod_async(device, host, stream):
        memcpy_htod(device, host)

    def memcpy_dtoh_async(host, device, stream):
        host.view(np.uint8).reshape(-1)[...] = gpu.memory[int(device)]

    class Stream:
        handle = 7

        def synchronize(self):
            pass

    driver.Device, driver.Stream, driver.mem_alloc = Device, Stream, DeviceBuffer
    driver.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype)
    driver.memcpy_htod, driver.memcpy_htod_async, driver.memcpy_dtoh_async = (
        memcpy_htod, memcpy_htod_async, memcpy_dtoh_async)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver
    return trt, pycuda, driver


@pytest.fixture
def fake_gpu(monkeypatch):
    gpu = FakeGpu()
    trt, pycuda, driver = fake_modules(gpu)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    return gpu


def test_build_cache_reuse_and_rebuild_on_stale_sidecar(fake_gpu, tiny_onnx, tmp_path):
    from fsmde_ros.backends.factory import backend_candidates

    assert backend_candidates("auto")[0] == "tensorrt"
    images = camera_sets(1, h=64, w=96)[0]
    backend = create_backend("auto", tiny_onnx, precision="fp16", engine_dir=tmp_path)
    assert backend.name == "tensorrt-fp16" and fake_gpu.builds == [{"flags": ["FP16"]}]
    engine = backend.plan.engine_path
    sidecar = json.loads(sidecar_path(engine).read_text())
    assert sidecar["gpu_name"] == ENV.gpu_name and sidecar["compute_capability"] == "8.6"
    assert sidecar["precision"] == "fp16" and sidecar["tensorrt_version"] == "10.3.0"
    result = backend.infer(images, with_probabilities=True)
    reference = OnnxRuntimeBackend(tiny_onnx, "cpu").infer(images, with_probabilities=True)
    np.testing.assert_array_equal(result.depth, reference.depth)
    np.testing.assert_array_equal(result.probabilities, reference.probabilities)
    assert fake_gpu.contexts == 0
    backend.close()
    assert fake_gpu.memory == {}

    create_backend("tensorrt", tiny_onnx, precision="fp16", engine_dir=tmp_path).close()
    assert len(fake_gpu.builds) == 1  # valid cached engine reused

    sidecar["gpu_name"] = "NVIDIA A100"
    sidecar_path(engine).write_text(json.dumps(sidecar))
    create_backend("tensorrt", tiny_onnx, precision="fp16", engine_dir=tmp_path).close()
    assert len(fake_gpu.builds) == 2  # stale sidecar -> rebuilt
    engine.write_bytes(b"corrupt")
    create_backend("tensorrt", tiny_onnx, precision="fp16", engine_dir=tmp_path).close()
    assert len(fake_gpu.builds) == 3  # engine that does not deserialize -> rebuilt


def test_int8_calibrates_once_then_uses_the_cache(fake_gpu, tiny_onnx, tmp_path):
    stream = CalibrationBatchStream(camera_sets(4), (6, 64, 96, 3))
    backend = create_backend("tensorrt", tiny_onnx, precision="int8", engine_dir=tmp_path, calibration=stream)
    cache = backend.plan.calibration_cache
    assert cache.read_bytes() == b"scales" and fake_gpu.builds == [{"flags": ["FP16", "INT8"]}]
    assert json.loads(sidecar_path(backend.plan.engine_path).read_text())["calibration_sha256"]
    backend.close()
    backend.plan.engine_path.unlink()
    create_backend("tensorrt", tiny_onnx, precision="int8", engine_dir=tmp_path).close()  # cache only
    assert len(fake_gpu.builds) == 2
    cache.unlink()
    backend.plan.engine_path.unlink()
    detached = fake_gpu.detached
    with pytest.raises(BackendError, match="int8 needs calibration images"):
        create_backend("tensorrt", tiny_onnx, precision="int8", engine_dir=tmp_path)
    assert fake_gpu.contexts == 0 and fake_gpu.detached == detached + 1


def test_build_engine_cli_builds_checks_and_times(fake_gpu, tiny_onnx, tmp_path, capsys):
    assert build_engine_cli.main([str(tiny_onnx), "--engine-dir", str(tmp_path), "--runs", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == "fp16" and summary["depth_relative_error_vs_ort_cpu"] == 0.0
    assert summary["engine"].endswith(".engine") and summary["latency_ms_median"] > 0


def test_timing_cache_seeds_later_builds_and_survives_a_foreign_file(fake_gpu, tiny_onnx, tmp_path, caplog):
    backend = create_backend("tensorrt", tiny_onnx, precision="fp16", engine_dir=tmp_path)
    timing = backend.plan.timing_cache
    backend.close()
    assert timing.parent == tmp_path and timing.read_bytes() == b"timing:L"
    assert fake_gpu.timing_seeds == [b""]  # the first build starts from an empty cache
    # another precision on the same TensorRT and GPU starts from the stored timings and adds its own
    create_backend("tensorrt", tiny_onnx, precision="fp32", engine_dir=tmp_path).close()
    assert fake_gpu.timing_seeds[-1] == b"timing:L" and timing.read_bytes() == b"timing:LL"
    # the file is keyed by TensorRT version and GPU
    other = BuildEnvironment("10.4.0", ENV.gpu_name, ENV.compute_capability)
    assert timing_cache_path_for(tmp_path, other) != timing
    # a cache TensorRT rejects is replaced by an empty one, with a warning, and the build goes on
    timing.write_bytes(b"foreign")
    for engine in tmp_path.glob("*.engine"):
        engine.unlink()
    with caplog.at_level(logging.WARNING):
        create_backend("tensorrt", tiny_onnx, precision="fp16", engine_dir=tmp_path).close()
    assert "rejected the timing cache" in caplog.text
    assert fake_gpu.timing_seeds[-1] == b"" and timing.read_bytes() == b"timing:L"
