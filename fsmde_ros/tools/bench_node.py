"""Node benchmark: a bag player process and the node process over DDS, 6 cameras at 12 Hz, then 2x.

Phase ``nominal`` plays a SynthSurround sequence bag in a loop at its recorded 12 Hz for
``--duration`` seconds; phase ``overload`` plays it at twice the rate the node sustained (or 2x the
input rate when it kept up), where latency must stay bounded because the node holds one set in
flight and one waiting. Each phase runs a fresh node with the loopback DDS profile; its statistics
(written on shutdown) give end-to-end latency (last image of a set received -> cloud published)
median / p99, per-stage latency, achieved Hz and drops by reason. The fused cloud of six depth
images is also timed in-process (``CloudBuilder.build``, the shipped cloud settings). Prints a
table with the goals (>= 10 Hz; non-network work <= 10 ms per set; cloud <= 5 ms) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from fsmde_ros.bagio import BagError, bag_info, read_messages
from fsmde_ros.conventions import NS_PER_S
from fsmde_ros.core.cloud import CloudBuilder
from fsmde_ros.params import load_config
from fsmde_ros.tools.node_processes import (
    REPO_ROOT,
    RosProcesses,
    ensure_model,
    ensure_synth_bag,
    write_node_config,
)

GOAL_HZ = 10.0
GOAL_NON_NETWORK_MS = 10.0
GOAL_CLOUD_MS = 5.0
NON_NETWORK_STAGES = ("preprocess", "postprocess", "fusion", "publish")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, help="surround bag (default: a 48-frame SynthSurround bag)")
    parser.add_argument("--model", type=Path, help="model (default: models/student_cpu.onnx)")
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU inference threads (0 = all cores; 1 is best on 2 shared cores)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "bench_node", help="logs and configs")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "docs" / "bench" / "node_cpu.json")


def input_rate_hz(bag: Path) -> float:
    """Image sets per second of a surround bag: the message rate of its first image topic."""
    topics = sorted(t for t in bag_info(bag).topics if t.endswith("/image_raw"))
    if not topics:
        raise BagError(f"{bag}: no image_raw topic")
    stamps = [m.stamp_ns for m in read_messages(bag, topics[:1])]
    if len(stamps) < 2:
        raise BagError(f"{bag}: {topics[0]} has fewer than two messages")
    return (len(stamps) - 1) * NS_PER_S / (stamps[-1] - stamps[0])


def run_phase(name: str, bag: Path, config: Path, rate: float, duration: float, out: Path) -> dict:
    """One node + one looping player for ``duration`` s; returns the node's final statistics."""
    stats_file = out / f"{name}_stats.json"
    stats_file.unlink(missing_ok=True)
    with RosProcesses(out / f"logs_{name}") as procs:
        procs.start("node", "fsmde_ros.node", "--ros-args", "-p", f"config:={config}", "-p",
                    f"stats_file:={stats_file}")
        procs.wait_for_line("node", "backend ", 120)
        procs.start("replay", "fsmde_ros.tools.replay", str(bag), "--loop", "--rate", f"{rate:.4f}",
                    "--wait-for")
        procs.wait_for_line("replay", "fsmde-replay:", 60)
        time.sleep(duration)
        procs.stop("replay")
        time.sleep(1.0)
        procs.stop("node")
    return json.loads(stats_file.read_text())


def time_cloud(config_path: Path, input_hw: tuple[int, int], repeats: int = 100) -> dict:
    """Median / p99 ms of building the fused cloud of six depth images with the configured settings."""
    config = load_config(config_path)
    h, w = input_hw
    rig = config.rig.resized(w, h)
    s = config.cloud
    builder = CloudBuilder(rig.intrinsics(), rig.extrinsics(), h, w, s.stride, s.min_range, s.max_range,
                           s.min_confidence, s.overlap, s.voxel_size)
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 60.0, (len(rig), h, w)).astype(np.float32)
    confidence = rng.uniform(0, 1, depth.shape).astype(np.float32)
    images = rng.integers(0, 256, (len(rig), h, w, 3), dtype=np.uint8)
    times = []
    for _ in range(repeats + 5):
        t0 = time.perf_counter()
        cloud = builder.build(depth, confidence, images)
        times.append(time.perf_counter() - t0)
    ms = np.array(times[5:]) * 1e3
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "points": int(cloud.size), "stride": s.stride, "overlap": s.overlap, "input_hw": [h, w]}


