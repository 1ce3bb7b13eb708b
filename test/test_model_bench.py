"""fsmde-bench model: FLOP counting from the graph and the JSON report (numbers not asserted: no timing)."""

import argparse
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fsmde_ros.tools import bench_model


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_flops_of_conv_matmul_gemm(tmp_path):
    weight = helper.make_tensor("w", TensorProto.FLOAT, [8, 4, 3, 3], np.zeros(288, np.float32))
    gemm_b = helper.make_tensor("g", TensorProto.FLOAT, [5, 7], np.zeros(35, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2]),
         helper.make_node("MatMul", ["a", "b"], ["c"]),
         helper.make_node("Gemm", ["d", "g"], ["e"]),
         helper.make_node("Relu", ["y"], ["z"])],
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 10, 12]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [3, 6, 5]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [3, 5, 9]),
         helper.make_tensor_value_info("d", TensorProto.FLOAT, [2, 5])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
        initializer=[weight, gemm_b])
    flops = bench_model.count_flops(save(graph, tmp_path / "toy.onnx"))
    assert flops["Conv"] == 2 * (2 * 8 * 5 * 6) * (4 * 3 * 3)
    assert flops["MatMul"] == 2 * 3 * 6 * 5 * 9
    assert flops["Gemm"] == 2 * 2 * 5 * 7
    assert "Relu" not in flops


def test_flops_need_static_shapes(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "dyn",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [4, 2])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    with pytest.raises(ValueError, match="no static shape for tensor 'a'"):
        bench_model.count_flops(save(graph, tmp_path / "dyn.onnx"))


def test_report_has_every_measurement(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    out = tmp_path / "model_tiny.json"
    args = parser.parse_args(["--profile", "tiny", "--threads", "1", "--warmup", "0", "--repeats", "1",
                              "--output", str(out)])
    bench_model.run(args)
    report = json.loads(out.read_text())
    assert report["input"] == {"num_cameras": 6, "height": 64, "width": 96, "num_bins": 8}
    assert report["flops_per_set"] == sum(report["flops_by_op"].values()) > 0
    for key in ("ort_cpu_batched", "ort_cpu_6_single_calls", "torch_eager_batched"):
        assert set(report[key]) == {"median_ms", "p90_ms", "min_ms"}
    assert report["flop_floor_ms"] > 0 and report["sgemm"]["ort_matmul_gflops"] > 0
    assert set(report["ratios"]) == {"ort_batched_to_floor", "ort_batched_to_floor_best_of_runs",
                                     "ort_single_calls_to_batched",
                                     "torch_eager_to_ort_batched"}
    assert isinstance(report["goals"]["met"], bool)
    table = capsys.readouterr().out
    assert "ORT CPU, one batched call" in table and f"wrote {out}" in table
