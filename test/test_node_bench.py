"""fsmde-bench node: the pieces that turn node statistics and bags into the benchmark's numbers."""

import pytest
from test_replay import surround_bag

from fsmde_ros.params import default_config_path
from fsmde_ros.tools.bench_node import input_rate_hz, phase_summary, print_table, time_cloud


def test_input_rate_of_a_12_hz_bag(tmp_path):
    bag, _ = surround_bag(tmp_path / "bag")
    assert input_rate_hz(bag) == pytest.approx(1 / 0.083, rel=1e-3)


def stats():
    def stage(median):
        return {"median": median, "p99": 2 * median, "mean": median, "count": 10}

    return {"mean_output_hz": 11.0, "published_sets": 10, "mean_input_hz": {"A": 12.0},
            "drops": {"backend_busy": 2},
            "stages_ms": {"preprocess": stage(2.0), "postprocess": stage(1.0), "fusion": stage(3.0),
                          "publish": stage(1.5), "inference": stage(60.0), "end_to_end": stage(70.0)}}


def test_phase_summary_adds_the_non_network_stages():
    summary = phase_summary(stats())
    assert summary["non_network_median_ms"] == pytest.approx(7.5)
    assert summary["end_to_end_p99_ms"] == 140.0 and summary["output_hz"] == 11.0


def test_cloud_timing_uses_the_configured_cloud(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    config = tmp_path / "node.yaml"
    rig = default_config_path().parent / "rigs/nuscenes.yaml"
    config.write_text(default_config_path().read_text().replace("../models/student_cpu.onnx", str(model))
                      .replace("rigs/nuscenes.yaml", str(rig)))
    cloud = time_cloud(config, (64, 96), repeats=3)
    assert cloud["stride"] == 2 and cloud["overlap"] == "split" and 0 < cloud["points"] <= 6 * 32 * 48
    result = {"backend": "b", "input_shape": [6, 64, 96, 3], "duration_s_per_phase": 1.0,
              "phases": {"nominal": phase_summary(stats())}, "cloud_6_images": cloud,
              "overload_p99_over_nominal_p99": 1.0, "goals": {"hz_ge_10": True}}
    print_table(result)
    assert "goal hz_ge_10: met" in capsys.readouterr().out