def phase_summary(stats: dict) -> dict:
    stages = stats["stages_ms"]
    non_network = sum(stages[s]["median"] for s in NON_NETWORK_STAGES if stages[s]["count"])
    return {"output_hz": stats["mean_output_hz"], "published_sets": stats["published_sets"],
            "end_to_end_median_ms": stages["end_to_end"]["median"],
            "end_to_end_p99_ms": stages["end_to_end"]["p99"],
            "non_network_median_ms": non_network, "stages_ms": stages, "drops": stats["drops"],
            "input_hz": stats["mean_input_hz"]}


def run(args: argparse.Namespace) -> dict:
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    default_bag = REPO_ROOT / "data" / "bench" / "synth_bag_48"
    bag = args.bag.resolve() if args.bag else ensure_synth_bag(default_bag, 48)
    model, note = ensure_model(args.model, out)
    print(f"fsmde-bench node: {note}", flush=True)
    config = write_node_config(out / "node.yaml", model, args.backend, args.threads)
    bag_hz = input_rate_hz(bag)
    load_start = os.getloadavg()[0]
    nominal = run_phase("nominal", bag, config, 1.0, args.duration, out)
    sustained = min(nominal["mean_output_hz"], bag_hz)
    overload_rate = 2.0 * sustained / bag_hz
    overload = run_phase("overload", bag, config, overload_rate, args.duration, out)
    from fsmde_ros.backends.model_info import read_onnx_info

    info = read_onnx_info(model)
    shape = info.input_shape(None)
    cloud = time_cloud(config, (shape[1], shape[2]))
    phases = {"nominal": phase_summary(nominal), "overload": phase_summary(overload)}
    result = {
        "benchmark": "fsmde-bench node",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": platform.processor(), "load_average_1min_start": load_start,
                    "load_average_1min_end": os.getloadavg()[0]},
        "model": str(model.relative_to(REPO_ROOT) if model.is_relative_to(REPO_ROOT) else model),
        "model_note": note, "backend": nominal["backend"], "input_shape": list(shape),
        "bag": {"path": str(bag), "input_hz": bag_hz}, "duration_s_per_phase": args.duration,
        "overload": {"rate_factor": overload_rate, "input_hz": overload_rate * bag_hz,
                     "sustained_hz_nominal": sustained},
        "phases": phases, "cloud_6_images": cloud,
        "goals": {
            "hz_ge_10": phases["nominal"]["output_hz"] >= GOAL_HZ,
            "non_network_le_10_ms": phases["nominal"]["non_network_median_ms"] <= GOAL_NON_NETWORK_MS,
            "cloud_le_5_ms": cloud["median_ms"] <= GOAL_CLOUD_MS,
        },
        "overload_p99_over_nominal_p99": (phases["overload"]["end_to_end_p99_ms"]
                                          / phases["nominal"]["end_to_end_p99_ms"]),
    }
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}", flush=True)
    return result


def print_table(result: dict) -> None:
    print(f"\nfsmde-bench node: {result['backend']}, input {result['input_shape']}, "
          f"{result['duration_s_per_phase']:.0f} s per phase", flush=True)
    header = f"{'phase':<10}{'in Hz':>8}{'out Hz':>8}{'e2e med':>9}{'e2e p99':>9}{'infer':>8}" \
             f"{'non-net':>9}{'fusion':>8}  drops"
    print(header)
    for name, p in result["phases"].items():
        stages = p["stages_ms"]
        in_hz = float(np.mean(list(p["input_hz"].values())))
        drops = ", ".join(f"{k} {v}" for k, v in p["drops"].items()) or "none"
        print(f"{name:<10}{in_hz:>8.1f}{p['output_hz']:>8.1f}{p['end_to_end_median_ms']:>9.1f}"
              f"{p['end_to_end_p99_ms']:>9.1f}{stages['inference']['median']:>8.1f}"
              f"{p['non_network_median_ms']:>9.1f}{stages['fusion']['median']:>8.1f}  {drops}")
    cloud = result["cloud_6_images"]
    print(f"cloud of 6 depth images (in-process): median {cloud['median_ms']:.2f} ms, "
          f"p99 {cloud['p99_ms']:.2f} ms, {cloud['points']} points")
    print(f"overload p99 / nominal p99: {result['overload_p99_over_nominal_p99']:.2f}")
    for goal, ok in result["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")
