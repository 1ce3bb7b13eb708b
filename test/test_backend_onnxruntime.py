"""ONNX Runtime and torch backends: equal to torch, and clear errors for bad models and inputs."""

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from fsmde_ros.backends import BackendError, InputError, create_backend
from fsmde_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from fsmde_ros.backends.torch_backend import TorchBackend
from fsmde_ros.model import DeployStudent, build_student, load_profile, save_student
from fsmde_ros.model.onnx_export import export_onnx


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, onnx path, checkpoint path) of one tiny student."""
    root = tmp_path_factory.mktemp("tiny")
    model = build_student("tiny", seed=0).eval()
    onnx_path = export_onnx(model, root / "tiny.onnx", provenance={"kind": "tiny test student"}).path
    return model, onnx_path, save_student(model, root / "tiny.safetensors")


def images(n=6, h=64, w=96, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_ort_cpu_equals_torch(tiny):
    model, onnx_path, _ = tiny
    backend = OnnxRuntimeBackend(onnx_path, provider="cpu", threads=1)
    assert backend.info.provenance == {"kind": "tiny test student"}
    assert backend.input_shape == (6, 64, 96, 3) and backend.name == "onnxruntime-cpu"
    batch = images()
    result = backend.infer(batch, with_probabilities=True)
    with torch.inference_mode():
        want = [t.numpy() for t in DeployStudent(model)(torch.from_numpy(batch))]
    for got, expected in zip((result.depth, result.confidence, result.probabilities, result.bin_centres),
                             want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    plain = backend.infer(batch)
    assert plain.probabilities is None and plain.bin_centres is None
    assert plain.depth.dtype == np.float32 and plain.depth.shape == (6, 64, 96)


def test_torch_backend_from_checkpoint_equals_ort(tiny):
    _, onnx_path, ckpt = tiny
    batch = images(seed=1)
    ort_depth = create_backend("ort-cpu", onnx_path).infer(batch).depth
    torch_backend = create_backend("torch", ckpt)
    assert isinstance(torch_backend, TorchBackend)
    result = torch_backend.infer(batch, with_probabilities=True)
    np.testing.assert_allclose(result.depth, ort_depth, rtol=1e-4)
    assert result.probabilities.shape == (6, 64, 96, 8)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (images().astype(np.float32), "must be uint8 RGB, got dtype float32"),
        (images()[..., :1], r"must be \(N, H, W, 3\) RGB"),
        (images(n=5), "model takes 6 cameras, got 5 images"),
        (images(h=96, w=64), "model takes 64x96 .* got 96x64"),
        (images().tolist(), "must be a numpy array"),
    ],
)
def test_bad_images_are_refused(tiny, bad, message):
    _, onnx_path, ckpt = tiny
    for backend in (create_backend("ort-cpu", onnx_path), create_backend("torch", ckpt)):
        with pytest.raises(InputError, match=message):
            backend.infer(bad)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(BackendError, match=r"absent\.onnx: model file not found"):
        create_backend("ort-cpu", tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(BackendError, match=r"corrupt\.onnx: cannot load as an ONNX model"):
        create_backend("ort-cpu", corrupt)
    with pytest.raises(BackendError, match=r"absent\.safetensors: checkpoint file not found"):
        create_backend("torch", tmp_path / "absent.safetensors")


def rewrite_metadata(src, dst, **changes):
    graph = onnx.load(str(src))
    for prop in list(graph.metadata_props):
        if prop.key in changes:
            if changes[prop.key] is None:
                graph.metadata_props.remove(prop)
            else:
                prop.value = changes[prop.key]
    onnx.save(graph, str(dst))
    return dst


def test_foreign_graph_without_metadata(tiny, tmp_path):
    path = rewrite_metadata(tiny[1], tmp_path / "foreign.onnx", fsmde_format=None)
    with pytest.raises(BackendError, match=r"foreign\.onnx: not an fsmde_ros student graph"):
        create_backend("ort-cpu", path)


def test_metadata_contradicting_the_config(tiny, tmp_path):
    path = rewrite_metadata(tiny[1], tmp_path / "m.onnx", num_bins="16")
    with pytest.raises(BackendError, match="metadata 'num_bins' = '16' contradicts"):
        create_backend("ort-cpu", path)


def test_metadata_contradicting_the_graph(tiny, tmp_path):
    other = dataclasses.replace(load_profile("tiny"), input_height=96).to_json()
    path = rewrite_metadata(tiny[1], tmp_path / "g.onnx", fsmde_model_config=other, input_height="96")
    with pytest.raises(BackendError, match=r"input 'images' has shape \[6, 64, 96, 3\], metadata says"):
        create_backend("ort-cpu", path)


def test_model_not_matching_the_caller(tiny):
    with pytest.raises(BackendError, match=r"exported for 6 cameras \(static batch\), the caller expects 4"):
        create_backend("ort-cpu", tiny[1], num_cameras=4)
    with pytest.raises(BackendError, match=r"model input is 64x96 .* caller expects 160x288"):
        create_backend("ort-cpu", tiny[1], input_size=(160, 288))
    with pytest.raises(BackendError, match=r"model input is 64x96 .* caller expects 160x288"):
        create_backend("torch", tiny[2], input_size=(160, 288))


def test_dynamic_batch_graph_takes_the_callers_camera_count(tiny, tmp_path):
    path = export_onnx(tiny[0], tmp_path / "dyn.onnx", dynamic_batch=True).path
    backend = create_backend("ort-cpu", path, num_cameras=4, input_size=(64, 96))
    assert backend.input_shape == (4, 64, 96, 3)
    assert backend.infer(images(n=4)).depth.shape == (4, 64, 96)


def test_non_finite_output_is_an_error(tmp_path):
    model = build_student("tiny", seed=0).eval()
    with torch.no_grad():
        model.bins_head[2].bias[0] = float("inf")
    path = export_onnx(model, tmp_path / "inf.onnx", check_parity=False).path
    with pytest.raises(BackendError, match=r"inf\.onnx .*non-finite \(NaN/Inf\) values in 'depth'"):
        create_backend("ort-cpu", path).infer(images())
