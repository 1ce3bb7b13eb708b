"""fsmde-demo: contact sheet pieces, summary, and the whole demo on a small bag with a tiny student."""

import json

import cv2
import numpy as np
import pytest

from fsmde_ros.core.cloud import CLOUD_DTYPE, pack_rgb
from fsmde_ros.tools.demo import TILE_H, TILE_W, birds_eye, colourise_depth, contact_sheet, summary_lines

NAMES = ["A", "B"]


def test_depth_colours_run_from_near_to_far_and_nan_is_black():
    depth = np.array([[0.5, 5.0, 80.0, np.nan]], np.float32)
    tile = colourise_depth(depth, size=(4, 1))
    assert tile.shape == (1, 4, 3)
    assert tile[0, 3].tolist() == [0, 0, 0]
    assert tile[0, 0, 0] > tile[0, 0, 2] and tile[0, 2, 2] > tile[0, 2, 0]  # near red, far blue


def test_birds_eye_puts_points_ahead_up_and_left_left():
    cloud = np.zeros(2, CLOUD_DTYPE)
    cloud["x"], cloud["y"] = [20.0, 0.0], [0.0, 20.0]
    cloud["rgb"] = pack_rgb(np.array([[255, 0, 0], [0, 255, 0]], np.uint8))
    view = birds_eye(cloud, size=80, half_m=40.0)
    assert view[20, 40].tolist() == [255, 0, 0]  # 20 m ahead: above the centre
    assert view[40, 20].tolist() == [0, 255, 0]  # 20 m to the left: left of the centre


def test_contact_sheet_layout():
    inputs = [np.full((90, 160, 3), 100, np.uint8)] * 2
    depths = [np.full((64, 96), 10.0, np.float32)] * 2
    cloud = np.zeros(5, CLOUD_DTYPE)
    sheet = contact_sheet(inputs, depths, cloud, NAMES, ["caption"])
    assert sheet.shape == (TILE_H * 2 + 2 * TILE_H, 2 * TILE_W, 3) and sheet.dtype == np.uint8


def stats(drops):
    stage = {"median": 12.0, "p99": 30.0, "mean": 13.0, "count": 4}
    return {"backend": "onnxruntime-cpu", "published_sets": 4, "synced_sets": 5, "mean_output_hz": 11.5,
            "stages_ms": {"inference": stage, "fusion": stage, "end_to_end": stage}, "drops": drops,
            "consistency_median_abs_rel": {"CAM_FRONT|CAM_BACK": 0.05, "X|Y": float("nan")}}


def test_summary_reports_latency_stages_drops_and_consistency():
    lines = summary_lines(stats({"backend_busy": 1}))
    assert "4 sets published (5 synchronized), output 11.5 Hz" in lines[0]
    assert "median 12.0 ms, p99 30.0 ms" in lines[1]
    assert lines[2] == "per stage, median ms: inference 12.0, fusion 12.0"
    assert lines[3] == "drops: backend_busy 1"
    assert lines[4] == "cross-view disagreement (median rel.): FRONT|BACK 0.050"
    assert summary_lines(stats({}))[3] == "drops: none"


@pytest.mark.ros
def test_demo_end_to_end_on_a_small_bag(tmp_path):
    pytest.importorskip("rclpy")
    from test_replay import surround_bag, tiny_model

    from fsmde_ros.tools.demo import main

    bag, _ = surround_bag(tmp_path / "bag")
    model = tiny_model(tmp_path / "tiny.onnx")
    out = tmp_path / "demo"
    main(["--out", str(out), "--bag", str(bag), "--model", str(model), "--threads", "1"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["node"]["published_sets"] >= 3 and summary["note"] == f"model {model}"
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape == (4 * TILE_H, 6 * TILE_W, 3)
    assert (out / "outputs" / "metadata.yaml").is_file()
