"""ONNX Runtime backend: CPU, CUDA execution provider, or TensorRT execution provider with engine cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fsmde_ros.backends.base import BackendError, DepthBackend, InferenceResult
from fsmde_ros.backends.checks import check_images, check_result
from fsmde_ros.backends.model_info import (
    ModelInfo,
    check_model_file,
    create_session,
    info_from_session,
)
from fsmde_ros.model.contract import INPUT_NAME, OUTPUT_NAMES

LOG = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def default_trt_cache_dir(model_path: Path) -> Path:
    """Engine and timing caches of the TensorRT execution provider live beside the model."""
    return model_path.parent / f"{model_path.stem}.ort_trt_cache"


def provider_list(provider: str, device_id: int, trt_cache_dir: Path | None, trt_fp16: bool) -> list:
    """ONNX Runtime provider list with options, most preferred first, CPU always last as fallback."""
    if provider not in PROVIDERS:
        raise BackendError(f"unknown ONNX Runtime provider '{provider}' (known: {sorted(PROVIDERS)})")
    providers: list = []
    if provider == "tensorrt":
        cache = str(trt_cache_dir)
        providers.append((PROVIDERS["tensorrt"], {
            "device_id": device_id,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
            "trt_fp16_enable": trt_fp16,
        }))
    if provider in ("tensorrt", "cuda"):
        providers.append((PROVIDERS["cuda"], {"device_id": device_id}))
    providers.append(PROVIDERS["cpu"])
    return providers


class OnnxRuntimeBackend(DepthBackend):
    """Runs an exported student with ONNX Runtime on the chosen execution provider."""

    def __init__(self, model_path: str | Path, provider: str = "cpu", threads: int | None = None,
                 device_id: int = 0, trt_cache_dir: str | Path | None = None, trt_fp16: bool = False,
                 num_cameras: int | None = None, input_size: tuple[int, int] | None = None):
        import onnxruntime as ort

        self.model_path = Path(model_path)
        check_model_file(self.model_path)
        available = ort.get_available_providers()
        wanted = PROVIDERS.get(provider)
        if wanted is None or wanted not in available:
            raise BackendError(f"{self.model_path}: ONNX Runtime provider '{provider}' is not available "
                               f"in this onnxruntime build (available: {available})")
        cache_dir = None
        if provider == "tensorrt":
            cache_dir = Path(trt_cache_dir) if trt_cache_dir else default_trt_cache_dir(self.model_path)
            cache_dir.mkdir(parents=True, exist_ok=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is not None:
            if threads < 1:
                raise BackendError(f"{self.model_path}: threads must be >= 1, got {threads}")
            options.intra_op_num_threads = threads
        self.session = create_session(self.model_path, options,
                                      provider_list(provider, device_id, cache_dir, trt_fp16))
        active = self.session.get_providers()
        if active[0] != wanted:
            raise BackendError(f"{self.model_path}: ONNX Runtime fell back to {active} instead of {wanted}")
        self.info: ModelInfo = info_from_session(self.model_path, self.session)
        self.info.check_expected(num_cameras, input_size)
        self._input_shape = self.info.input_shape(num_cameras)
        self.provider = provider
        self.name = f"onnxruntime-{provider}"
        LOG.info("%s: %s on %s, input %s, provenance %s", self.name, self.model_path, active,
                 self._input_shape, self.info.provenance or "not recorded")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self._input_shape

    def infer(self, images: np.ndarray, with_probabilities: bool = False) -> InferenceResult:
        images = check_images(images, self._input_shape, f"{self.model_path} ({self.name})")
        names = list(OUTPUT_NAMES) if with_probabilities else list(OUTPUT_NAMES[:2])
        outputs = self.session.run(names, {INPUT_NAME: images})
        result = InferenceResult(*outputs)
        return check_result(result, f"{self.model_path} ({self.name})")
