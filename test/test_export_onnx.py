"""fsmde-export: ONNX graph, metadata and parity against torch."""

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch

from fsmde_ros.model import build_student, load_profile, save_student
from fsmde_ros.model.onnx_export import PARITY_TOLERANCE, ExportError, export_onnx, parity_check
from fsmde_ros.tools import export as export_cli


@pytest.fixture(scope="module")
def tiny_model():
    return build_student("tiny", seed=0).eval()


def test_export_writes_metadata_and_passes_parity(tiny_model, tmp_path):
    report = export_onnx(tiny_model, tmp_path / "tiny.onnx", source="unit test")
    assert set(report.parity) == {"depth", "confidence", "probabilities", "bin_centres"}
    assert all(err <= PARITY_TOLERANCE for err in report.parity.values())
    graph = onnx.load(str(report.path))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["input_height"] == "64" and meta["input_width"] == "96" and meta["num_cameras"] == "6"
    assert meta["num_bins"] == "8" and meta["profile"] == "tiny" and meta["dynamic_batch"] == "false"
    assert float(meta["min_depth"]) == 0.5 and float(meta["max_depth"]) == 80.0
    assert len(meta["weights_sha256"]) == 64
    assert json.loads(meta["fsmde_model_config"])["encoder_channels"] == [4, 4, 8, 8, 8]
    assert graph.opset_import[0].version >= 17
    images = graph.graph.input[0].type.tensor_type
    assert images.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in images.shape.dim] == [6, 64, 96, 3]


def test_dynamic_batch_graph_runs_any_camera_count(tiny_model, tmp_path):
    report = export_onnx(tiny_model, tmp_path / "dyn.onnx", num_cameras=2, dynamic_batch=True)
    assert report.metadata["dynamic_batch"] == "true"
    errors = parity_check(tiny_model, report.path, num_cameras=5)
    assert max(errors.values()) <= PARITY_TOLERANCE


def test_low_opset_is_refused(tiny_model, tmp_path):
    with pytest.raises(ExportError, match="opset 13 is below"):
        export_onnx(tiny_model, tmp_path / "old.onnx", opset=13)


def test_parity_failure_is_reported(tmp_path):
    model = build_student("tiny", seed=0).eval()
    with torch.no_grad():
        model.logits_head.bias.fill_(float("nan"))
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(model, tmp_path / "nan.onnx")


def test_cli_exports_a_checkpoint(tmp_path, capsys):
    ckpt = save_student(build_student(dataclasses.replace(load_profile("tiny"), num_cameras=3), seed=1),
                        tmp_path / "s.safetensors", {"recipe_name": "unit-test recipe"})
    assert export_cli.main(["--checkpoint", str(ckpt), "-o", str(tmp_path / "s.onnx")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metadata"]["num_cameras"] == "3"
    assert summary["metadata"]["source"] == f"checkpoint {ckpt}"
    assert summary["metadata"]["checkpoint.recipe_name"] == "unit-test recipe"
    assert "checkpoint.fsmde_model_config" not in summary["metadata"]
    assert max(summary["parity_relative_error"].values()) <= PARITY_TOLERANCE


def test_cli_reports_a_missing_checkpoint(tmp_path, capsys):
    missing = tmp_path / "absent.safetensors"
    assert export_cli.main(["--checkpoint", str(missing), "-o", str(tmp_path / "x.onnx")]) == 1
    assert f"{missing}: checkpoint file not found" in capsys.readouterr().err


def test_relative_error_floors_the_scale_at_one():
    from fsmde_ros.model.onnx_export import relative_error

    assert relative_error(np.array([0.002]), np.array([0.001])) == pytest.approx(0.001)
    assert relative_error(np.array([21.0]), np.array([20.0])) == pytest.approx(0.05)
    assert relative_error(np.zeros(2), np.zeros(3)) == float("inf")
