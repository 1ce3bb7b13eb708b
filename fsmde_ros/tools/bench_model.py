"""Student network speed: FLOPs from the ONNX graph, ORT CPU batched vs per-camera, torch, FLOP floor.

The FLOP floor is the time the network's multiply-accumulate FLOPs would take at the single-precision
GEMM rate measured on this machine in this run, with the same thread count (the better of ONNX
Runtime's MatMul and torch.mm on large square matrices). A network whose batched latency is close to
its floor spends its time in dense arithmetic rather than in memory-bound glue.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL_LATENCY_MS = 80.0
GOAL_FLOOR_RATIO = 2.0
FLOP_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help="model profile (config/model_profiles.yaml)")
    parser.add_argument("--checkpoint", help="student .safetensors (default: untrained weights, same speed)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for ORT, torch and the sgemm")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30, help="timed 6-camera sets per measurement")
    parser.add_argument("--output", help="JSON path (default: docs/bench/model_<profile>.json)")


# --- FLOPs ----------------------------------------------------------------------------------------

def count_flops(onnx_path: str | Path) -> dict[str, int]:
    """FLOPs (2 x multiply-accumulates) of Conv/ConvTranspose/MatMul/Gemm nodes, per op type.

    Shapes come from ONNX shape inference, so the graph must have static shapes. Element-wise ops,
    resizes, softmax and reductions are not counted: they are not GEMM work.
    """
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)), data_prop=True)
    shapes: dict[str, list[int]] = {}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)

    def shape(name: str) -> list[int]:
        dims = shapes.get(name)
        if dims is None or any(d < 0 for d in dims):
            raise ValueError(f"{onnx_path}: no static shape for tensor '{name}'")
        return dims

    flops: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type not in FLOP_OPS:
            continue
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = shape(node.input[1])
            out = shape(node.output[0])
            if node.op_type == "Conv":  # weight (Cout, Cin/g, k...) ; every output element: Cin/g * k MACs
                macs = int(np.prod(out)) * int(np.prod(weight[1:]))
            else:  # weight (Cin, Cout/g, k...) ; every input element scatters Cout/g * k MACs
                macs = int(np.prod(shape(node.input[0]))) * int(np.prod(weight[1:]))
        elif node.op_type == "MatMul":
            a, out = shape(node.input[0]), shape(node.output[0])
            macs = int(np.prod(out)) * a[-1]
        else:  # Gemm
            a, out = shape(node.input[0]), shape(node.output[0])
            trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
            macs = int(np.prod(out)) * (a[0] if trans_a else a[1])
        flops[node.op_type] = flops.get(node.op_type, 0) + 2 * macs
    return flops


# --- timing ---------------------------------------------------------------------------------------

def summarize(seconds: list[float]) -> dict[str, float]:
    ms = 1000 * np.asarray(seconds)
    return {"median_ms": round(float(np.median(ms)), 3), "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "min_ms": round(float(ms.min()), 3)}


BLOCK = 4
"""Timed calls per block; each block starts with one untimed call."""


def time_interleaved(calls: dict, warmup: int, repeats: int) -> dict[str, dict[str, float]]:
    """``repeats`` timings of every call, taken in rounds of one block per call.

    Interleaving makes all measurements see the same background load on a shared machine, which keeps
    their ratios meaningful; the untimed call opening each block lets the thread pool of the previous
    runtime (ONNX Runtime sessions and torch each own one, and spin briefly after a call) go idle.
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    while len(seconds[next(iter(calls))]) < repeats:
        for name, call in calls.items():
            call()
            for _ in range(BLOCK):
                start = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - start)
    return {name: summarize(values[:repeats]) for name, values in seconds.items()}


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sgemm_calls(threads: int, workdir: Path, size: int) -> dict:
    """Calls computing one size^3 float32 matrix product in ONNX Runtime (MatMul) and in torch.mm."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime reads for opset 17, whatever the onnx package defaults to
    path = workdir / "sgemm.onnx"
    onnx.save(model, str(path))
    session = ort_session(path, threads)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return {"sgemm_ort": lambda: session.run(None, {"a": a, "b": b}), "sgemm_torch": lambda: torch.mm(ta, tb)}


# --- the benchmark --------------------------------------------------------------------------------

SGEMM_SIZE = 1024


def run(args: argparse.Namespace) -> dict:
    import onnxruntime as ort
    import torch

    from fsmde_ros.model.checkpoint import load_student
    from fsmde_ros.model.config import load_profile
    from fsmde_ros.model.onnx_export import export_onnx
    from fsmde_ros.model.student import DeployStudent, build_student

    if args.checkpoint:
        model, _ = load_student(args.checkpoint)
    else:
        model = build_student(load_profile(args.profile), seed=0)
    model.eval()
    config = model.config
    n, h, w, _ = config.input_shape
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    images = np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    deploy = DeployStudent(model).eval()
    tensor = torch.from_numpy(images)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        workdir = Path(tmp)
        batched_path = export_onnx(model, workdir / "batched.onnx").path
        single_path = export_onnx(model, workdir / "single.onnx", num_cameras=1).path
        flops_by_op = count_flops(batched_path)
        batched = ort_session(batched_path, args.threads)
        single = ort_session(single_path, args.threads)
        calls = sgemm_calls(args.threads, workdir, SGEMM_SIZE)
        calls["ort_cpu_batched"] = lambda: batched.run(None, {"images": images})
        calls["ort_cpu_6_single_calls"] = lambda: [single.run(None, {"images": images[i:i + 1]})
                                                   for i in range(n)]
        calls["torch_eager_batched"] = lambda: deploy(tensor)
        timings = time_interleaved(calls, args.warmup, args.repeats)
    flops = sum(flops_by_op.values())
    sgemm_flops = 2 * SGEMM_SIZE**3
    sgemm = {"ort_matmul": timings.pop("sgemm_ort"), "torch_mm": timings.pop("sgemm_torch")}
    rates = {"size": SGEMM_SIZE}
    for name, times in sgemm.items():
        rates[f"{name}_gflops"] = round(sgemm_flops / times["median_ms"] / 1e6, 1)
        rates[f"{name}_gflops_best"] = round(sgemm_flops / times["min_ms"] / 1e6, 1)
    floor_ms = flops / max(rates["ort_matmul_gflops"], rates["torch_mm_gflops"]) / 1e6
    # Fastest call against the fastest sgemm: what the ratio is on a machine without background load.
    floor_best_ms = flops / max(rates["ort_matmul_gflops_best"], rates["torch_mm_gflops_best"]) / 1e6
    ort_batched = timings["ort_cpu_batched"]["median_ms"]
    ort_batched_best = timings["ort_cpu_batched"]["min_ms"]
    single_calls = timings["ort_cpu_6_single_calls"]["median_ms"]
    torch_eager = timings["torch_eager_batched"]["median_ms"]
    report = {
        "benchmark": "fsmde-bench model",
        "profile": config.profile,
        "weights": args.checkpoint or "untrained (speed does not depend on the weights)",
        "input": {"num_cameras": n, "height": h, "width": w, "num_bins": config.num_bins},
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": args.threads,
        "repeats": args.repeats,
        "flops_per_set": flops,
        "gflops_per_set": round(flops / 1e9, 3),
        "flops_by_op": flops_by_op,
        "sgemm": rates,
        "flop_floor_ms": round(floor_ms, 3),
        "flop_floor_best_ms": round(floor_best_ms, 3),
        **timings,
        "ratios": {
            "ort_batched_to_floor": round(ort_batched / floor_ms, 2),
            "ort_batched_to_floor_best_of_runs": round(ort_batched_best / floor_best_ms, 2),
            "ort_single_calls_to_batched": round(single_calls / ort_batched, 2),
            "torch_eager_to_ort_batched": round(torch_eager / ort_batched, 2),
        },
        "goals": {
            "batched_latency_ms_max": GOAL_LATENCY_MS,
            "batched_to_floor_max": GOAL_FLOOR_RATIO,
            "met": bool(ort_batched <= GOAL_LATENCY_MS and ort_batched / floor_ms <= GOAL_FLOOR_RATIO),
        },
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "python": platform.python_version(),
                    "onnxruntime": ort.__version__, "torch": torch.__version__,
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()],
                    "scheduler": scheduler_state()},
    }
    output = Path(args.output or f"docs/bench/model_{config.profile}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {output}")
    return report


def scheduler_state() -> dict[str, str]:
    """Linux autogroup state of this process: with autogroups on, ``nice`` only ranks processes of one
    session, so background jobs of other sessions compete with the benchmark as equals."""
    state = {}
    for key, path in (("autogroup_enabled", "/proc/sys/kernel/sched_autogroup_enabled"),
                      ("autogroup", "/proc/self/autogroup")):
        try:
            state[key] = Path(path).read_text().strip()
        except OSError:
            state[key] = "unavailable"
    state["nice"] = str(os.nice(0))
    return state


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_table(report: dict) -> None:
    inp = report["input"]
    print(f"student '{report['profile']}': {inp['num_cameras']} x {inp['height']} x {inp['width']}, "
          f"{report['parameters']:,} parameters, {report['gflops_per_set']} GFLOP per set, "
          f"{report['threads']} threads")
    sgemm = report["sgemm"]
    print(f"sgemm: ORT {sgemm['ort_matmul_gflops']} GFLOP/s, torch {sgemm['torch_mm_gflops']} GFLOP/s "
          f"-> FLOP floor {report['flop_floor_ms']:.1f} ms per set")
    print(f"{'measurement':<28}{'median ms':>11}{'p90 ms':>10}{'x floor':>9}")
    for key, label in (("ort_cpu_batched", "ORT CPU, one batched call"),
                       ("ort_cpu_6_single_calls", "ORT CPU, 6 single calls"),
                       ("torch_eager_batched", "torch eager, batched")):
        row = report[key]
        print(f"{label:<28}{row['median_ms']:>11.1f}{row['p90_ms']:>10.1f}"
              f"{row['median_ms'] / report['flop_floor_ms']:>9.2f}")
    print(f"best of runs: batched {report['ort_cpu_batched']['min_ms']:.1f} ms vs floor "
          f"{report['flop_floor_best_ms']:.1f} ms = {report['ratios']['ort_batched_to_floor_best_of_runs']}x")
    goals = report["goals"]
    print(f"goal: batched <= {goals['batched_latency_ms_max']:.0f} ms and "
          f"<= {goals['batched_to_floor_max']}x floor: {'met' if goals['met'] else 'NOT met'}")
