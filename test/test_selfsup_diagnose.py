"""The reflection-mask diagnosis: the same frames rendered with and without reflections, the test run
with the renderer's ideal diffuse layer and with a decomposition branch."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch
import yaml

from fsmde_ros.model import ModelConfig, StudentNet, load_profile, save_student
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.selfsup.diagnose import (
    DEPTH_SOURCES,
    DIFFUSE_SOURCES,
    diagnose,
    ground_truth_depth,
    layer_error,
    main,
    markdown,
    paired_clips,
)
from fsmde_ros.selfsup.networks import IntrinsicNet
from fsmde_ros.selfsup.objective import LossWeights
from fsmde_ros.selfsup.train import DEPTH_FILE, save_intrinsic
from fsmde_ros.selfsup.views import TARGET
from fsmde_ros.synth.dataset import rig_dict

H, W = 64, 128


@pytest.fixture(scope="module")
def pairs():
    rig = load_rig(default_rig_path()).resized(W, H)
    return paired_clips(rig, "val", sequences=1, frames=3, height=H, width=W)


def _nets() -> tuple[StudentNet, IntrinsicNet]:
    torch.manual_seed(0)
    config = ModelConfig(**{**asdict(load_profile("tiny")), "input_height": H, "input_width": W})
    return StudentNet(config).eval(), IntrinsicNet().eval()


def test_paired_clips_differ_only_on_mirror_pixels(pairs):
    assert len(pairs) == 1  # 3 frames: one target set
    clip, ideal = pairs[0]
    torch.testing.assert_close(ideal.depth, clip.depth, equal_nan=True)
    assert torch.equal(ideal.reflective, clip.reflective) and bool(clip.reflective.any())
    assert not torch.equal(ideal.images, clip.images)
    assert bool(torch.isfinite(ground_truth_depth(clip)).all())


def test_ideal_diffuse_layer_at_true_depth_finds_the_reflections(pairs):
    depth_model, intrinsic = _nets()
    result = diagnose(depth_model, intrinsic, pairs, LossWeights(mask_confidence=0.8))
    assert set(result) == set(DIFFUSE_SOURCES) and all(set(r) == set(DEPTH_SOURCES) for r in result.values())
    ideal = result[DIFFUSE_SOURCES[0]][DEPTH_SOURCES[1]]
    assert ideal["lift"] > 2.0 and ideal["recall"] > 0.1
    for by_depth in result.values():
        for m in by_depth.values():
            assert 0.0 <= m["recall"] <= 1.0 and 0.0 <= m["predicted_fraction"] <= 1.0
    # a fresh branch is the identity split: it removes nothing and leaves the other pixels as they are
    layer = layer_error(intrinsic, pairs)
    clip, ideal = pairs[0]
    mirror = clip.reflective.expand_as(clip.images[TARGET])
    expected = float((clip.images[TARGET] - ideal.images[TARGET]).abs()[mirror].mean())
    assert layer["reflective"]["input"] == pytest.approx(expected, rel=1e-5)
    assert abs(layer["removed_share"]) < 0.1 and layer["non_reflective"]["branch"] < 0.02
    page = markdown({"run": "r", "split": "val", "sequences": 1, "clips": 1, "height": H, "width": W,
                     "mask_confidence": 0.8, "mask": result, "layer": layer})
    assert page.count("| renderer (ideal) |") == 2 and "1 = chance" in page
    assert "Share of the reflection removed by the branch" in page


def test_command_line_writes_the_report(tmp_path, capsys):
    depth_model, intrinsic = _nets()
    run = tmp_path / "run"
    run.mkdir()
    save_student(depth_model, run / DEPTH_FILE)
    save_intrinsic(intrinsic, run)
    (run / "recipe.json").write_text(json.dumps({"loss": {"mask_confidence": 0.8}}))
    root = tmp_path / "synth"
    root.mkdir()
    (root / "rig.yaml").write_text(yaml.safe_dump(rig_dict(load_rig(default_rig_path()).resized(W, H))))
    out = tmp_path / "docs" / "diagnosis"
    assert main(["--run", str(run), "--root", str(root), "--sequences", "1", "--frames", "3", "--height",
                 str(H), "--width", str(W), "--json", str(out.with_suffix(".json")),
                 "--markdown", str(out.with_suffix(".md"))]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["clips"] == 1 and report["mask_confidence"] == 0.8
    assert out.with_suffix(".md").read_text() == capsys.readouterr().out.rstrip("\n") + "\n"


def test_command_line_reports_bad_input(tmp_path, capsys):
    assert main(["--run", str(tmp_path / "missing")]) == 2
    assert "recipe.json" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"loss": {}}))
    assert main(["--run", str(run), "--frames", "2"]) == 2
    assert "--frames >= 3" in capsys.readouterr().err
