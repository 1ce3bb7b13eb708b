"""Native TensorRT 10 engines: cache key, sidecar JSON, validation and the builder.

An engine is only valid for the TensorRT version, GPU model and compute capability that built it,
for one ONNX file and one precision. Every serialized engine ``X.engine`` has a sidecar ``X.engine.json``
recording all of these plus the engine's I/O tensors (name, mode, shape, dtype). On load the sidecar
is compared with the current environment and the ONNX model, and the deserialized engine's I/O
with the sidecar; any mismatch triggers a rebuild (the policy of Autoware's tensorrt_common).
``tensorrt`` and ``pycuda`` are imported only inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fsmde_ros.backends.base import BackendError
from fsmde_ros.backends.model_info import ModelInfo
from fsmde_ros.model.contract import INPUT_NAME

LOG = logging.getLogger(__name__)

SIDECAR_FORMAT = "fsmde-trt-engine-v1"
DEFAULT_WORKSPACE_BYTES = 2 << 30
COMPARED_FIELDS = ("format", "tensorrt_version", "gpu_name", "compute_capability", "precision",
                   "onnx_sha256", "num_cameras", "io")


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor."""

    name: str
    mode: str  # "input" | "output"
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name


@dataclass(frozen=True)
class BuildEnvironment:
    """What an engine is bound to besides the model: TensorRT version and GPU."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.6"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def optional_file_sha256(path: Path | None) -> str:
    """SHA-256 of a file, or "" when there is none."""
    return file_sha256(path) if path is not None and path.is_file() else ""


def expected_io(info: ModelInfo, num_cameras: int) -> tuple[TensorSpec, ...]:
    """The I/O tensors an engine of this student has (the contract of ``DeployStudent``).

    TensorRT reports the batch axis of a dynamic-batch graph as -1 (its optimisation profile then
    pins it to ``num_cameras``).
    """
    c = info.config
    n = -1 if info.dynamic_batch else num_cameras
    h, w, k = c.input_height, c.input_width, c.num_bins
    return (
        TensorSpec(INPUT_NAME, "input", (n, h, w, 3), "uint8"),
        TensorSpec("depth", "output", (n, h, w), "float32"),
        TensorSpec("confidence", "output", (n, h, w), "float32"),
        TensorSpec("probabilities", "output", (n, h, w, k), "float32"),
        TensorSpec("bin_centres", "output", (n, k), "float32"),
    )


def engine_cache_key(onnx_sha256: str, precision: str, num_cameras: int, env: BuildEnvironment) -> str:
    """16 hex digits that change whenever the model, precision, camera count, TensorRT or GPU change.

    The int8 calibration data is not part of the key: rebuild with new calibration images to
    recalibrate (a build without images reuses the calibration cache).
    """
    parts = [SIDECAR_FORMAT, onnx_sha256, precision, str(num_cameras), env.tensorrt_version, env.gpu_name,
             env.compute_capability]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def engine_path_for(onnx_path: Path, engine_dir: Path, precision: str, num_cameras: int,
                    key: str) -> Path:
    return engine_dir / f"{onnx_path.stem}.{precision}.n{num_cameras}.{key}.engine"


def timing_cache_path_for(engine_dir: Path, env: BuildEnvironment) -> Path:
    """The builder's timing cache in ``engine_dir``: one per TensorRT version and GPU (what its layer
    timings depend on), shared by every model, precision and camera count built there."""
    parts = ["timing", env.tensorrt_version, env.gpu_name, env.compute_capability]
    return engine_dir / f"timing.{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:16]}.cache"


def sidecar_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + ".json")


def make_sidecar(env: BuildEnvironment, precision: str, onnx_sha256: str, num_cameras: int,
                 io: tuple[TensorSpec, ...], workspace_bytes: int, calibration_sha256: str = "") -> dict:
    return {
        "format": SIDECAR_FORMAT,
        **asdict(env),
        "precision": precision,
        "onnx_sha256": onnx_sha256,
        "num_cameras": num_cameras,
        "io": [asdict(t) | {"shape": list(t.shape)} for t in io],
        "workspace_bytes": workspace_bytes,
        "calibration_sha256": calibration_sha256,
        "built_unix_s": int(time.time()),
    }


def read_sidecar(path: Path) -> dict:
    """The sidecar of an engine; BackendError naming the file when absent or unreadable."""
    if not path.is_file():
        raise BackendError(f"{path}: engine sidecar not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackendError(f"{path}: engine sidecar is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{path}: engine sidecar is not a JSON object")
    return data


def sidecar_mismatches(stored: dict, expected: dict) -> list[str]:
    """Human-readable differences between a stored sidecar and the one a fresh build would write."""
    problems = []
    for field in COMPARED_FIELDS:
        if stored.get(field) != expected.get(field):
            problems.append(f"{field}: engine {stored.get(field)!r} != current {expected.get(field)!r}")
    return problems


def io_mismatches(actual: tuple[TensorSpec, ...], stored: dict) -> list[str]:
    """Differences between a deserialized engine's I/O tensors and its sidecar."""
    recorded = {t["name"]: t for t in stored.get("io", [])}
    problems = []
    for tensor in actual:
        want = recorded.pop(tensor.name, None)
        got = asdict(tensor) | {"shape": list(tensor.shape)}
        if want is None:
            problems.append(f"engine tensor '{tensor.name}' is not in the sidecar")
        elif want != got:
            problems.append(f"tensor '{tensor.name}': engine {got} != sidecar {want}")
    problems.extend(f"sidecar tensor '{name}' is not in the engine" for name in recorded)
    return problems


