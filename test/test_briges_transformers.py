"""BriGeS with Depth Anything V2 and SAM's image encoder through transformers (tiny random configs,
saved to and loaded from local directories), and the freezing guarantee of the gate."""

import json

import pytest
import torch
from transformers import (
    DepthAnythingConfig,
    DepthAnythingForDepthEstimation,
    Dinov2Config,
    SamConfig,
    SamModel,
    SamVisionConfig,
    SamVisionModel,
)

from fsmde_ros.briges.gate import GateConfig
from fsmde_ros.briges.hf_adapters import DepthAnythingAdapter, SamEncoderAdapter
from fsmde_ros.briges.losses import briges_loss
from fsmde_ros.briges.teacher import BrigesTeacher, read_gate_config

SAM_VISION = {
    "hidden_size": 32,
    "output_channels": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 64,
    "patch_size": 16,
    "window_size": 2,
    "global_attn_indexes": [1],
    "num_pos_feats": 8,
    "mlp_dim": 64,
}


def tiny_depth_anything() -> DepthAnythingForDepthEstimation:
    backbone = Dinov2Config(
        image_size=28,
        patch_size=14,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(config).eval()
    # transformers' init leaves a random tiny model's output flat; torch's default conv init and a positive
    # bias give a varying, positive disparity (as a trained model's) through which gradients flow.
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.reset_parameters()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    return model


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    tiny_depth_anything().save_pretrained(root / "depth_anything")
    torch.manual_seed(1)
    SamVisionModel(SamVisionConfig(**SAM_VISION)).save_pretrained(root / "sam_vision")
    return root


@pytest.fixture()
def teacher(model_dirs):
    depth = DepthAnythingAdapter.from_pretrained(model_dirs / "depth_anything")
    seg = SamEncoderAdapter.from_pretrained(model_dirs / "sam_vision")
    torch.manual_seed(2)
    return BrigesTeacher(depth, seg, GateConfig(levels=(1, 3), dim=16, heads=2, temperature="learnable"))


def test_adapter_split_reproduces_depth_anything(model_dirs):
    model = DepthAnythingForDepthEstimation.from_pretrained(
        model_dirs / "depth_anything", local_files_only=True
    )
    adapter = DepthAnythingAdapter(model.eval())
    images = torch.rand(2, 3, 42, 56)
    features = adapter.encode(images)
    assert [tuple(f.shape) for f in features] == [(2, 32, 3, 4)] * 4
    assert adapter.feature_channels == (32, 32, 32, 32)
    with torch.no_grad():
        expected = model(
            pixel_values=(images - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        ).predicted_depth
        torch.testing.assert_close(adapter(images), expected)


def test_depth_anything_output_is_resized_to_any_image_size(model_dirs):
    adapter = DepthAnythingAdapter.from_pretrained(model_dirs / "depth_anything")
    with torch.no_grad():
        assert adapter(torch.rand(1, 3, 40, 61)).shape == (1, 40, 61)
    with pytest.raises(ValueError, match="multiple of 14"):
        DepthAnythingAdapter.from_pretrained(model_dirs / "depth_anything", input_size=(30, 42))


def test_sam_encoder_crops_padding_and_loads_full_sam_checkpoints(model_dirs, tmp_path):
    seg = SamEncoderAdapter.from_pretrained(model_dirs / "sam_vision")
    with torch.no_grad():
        wide = seg.encode(torch.rand(2, 3, 32, 64))
    assert wide.shape == (2, 16, 2, 4)
    SamModel(SamConfig(vision_config=SAM_VISION)).save_pretrained(tmp_path / "sam")
    full = SamEncoderAdapter.from_pretrained(tmp_path / "sam")
    assert full.feature_channels == 16


def test_loading_rejects_missing_and_wrong_directories(model_dirs, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        DepthAnythingAdapter.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="expected 'depth_anything'"):
        DepthAnythingAdapter.from_pretrained(model_dirs / "sam_vision")
    with pytest.raises(ValueError, match="expected 'sam'"):
        SamEncoderAdapter.from_pretrained(model_dirs / "depth_anything")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 3}))
    with pytest.raises(ValueError, match="'model_type'"):
        SamEncoderAdapter.from_pretrained(tmp_path)


def test_fresh_gate_is_the_identity(teacher):
    images = torch.rand(2, 3, 42, 56)
    with torch.no_grad():
        torch.testing.assert_close(teacher(images), teacher.depth(images), rtol=0, atol=0)


def test_only_the_gate_trains_and_frozen_weights_stay_bit_identical(teacher):
    trainable = {n for n, p in teacher.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("gate.") for n in trainable)
    frozen_before = {k: v.clone() for k, v in teacher.state_dict().items() if not k.startswith("gate.")}
    gate_before = {k: v.clone() for k, v in teacher.gate.state_dict().items()}
    optimiser = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=1e-2)
    teacher.train()
    assert not teacher.depth.training and not teacher.seg.training
    images, target = torch.rand(2, 3, 42, 56), torch.rand(2, 42, 56) + 0.1
    for _ in range(2):
        optimiser.zero_grad()
        briges_loss(teacher(images), target, torch.ones_like(target, dtype=torch.bool))[
            "loss"
        ].backward()
        assert all(p.grad is None for n, p in teacher.named_parameters() if not n.startswith("gate."))
        optimiser.step()
    for key, value in teacher.state_dict().items():
        if not key.startswith("gate."):
            assert torch.equal(value, frozen_before[key]), key
    changed = [k for k, v in teacher.gate.state_dict().items() if not torch.equal(v, gate_before[k])]
    assert any("to_out" in k for k in changed) and any("theta" in k for k in changed)


def test_gate_is_a_small_share_of_the_teacher(teacher):
    counts = teacher.parameter_counts()
    assert counts["trainable"] == counts["gate"]
    assert counts["trainable_share_of_depth_model"] == pytest.approx(counts["gate"] / counts["depth_model"])


def test_gate_checkpoint_round_trip(teacher, tmp_path, model_dirs):
    with torch.no_grad():
        for p in teacher.gate.parameters():
            p.add_(0.05)
    path = tmp_path / "gate.safetensors"
    teacher.save_gate(path)
    config = read_gate_config(path)
    assert config == teacher.gate.config
    depth = DepthAnythingAdapter.from_pretrained(model_dirs / "depth_anything")
    seg = SamEncoderAdapter.from_pretrained(model_dirs / "sam_vision")
    other = BrigesTeacher(depth, seg, config)
    other.load_gate(path)
    images = torch.rand(1, 3, 28, 42)
    with torch.no_grad():
        torch.testing.assert_close(other(images), teacher(images))
    wrong = BrigesTeacher(depth, seg, GateConfig(levels=(0,), dim=16, heads=2))
    with pytest.raises(ValueError, match="does not fit"):
        wrong.load_gate(path)
