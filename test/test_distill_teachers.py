"""Teachers behind one interface (Depth Anything V2 via transformers, ONNX, our own) and their cache."""

import json

import numpy as np
import pytest
import torch

from fsmde_ros.distill.checkpoint import save_weights
from fsmde_ros.distill.teacher_net import TeacherConfig, TeacherNet
from fsmde_ros.distill.teachers import (
    DepthAnythingV2Teacher,
    OnnxTeacher,
    SynthTeacher,
    TeacherCache,
    TeacherError,
    _normalised_nchw,
    build_teacher,
)

IMAGES = np.random.default_rng(0).integers(0, 256, (2, 40, 72, 3), dtype=np.uint8)
TINY = TeacherConfig(widths=(4, 8, 8), blocks=1)


@pytest.fixture(scope="module")
def dav2_dir(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    backbone = transformers.Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=56,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("dav2")
    transformers.DepthAnythingForDepthEstimation(config).save_pretrained(path)
    return path


def test_depth_anything_v2_teacher_matches_the_model_run_by_hand(dav2_dir):
    from transformers import DepthAnythingForDepthEstimation

    teacher = DepthAnythingV2Teacher(dav2_dir, input_size=56)
    out = teacher.predict(IMAGES)
    assert out.shape == (2, 40, 72) and out.dtype == np.float32 and np.all(out >= 0)
    model = DepthAnythingForDepthEstimation.from_pretrained(dav2_dir).eval()
    x = _normalised_nchw(IMAGES, 56, 98)  # shorter side 56, width rounded to a multiple of 14
    with torch.no_grad():
        ref = model(pixel_values=x).predicted_depth[:, None]
    ref = torch.nn.functional.interpolate(ref, size=(40, 72), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(out, ref.clamp_min(0).numpy(), rtol=1e-5, atol=1e-7)
    assert teacher.identity.startswith("dav2-")


def test_depth_anything_v2_teacher_errors_name_the_directory(tmp_path):
    with pytest.raises(TeacherError, match=r"no config\.json"):
        DepthAnythingV2Teacher(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TeacherError, match="output must be"):
        DepthAnythingV2Teacher(tmp_path, output="inverse")


class _NormalisedTeacher(torch.nn.Module):
    """TeacherNet taking ImageNet-normalised NCHW input, like exported foundation models."""

    def __init__(self, net: TeacherNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = (x * self.net.std / 255.0 + self.net.mean / 255.0) * 255.0
        return self.net(rgb.permute(0, 2, 3, 1))[:, None]


def test_onnx_teacher_runs_an_exported_relative_depth_model(tmp_path):
    torch.manual_seed(0)
    wrapped = _NormalisedTeacher(TeacherNet(TINY)).eval()
    path = tmp_path / "teacher.onnx"
    torch.onnx.export(
        wrapped,
        (torch.zeros(1, 3, 32, 64),),
        str(path),
        dynamo=False,
        input_names=["pixel_values"],
        output_names=["disparity"],
        opset_version=17,
        dynamic_axes={"pixel_values": {0: "n"}, "disparity": {0: "n"}},
    )
    teacher = OnnxTeacher(path)
    assert teacher.input_size == (32, 64)
    out = teacher.predict(IMAGES)
    with torch.no_grad():
        ref = wrapped(_normalised_nchw(IMAGES, 32, 64))
    ref = torch.nn.functional.interpolate(ref, size=(40, 72), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_teacher_errors_name_the_file(tmp_path):
    with pytest.raises(TeacherError, match="not found"):
        OnnxTeacher(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(TeacherError, match=r"bad\.onnx: cannot load"):
        OnnxTeacher(bad)


def _teacher_checkpoint(path, kind="teacher"):
    torch.manual_seed(1)
    net = TeacherNet(TINY).eval()
    save_weights(path, net.state_dict(), {"kind": kind, "model_config": json.dumps(TINY.to_dict())})
    return net


def test_synth_teacher_loads_its_checkpoint_and_predicts_positive_disparity(tmp_path):
    net = _teacher_checkpoint(tmp_path / "t.safetensors")
    teacher = build_teacher({"type": "synth", "path": str(tmp_path / "t.safetensors")})
    assert isinstance(teacher, SynthTeacher)
    out = teacher.predict(IMAGES)
    with torch.no_grad():
        ref = net(torch.from_numpy(IMAGES)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    assert out.shape == (2, 40, 72) and np.all(out > 0)


def test_synth_teacher_rejects_a_checkpoint_of_another_kind(tmp_path):
    _teacher_checkpoint(tmp_path / "s.safetensors", kind="student")
    with pytest.raises(TeacherError, match="not a teacher checkpoint"):
        SynthTeacher(tmp_path / "s.safetensors")


def test_teachers_reject_images_that_are_not_uint8_rgb(tmp_path):
    _teacher_checkpoint(tmp_path / "t.safetensors")
    teacher = SynthTeacher(tmp_path / "t.safetensors")
    with pytest.raises(TeacherError, match="uint8 RGB"):
        teacher.predict(IMAGES.astype(np.float32))
    with pytest.raises(TeacherError, match="uint8 RGB"):
        teacher.predict(IMAGES[..., :1])


def test_build_teacher_rejects_unknown_specs():
    with pytest.raises(TeacherError, match="unknown teacher type"):
        build_teacher({"type": "midas", "path": "x"})
    with pytest.raises(TeacherError, match="'type' and 'path'"):
        build_teacher({"type": "synth"})


def test_teacher_config_rejects_bad_fields():
    with pytest.raises(ValueError, match="unknown keys"):
        TeacherConfig.from_dict({"depth": 3})
    with pytest.raises(ValueError, match="widths"):
        TeacherConfig.from_dict({"widths": [8]})


def test_teacher_cache_round_trip_and_errors(tmp_path):
    cache = TeacherCache(tmp_path, "synth-abc", 40, 72)
    key = TeacherCache.key("town/seq 1", 7)
    assert key == "town_seq_1__000007" and not cache.has(key)
    disparity = np.random.default_rng(0).random((6, 40, 72)).astype(np.float32)
    cache.put(key, disparity)
    assert cache.has(key)
    np.testing.assert_allclose(cache.get(key), disparity, rtol=1e-3)  # stored as float16
    with pytest.raises(TeacherError, match="expected"):
        cache.put(key, disparity[:, :10])
    cache.path(key).write_bytes(b"garbage")
    with pytest.raises(TeacherError, match="unreadable teacher cache entry"):
        cache.get(key)
