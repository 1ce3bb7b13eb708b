"""fsmde-bench node: the pieces that turn node statistics and bags into the benchmark's numbers."""

import pytest
from test_replay import surround_bag

from fsmde_ros.tools.bench_node import (
    cpu_seconds,
    first_set,
    input_rate_hz,
    phase_summary,
    print_table,
    time_in_process,
)


def test_input_rate_of_a_12_hz_bag(tmp_path):
    bag, _ = surround_bag(tmp_path / "bag")
    assert input_rate_hz(bag) == pytest.approx(1 / 0.083, rel=1e-3)


def stats():
    def stage(median):
        return {"median": median, "p99": 2 * median, "mean": median, "count": 10}

    return {"mean_output_hz": 11.0, "published_sets": 10, "mean_input_hz": {"A": 12.0},
            "drops": {"backend_busy": 2}, "node_cpu_s": 0.5,
            "stages_ms": {"preprocess": stage(2.0), "postprocess": stage(1.0), "fusion": stage(3.0),
                          "publish": stage(1.5), "inference": stage(60.0), "end_to_end": stage(70.0)}}


def test_phase_summary_adds_the_non_network_stages():
    summary = phase_summary(stats())
    assert summary["non_network_median_ms"] == pytest.approx(7.5)
    assert summary["end_to_end_p99_ms"] == 140.0 and summary["output_hz"] == 11.0
    assert summary["node_cpu_ms_per_published_set"] == pytest.approx(50.0)


def test_cpu_seconds_of_this_process_grow_with_work():
    import os

    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > before


def test_in_process_timing_runs_the_pipeline_on_the_first_set(tmp_path, capsys):
    from test_replay import tiny_model

    from fsmde_ros.tools.node_processes import write_node_config

    bag, _ = surround_bag(tmp_path / "bag")
    config = write_node_config(tmp_path / "node.yaml", tiny_model(tmp_path / "tiny.onnx"), "ort-cpu", 1)
    frames = first_set(bag, ["CAM_FRONT", "CAM_BACK"])
    assert [f.frame_id for f in frames] == ["CAM_FRONT", "CAM_BACK"]
    assert frames[0].image.shape == (108, 192, 3)
    timing = time_in_process(config, bag, repeats=2)
    assert set(timing["stages_ms"]) == {"preprocess", "inference", "postprocess", "fusion"}
    assert timing["cloud_stride"] == 2 and 0 < timing["cloud_points"] <= 6 * 32 * 48
    assert timing["source_size"] == [192, 108]
    stages = timing["stages_ms"]
    assert timing["non_network_without_publish_median_ms"] == pytest.approx(
        stages["preprocess"]["median"] + stages["postprocess"]["median"] + stages["fusion"]["median"])
    result = {"backend": "b", "input_shape": [6, 64, 96, 3], "duration_s_per_phase": 1.0,
              "phases": {"nominal": phase_summary(stats())}, "in_process": timing,
              "overload_p99_over_nominal_p99": 1.0, "goals": {"hz_ge_10": True}}
    print_table(result)
    assert "goal hz_ge_10: met" in capsys.readouterr().out
