"""Backend selection: auto falls back to ONNX Runtime CPU here, with the choice logged."""

import logging
import subprocess
import sys

import pytest

from fsmde_ros.backends import BackendError, backend_candidates, create_backend, factory
from fsmde_ros.backends.onnxruntime_backend import OnnxRuntimeBackend, provider_list
from fsmde_ros.model import build_student
from fsmde_ros.model.onnx_export import export_onnx


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return export_onnx(build_student("tiny", seed=0), tmp_path_factory.mktemp("f") / "tiny.onnx").path


def test_auto_prefers_tensorrt_then_ort_cuda_then_cpu(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="fsmde_ros.backends.factory")
    monkeypatch.setattr(factory, "tensorrt_unavailable_reason", lambda: None)
    monkeypatch.setattr(factory, "ort_cuda_unavailable_reason", lambda: None)
    assert backend_candidates("auto") == ["tensorrt", "ort-cuda", "ort-cpu"]
    monkeypatch.setattr(factory, "tensorrt_unavailable_reason", lambda: "no tensorrt")
    assert backend_candidates("auto") == ["ort-cuda", "ort-cpu"]
    monkeypatch.setattr(factory, "ort_cuda_unavailable_reason", lambda: "no cuda provider")
    assert backend_candidates("auto") == ["ort-cpu"]
    assert "backend auto: skipping tensorrt (no tensorrt)" in caplog.text
    assert "backend auto: skipping ort-cuda (no cuda provider)" in caplog.text
    assert backend_candidates("ort-cuda") == ["ort-cuda"]


def test_auto_falls_back_when_a_candidate_fails_to_open(tiny_onnx, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="fsmde_ros.backends.factory")
    monkeypatch.setattr(factory, "tensorrt_unavailable_reason", lambda: None)
    monkeypatch.setattr(factory, "ort_cuda_unavailable_reason", lambda: None)
    opened = []
    real_open = factory.open_backend

    def open_backend(kind, model_path, **options):
        opened.append((kind, options["precision"]))
        if kind != "ort-cpu":
            raise BackendError(f"{model_path}: {kind} cannot start here")
        return real_open(kind, model_path, **options)

    monkeypatch.setattr(factory, "open_backend", open_backend)
    backend = create_backend("auto", tiny_onnx, precision="fp16")
    assert backend.name == "onnxruntime-cpu"
    assert opened == [("tensorrt", "fp16"), ("ort-cuda", "fp32"), ("ort-cpu", "fp32")]
    assert "backend auto: tensorrt failed" in caplog.text and "backend auto -> onnxruntime-cpu" in caplog.text


def test_auto_raises_the_last_candidates_error(tmp_path):
    with pytest.raises(BackendError, match=r"absent\.onnx: model file not found"):
        create_backend("auto", tmp_path / "absent.onnx")


def test_auto_on_this_machine_runs_ort_cpu(tiny_onnx, caplog):
    caplog.set_level(logging.INFO)
    backend = create_backend("auto", tiny_onnx, num_cameras=6, input_size=(64, 96), threads=1)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.name == "onnxruntime-cpu"
    assert "backend auto -> onnxruntime-cpu" in caplog.text


def test_unknown_kind_and_precision(tiny_onnx):
    with pytest.raises(BackendError, match="unknown backend 'openvino'"):
        create_backend("openvino", tiny_onnx)
    with pytest.raises(BackendError, match="unknown precision 'fp8'"):
        create_backend("ort-cpu", tiny_onnx, precision="fp8")
    with pytest.raises(BackendError, match="does not run precision 'fp16'"):
        create_backend("ort-cpu", tiny_onnx, precision="fp16")


def test_gpu_providers_missing_here_are_clear_errors(tiny_onnx):
    with pytest.raises(BackendError, match="provider 'cuda' is not available"):
        create_backend("ort-cuda", tiny_onnx)
    with pytest.raises(BackendError, match="provider 'tensorrt' is not available"):
        create_backend("ort-tensorrt", tiny_onnx)


def test_checkpoint_needs_export_for_onnx_backends(tmp_path):
    with pytest.raises(BackendError, match="export the checkpoint with fsmde-export first"):
        create_backend("ort-cpu", tmp_path / "student.safetensors")


def test_ort_tensorrt_provider_options_enable_the_engine_cache(tmp_path):
    providers = provider_list("tensorrt", 1, tmp_path, trt_fp16=True)
    name, options = providers[0]
    assert name == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_enable"] is True and options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_fp16_enable"] is True and options["device_id"] == 1
    assert [p if isinstance(p, str) else p[0] for p in providers[1:]] == ["CUDAExecutionProvider",
                                                                          "CPUExecutionProvider"]


def test_backends_import_without_torch():
    """torch is a training extra: the runtime path (factory, ORT and TensorRT backends) must not need it."""
    code = ("import sys; import fsmde_ros.backends.factory, fsmde_ros.backends.onnxruntime_backend, "
            "fsmde_ros.backends.tensorrt_backend, fsmde_ros.tools.build_engine; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
