"""``create_backend``: the one way the node, tools and evaluation open an inference backend."""

from __future__ import annotations

import logging
from pathlib import Path

from fsmde_ros.backends.base import BackendError, DepthBackend

LOG = logging.getLogger(__name__)

BACKEND_KINDS = ("auto", "tensorrt", "ort-tensorrt", "ort-cuda", "ort-cpu", "torch")
"""``tensorrt``: native TensorRT 10 engine built from the ONNX file (cached with a sidecar JSON);
``ort-*``: ONNX Runtime with that execution provider; ``torch``: eager torch on a .safetensors
checkpoint; ``auto``: tensorrt, else ort-cuda, else ort-cpu."""

PRECISIONS = ("fp32", "fp16", "int8")


def tensorrt_unavailable_reason() -> str | None:
    """None when native TensorRT can run here (tensorrt + pycuda importable, a CUDA GPU present)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"tensorrt Python package not importable ({exc})"
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        return f"pycuda not importable ({exc})"
    try:
        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU found"
    except cuda.Error as exc:
        return f"CUDA driver unusable ({exc})"
    return None


def ort_cuda_unavailable_reason() -> str | None:
    """None when this onnxruntime build has the CUDA execution provider."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"onnxruntime has no CUDAExecutionProvider (providers: {ort.get_available_providers()})"
    return None


def backend_candidates(kind: str) -> list[str]:
    """Backends to try for ``kind``: itself, or for ``auto`` those usable here in the order TensorRT,
    ORT CUDA, ORT CPU (the reasons for skipping any are logged)."""
    if kind not in BACKEND_KINDS:
        raise BackendError(f"unknown backend '{kind}' (known: {', '.join(BACKEND_KINDS)})")
    if kind != "auto":
        return [kind]
    candidates = []
    checks = (("tensorrt", tensorrt_unavailable_reason), ("ort-cuda", ort_cuda_unavailable_reason))
    for name, unavailable in checks:
        reason = unavailable()
        if reason is None:
            candidates.append(name)
        else:
            LOG.info("backend auto: skipping %s (%s)", name, reason)
    return [*candidates, "ort-cpu"]


def create_backend(kind: str, model_path: str | Path, *, num_cameras: int | None = None,
                   input_size: tuple[int, int] | None = None, threads: int | None = None,
                   device_id: int = 0, precision: str = "fp32", engine_dir: str | Path | None = None,
                   calibration=None) -> DepthBackend:
    """Open ``model_path`` with backend ``kind`` (see BACKEND_KINDS) and check it fits the caller.

    ``num_cameras`` and ``input_size`` (height, width) are what the caller will feed; a model that
    takes something else raises BackendError naming the file. ``threads`` sets CPU intra-op threads.
    ``precision`` (fp32/fp16/int8) applies to TensorRT; ``engine_dir`` holds native engines and the
    ORT TensorRT cache (default: beside the model); ``calibration`` is the int8 calibration source
    (``fsmde_ros.backends.tensorrt_calibration.CalibrationBatchStream``) for a native int8 build.

    ``auto`` opens the first candidate that works (a candidate that fails is logged and skipped; the
    last one's error is raised); ORT candidates run fp32 whatever ``precision`` asks of TensorRT.
    """
    model_path = Path(model_path)
    if precision not in PRECISIONS:
        raise BackendError(f"{model_path}: unknown precision '{precision}' (known: {', '.join(PRECISIONS)})")
    candidates = backend_candidates(kind)
    options = dict(num_cameras=num_cameras, input_size=input_size, threads=threads, device_id=device_id,
                   engine_dir=engine_dir, calibration=calibration)

    def opened(candidate: str) -> DepthBackend:
        wanted = precision if kind != "auto" or candidate == "tensorrt" else "fp32"
        backend = open_backend(candidate, model_path, precision=wanted, **options)
        LOG.info("backend %s -> %s (%s)", kind, backend.name, model_path)
        return backend

    for candidate in candidates[:-1]:
        try:
            return opened(candidate)
        except BackendError as exc:
            LOG.warning("backend auto: %s failed (%s); trying the next", candidate, exc)
    return opened(candidates[-1])


def open_backend(kind: str, model_path: Path, *, num_cameras: int | None, input_size: tuple[int, int] | None,
                 threads: int | None, device_id: int, precision: str, engine_dir: str | Path | None,
                 calibration) -> DepthBackend:
    """One concrete backend (not ``auto``)."""
    if kind == "torch":
        import torch

        from fsmde_ros.backends.torch_backend import TorchBackend

        if precision != "fp32":
            raise BackendError(f"{model_path}: the torch backend runs fp32 only, got precision '{precision}'")
        device = f"cuda:{device_id}" if torch.cuda.is_available() else "cpu"
        return TorchBackend(model_path, num_cameras=num_cameras, input_size=input_size, device=device,
                            threads=threads)
    if model_path.suffix == ".safetensors":
        raise BackendError(f"{model_path}: backend '{kind}' runs ONNX graphs; export the checkpoint "
                           "with fsmde-export first (or use backend 'torch')")
    if kind == "tensorrt":
        from fsmde_ros.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model_path, precision=precision, engine_dir=engine_dir, device_id=device_id,
                               num_cameras=num_cameras, input_size=input_size, calibration=calibration)
    from fsmde_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    provider = kind.removeprefix("ort-")
    if precision == "int8" or (precision == "fp16" and provider != "tensorrt"):
        raise BackendError(f"{model_path}: backend '{kind}' does not run precision '{precision}' "
                           "(fp16 needs ort-tensorrt or tensorrt, int8 needs tensorrt)")
    trt_cache = Path(engine_dir) if engine_dir is not None else None
    return OnnxRuntimeBackend(model_path, provider=provider, threads=threads, device_id=device_id,
                              trt_cache_dir=trt_cache, trt_fp16=precision == "fp16",
                              num_cameras=num_cameras, input_size=input_size)
