"""Native TensorRT 10 backend: cached engine (rebuilt when its sidecar does not match), pycuda buffers.

Runs with the name-based tensor API (``set_tensor_address`` / ``execute_async_v3``) on one CUDA
stream, with page-locked host buffers allocated once. The CUDA primary context of the chosen device
is pushed around every call, so the backend may be used from any thread (one call at a time).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fsmde_ros.backends.base import BackendError, DepthBackend, InferenceResult
from fsmde_ros.backends.checks import check_images, check_result
from fsmde_ros.backends.model_info import ModelInfo, read_onnx_info
from fsmde_ros.backends.tensorrt_calibration import (
    CalibrationBatchStream,
    make_entropy_calibrator,
)
from fsmde_ros.backends.tensorrt_engine import (
    DEFAULT_WORKSPACE_BYTES,
    BuildEnvironment,
    build_engine,
    current_environment,
    engine_cache_key,
    engine_io,
    engine_path_for,
    expected_io,
    file_sha256,
    import_tensorrt,
    io_mismatches,
    make_sidecar,
    read_sidecar,
    sidecar_mismatches,
    sidecar_path,
    timing_cache_path_for,
    trt_logger,
)
from fsmde_ros.model.contract import INPUT_NAME, OUTPUT_NAMES

LOG = logging.getLogger(__name__)


def default_engine_dir(onnx_path: Path) -> Path:
    return onnx_path.parent / "engines"


def default_calibration_cache(engine_dir: Path, onnx_path: Path, onnx_sha256: str, num_cameras: int) -> Path:
    return engine_dir / f"{onnx_path.stem}.n{num_cameras}.{onnx_sha256[:12]}.calib"


def rebuild_reason(engine_path: Path, expected_sidecar: dict) -> str | None:
    """Why the cached engine at ``engine_path`` cannot be used (None when its sidecar matches)."""
    if not engine_path.is_file():
        return f"{engine_path}: no engine yet"
    try:
        stored = read_sidecar(sidecar_path(engine_path))
    except BackendError as exc:
        return str(exc)
    problems = sidecar_mismatches(stored, expected_sidecar)
    return f"{engine_path}: {'; '.join(problems)}" if problems else None


class EnginePlan:
    """Where the engine for (ONNX file, precision, camera count, environment) lives and what it must be."""

    def __init__(self, onnx_path: Path, info: ModelInfo, num_cameras: int, precision: str,
                 env: BuildEnvironment, engine_dir: Path, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
                 calibration_cache: Path | None = None):
        self.onnx_path = onnx_path
        self.info = info
        self.num_cameras = num_cameras
        self.precision = precision
        self.env = env
        self.workspace_bytes = workspace_bytes
        self.onnx_sha256 = file_sha256(onnx_path)
        key = engine_cache_key(self.onnx_sha256, precision, num_cameras, env)
        self.engine_path = engine_path_for(onnx_path, engine_dir, precision, num_cameras, key)
        self.calibration_cache = calibration_cache or default_calibration_cache(
            engine_dir, onnx_path, self.onnx_sha256, num_cameras)
        self.timing_cache = timing_cache_path_for(engine_dir, env)
        self.expected_sidecar = make_sidecar(env, precision, self.onnx_sha256, num_cameras,
                                             expected_io(info, num_cameras), workspace_bytes)

    def rebuild_reason(self) -> str | None:
        return rebuild_reason(self.engine_path, self.expected_sidecar)


class TensorRTBackend(DepthBackend):
    """Builds (or reuses) a TensorRT engine of an exported student and runs it on one GPU."""

    def __init__(self, model_path: str | Path, precision: str = "fp32", engine_dir: str | Path | None = None,
                 device_id: int = 0, num_cameras: int | None = None,
                 input_size: tuple[int, int] | None = None, calibration: CalibrationBatchStream | None = None,
                 calibration_cache: str | Path | None = None,
                 workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, rebuild: bool = False):
        self.model_path = Path(model_path)
        self._trt, self._cuda = import_tensorrt()
        self.info = read_onnx_info(self.model_path)
        self.info.check_expected(num_cameras, input_size)
        n = self.info.config.num_cameras if num_cameras is None else num_cameras
        self._input_shape = self.info.input_shape(n)
        self.name = f"tensorrt-{precision}"
        cuda = self._cuda
        cuda.init()
        if device_id >= cuda.Device.count():
            raise BackendError(f"{self.model_path}: CUDA device {device_id} not present "
                               f"({cuda.Device.count()} GPU(s))")
        self._context = cuda.Device(device_id).retain_primary_context()
        self._context.push()
        try:
            self.plan = EnginePlan(self.model_path, self.info, n, precision, current_environment(device_id),
                                   Path(engine_dir) if engine_dir else default_engine_dir(self.model_path),
                                   workspace_bytes,
                                   Path(calibration_cache) if calibration_cache else None)
            self._logger = trt_logger()
            self._runtime = self._trt.Runtime(self._logger)
            self._engine = self._load_or_build(calibration, rebuild)
            self._execution = self._engine.create_execution_context()
            if self.info.dynamic_batch:
                self._execution.set_input_shape(INPUT_NAME, self._input_shape)
            self._stream = cuda.Stream()
            self._host: dict[str, np.ndarray] = {}
            self._device: dict = {}
            for spec in engine_io(self._engine):
                shape = tuple(self._execution.get_tensor_shape(spec.name))
                self._host[spec.name] = cuda.pagelocked_empty(shape, np.dtype(spec.dtype))
                self._device[spec.name] = cuda.mem_alloc(self._host[spec.name].nbytes)
                self._execution.set_tensor_address(spec.name, int(self._device[spec.name]))
        except BaseException:
            self._context.pop()
            self._context.detach()  # release the primary context this failed backend retained
            raise
        self._context.pop()
        LOG.info("%s: %s -> %s, input %s", self.name, self.model_path, self.plan.engine_path,
                 self._input_shape)

    def _build(self, calibration: CalibrationBatchStream | None) -> None:
        plan = self.plan
        calibrator = None
        if plan.precision == "int8":
            calibrator = make_entropy_calibrator(calibration, plan.calibration_cache)
        build_engine(plan.onnx_path, plan.onnx_sha256, plan.engine_path, plan.info, plan.num_cameras,
                     plan.precision, plan.env, plan.workspace_bytes, calibrator,
                     plan.calibration_cache if calibrator is not None else None, plan.timing_cache)

    def _deserialize(self):
        """(engine, None) when the engine file loads and its I/O matches its sidecar, else (None, reason)."""
        engine = self._runtime.deserialize_cuda_engine(self.plan.engine_path.read_bytes())
        if engine is None:
            return None, f"{self.plan.engine_path}: engine does not deserialize (corrupt or foreign)"
        problems = io_mismatches(engine_io(engine), read_sidecar(sidecar_path(self.plan.engine_path)))
        if problems:
            return None, f"{self.plan.engine_path}: {'; '.join(problems)}"
        return engine, None

    def _load_or_build(self, calibration: CalibrationBatchStream | None, rebuild: bool):
        """The cached engine, (re)built first when absent, stale or inconsistent with its sidecar."""
        reason = "rebuild requested" if rebuild else self.plan.rebuild_reason()
        if reason is None:
            engine, reason = self._deserialize()
            if engine is not None:
                return engine
        LOG.warning("building TensorRT engine: %s", reason)
        self._build(calibration)
        engine, reason = self._deserialize()
        if engine is None:
            raise BackendError(f"engine invalid right after it was built: {reason}")
        return engine

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self._input_shape

    def infer(self, images: np.ndarray, with_probabilities: bool = False) -> InferenceResult:
        images = check_images(images, self._input_shape, f"{self.plan.engine_path} ({self.name})")
        cuda = self._cuda
        names = OUTPUT_NAMES if with_probabilities else OUTPUT_NAMES[:2]
        self._context.push()
        try:
            np.copyto(self._host[INPUT_NAME], images)
            cuda.memcpy_htod_async(self._device[INPUT_NAME], self._host[INPUT_NAME], self._stream)
            if not self._execution.execute_async_v3(stream_handle=self._stream.handle):
                raise BackendError(f"{self.plan.engine_path}: TensorRT execute_async_v3 failed")
            for name in names:
                cuda.memcpy_dtoh_async(self._host[name], self._device[name], self._stream)
            self._stream.synchronize()
        finally:
            self._context.pop()
        result = InferenceResult(*(self._host[name].copy() for name in names))
        return check_result(result, f"{self.plan.engine_path} ({self.name})")

    def close(self) -> None:
        if getattr(self, "_device", None) is None:
            return
        self._context.push()
        try:
            for buffer in self._device.values():
                buffer.free()
            self._device = None
            self._execution = None
            self._engine = None
        finally:
            self._context.pop()
            self._context.detach()