def current_environment(device_id: int) -> BuildEnvironment:
    """TensorRT version and the GPU of ``device_id`` (needs tensorrt and pycuda)."""
    trt, cuda = import_tensorrt()
    cuda.init()
    if device_id >= cuda.Device.count():
        raise BackendError(f"CUDA device {device_id} not present ({cuda.Device.count()} GPU(s) found)")
    device = cuda.Device(device_id)
    major, minor = device.compute_capability()
    return BuildEnvironment(trt.__version__, device.name(), f"{major}.{minor}")


def import_tensorrt():
    """(tensorrt, pycuda.driver), or BackendError saying what is missing."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError("native TensorRT backend needs the 'tensorrt' Python package (TensorRT 10; "
                           f"pip install '.[gpu]' on a machine with an NVIDIA GPU): {exc}") from exc
    if not trt.__version__.startswith("10."):
        raise BackendError(f"native TensorRT backend needs TensorRT 10, found {trt.__version__}")
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError(f"native TensorRT backend needs pycuda (pip install pycuda): {exc}") from exc
    return trt, cuda


def engine_io(engine) -> tuple[TensorSpec, ...]:
    """I/O tensors of a deserialized ``tensorrt.ICudaEngine`` (name-based tensor API)."""
    import numpy as np
    import tensorrt as trt

    specs = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
        specs.append(TensorSpec(name, mode, tuple(int(d) for d in engine.get_tensor_shape(name)), dtype))
    return tuple(specs)


def trt_logger():
    """A ``tensorrt.ILogger`` that routes TensorRT messages to Python logging; keep it alive as long as
    the builder, runtime or engine that uses it."""
    import tensorrt as trt

    severity = trt.ILogger.Severity
    levels = {severity.INTERNAL_ERROR: logging.ERROR, severity.ERROR: logging.ERROR,
              severity.WARNING: logging.WARNING, severity.INFO: logging.DEBUG}

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, level, msg):
            LOG.log(levels.get(level, logging.DEBUG), "TensorRT: %s", msg)

    return Logger()


def attach_timing_cache(config, path: Path):
    """Give the builder ``config`` the timing cache stored at ``path`` (an empty one when there is none,
    or when TensorRT rejects the file: another TensorRT version or device, or a corrupt file)."""
    cache = config.create_timing_cache(path.read_bytes() if path.is_file() else b"")
    if cache is None or not config.set_timing_cache(cache, False):
        LOG.warning("%s: TensorRT rejected the timing cache (other TensorRT version or GPU, or corrupt); "
                    "starting an empty one", path)
        config.set_timing_cache(config.create_timing_cache(b""), False)


def build_engine(onnx_path: Path, onnx_sha256: str, engine_path: Path, info: ModelInfo, num_cameras: int,
                 precision: str, env: BuildEnvironment, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
                 calibrator=None, calibration_cache: Path | None = None,
                 timing_cache: Path | None = None) -> dict:
    """Parse ``onnx_path``, build a ``precision`` engine for ``num_cameras`` and write it with its sidecar.

    ``calibrator`` (an IInt8EntropyCalibrator2, see ``tensorrt_calibration``) is required for int8; the
    hash of the ``calibration_cache`` it wrote is recorded in the sidecar. ``timing_cache`` (the file of
    ``timing_cache_path_for``) seeds the builder's layer timings and is rewritten with the new ones, so
    later builds on the same TensorRT and GPU skip the timing they share.
    Returns the sidecar. Written atomically: a crash never leaves a half engine under the final name.
    """
    trt, _ = import_tensorrt()
    logger = trt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"{onnx_path}: TensorRT cannot parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    shape = (num_cameras, info.config.input_height, info.config.input_width, 3)
    profile = None
    if info.dynamic_batch:
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT_NAME, shape, shape, shape)
        config.add_optimization_profile(profile)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        if calibrator is None:
            raise BackendError(f"{onnx_path}: an int8 build needs a calibrator (calibration images or cache)")
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers TensorRT keeps out of int8 may still use fp16
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    if timing_cache is not None:
        attach_timing_cache(config, timing_cache)
    LOG.info("building TensorRT %s engine for %s (%d cameras) on %s; this takes a while",
             precision, onnx_path, num_cameras, env.gpu_name)
    started = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    partial = engine_path.with_name(engine_path.name + ".partial")
    partial.write_bytes(bytes(serialized))
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(partial.read_bytes())
    if engine is None:
        partial.unlink()
        raise BackendError(f"{engine_path}: freshly built engine does not deserialize")
    sidecar = make_sidecar(env, precision, onnx_sha256, num_cameras, engine_io(engine),
                           workspace_bytes, optional_file_sha256(calibration_cache))
    partial.replace(engine_path)
    sidecar_path(engine_path).write_text(json.dumps(sidecar, indent=2))
    if timing_cache is not None:
        partial_cache = timing_cache.with_name(timing_cache.name + ".partial")
        partial_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
        partial_cache.replace(timing_cache)
    LOG.info("built %s in %.0f s", engine_path, time.monotonic() - started)
    return sidecar
