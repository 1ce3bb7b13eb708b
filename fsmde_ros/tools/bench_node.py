"""Node benchmark: a bag player process and the node process over DDS, 6 cameras at 12 Hz, then 2x.

Phase ``nominal`` plays a SynthSurround sequence bag in a loop at its recorded 12 Hz for
``--duration`` seconds; phase ``overload`` plays it at twice the rate the node sustained (or 2x the
input rate when it kept up), where latency must stay bounded because the node holds one set in
flight and one waiting. Each phase runs a fresh node with the loopback DDS profile; its statistics
(written on shutdown) give end-to-end latency (last image of a set received -> cloud published)
median / p99, per-stage latency, achieved Hz and drops by reason. The fused cloud of six depth
images and every other stage are also timed in this process on the bag's first set, without DDS
and without the player competing for the CPU (the shipped cloud settings). Prints a
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

from fsmde_ros.bagio import (
    BagError,
    bag_info,
    deserialize,
    image_rgb,
    intrinsics_from_camera_info,
    read_messages,
)
from fsmde_ros.conventions import NS_PER_S
from fsmde_ros.core.pipeline import CameraFrame, SurroundPipeline
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(name: str, bag: Path, config: Path, rate: float, duration: float, out: Path) -> dict:
    """One node + one looping player for ``duration`` s; returns the node's final statistics plus
    the CPU time the node process used meanwhile (its own cost, whatever else loads the machine)."""
    stats_file = out / f"{name}_stats.json"
    stats_file.unlink(missing_ok=True)
    with RosProcesses(out / f"logs_{name}") as procs:
        node = procs.start("node", "fsmde_ros.node", "--ros-args", "-p", f"config:={config}", "-p",
                           f"stats_file:={stats_file}")
        procs.wait_for_line("node", "backend ", 120)
        cpu_start = cpu_seconds(node.pid)
        procs.start("replay", "fsmde_ros.tools.replay", str(bag), "--loop", "--rate", f"{rate:.4f}",
                    "--wait-for")
        procs.wait_for_line("replay", "fsmde-replay:", 60)
        time.sleep(duration)
        procs.stop("replay")
        time.sleep(1.0)
        node_cpu_s = cpu_seconds(node.pid) - cpu_start
        procs.stop("node")
    stats = json.loads(stats_file.read_text())
    stats["node_cpu_s"] = node_cpu_s
    return stats


def first_set(bag: Path, names: list[str]) -> list[CameraFrame]:
    """The first image of each camera in a surround bag, decoded, with its CameraInfo's K."""
    images: dict[str, CameraFrame] = {}
    infos: dict[str, np.ndarray] = {}
    for message in read_messages(bag):
        camera = message.topic.split("/")[2] if message.topic.count("/") >= 3 else ""
        if camera not in names:
            continue
        msg = deserialize(message)
        if message.topic.endswith("/camera_info") and camera not in infos:
            infos[camera] = intrinsics_from_camera_info(msg)
        elif message.topic.endswith("/image_raw") and camera in infos and camera not in images:
            images[camera] = CameraFrame(image_rgb(msg), infos[camera], message.stamp_ns, camera)
        if len(images) == len(names):
            return [images[n] for n in names]
    raise BagError(f"{bag}: no complete set of {names} with CameraInfo")


def time_in_process(config_path: Path, bag: Path, repeats: int = 30) -> dict:
    """Median / p99 ms of each pipeline stage on the bag's first set, in this process (no DDS)."""
    from fsmde_ros.backends.factory import create_backend

    config = load_config(config_path)
    m, rig = config.model, config.rig
    backend = create_backend(m["backend"], m["path"], num_cameras=len(rig), threads=m["threads"] or None)
    pipeline = SurroundPipeline(backend, rig.extrinsics(), rig.intrinsics(),
                                (rig.cameras[0].width, rig.cameras[0].height), config.input["preprocess"],
                                config.cloud, config.output["max_invalid_fraction"])
    frames = first_set(bag, rig.names)
    times: dict[str, list[float]] = {}
    for k in range(repeats + 3):
        out = pipeline.process(frames)
        if k >= 3:
            for stage, seconds in out.timings.items():
                times.setdefault(stage, []).append(seconds * 1e3)
    backend.close()
    stages = {s: {"median": float(np.median(v)), "p99": float(np.percentile(v, 99))}
              for s, v in times.items()}
    non_network = sum(stages[s]["median"] for s in ("preprocess", "postprocess", "fusion"))
    return {"stages_ms": stages, "non_network_without_publish_median_ms": non_network,
            "cloud_points": int(out.cloud.size), "repeats": repeats,
            "source_size": list(frames[0].image.shape[1::-1]), "cloud_stride": config.cloud.stride,
            "cloud_overlap": config.cloud.overlap}


def phase_summary(stats: dict) -> dict:
    stages = stats["stages_ms"]
    non_network = sum(stages[s]["median"] for s in NON_NETWORK_STAGES if stages[s]["count"])
    return {"output_hz": stats["mean_output_hz"], "published_sets": stats["published_sets"],
            "end_to_end_median_ms": stages["end_to_end"]["median"],
            "end_to_end_p99_ms": stages["end_to_end"]["p99"],
            "non_network_median_ms": non_network, "stages_ms": stages, "drops": stats["drops"],
            "input_hz": stats["mean_input_hz"], "node_cpu_s": stats["node_cpu_s"],
            "node_cpu_ms_per_published_set": 1e3 * stats["node_cpu_s"] / max(1, stats["published_sets"])}


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

    shape = read_onnx_info(model).input_shape(None)
    in_process = time_in_process(config, bag)
    cloud_ms = in_process["stages_ms"]["fusion"]["median"]
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
        "phases": phases, "in_process": in_process,
        "goals": {
            "hz_ge_10": phases["nominal"]["output_hz"] >= GOAL_HZ,
            "non_network_le_10_ms": phases["nominal"]["non_network_median_ms"] <= GOAL_NON_NETWORK_MS,
            "cloud_le_5_ms": cloud_ms <= GOAL_CLOUD_MS,
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
             f"{'non-net':>9}{'fusion':>8}{'cpu/set':>9}  drops"
    print(header)
    for name, p in result["phases"].items():
        stages = p["stages_ms"]
        in_hz = float(np.mean(list(p["input_hz"].values())))
        drops = ", ".join(f"{k} {v}" for k, v in p["drops"].items()) or "none"
        print(f"{name:<10}{in_hz:>8.1f}{p['output_hz']:>8.1f}{p['end_to_end_median_ms']:>9.1f}"
              f"{p['end_to_end_p99_ms']:>9.1f}{stages['inference']['median']:>8.1f}"
              f"{p['non_network_median_ms']:>9.1f}{stages['fusion']['median']:>8.1f}"
              f"{p['node_cpu_ms_per_published_set']:>9.1f}  {drops}")
    in_process = result["in_process"]
    print("in-process, no DDS (median / p99 ms): " + ", ".join(
        f"{name} {s['median']:.1f} / {s['p99']:.1f}" for name, s in in_process["stages_ms"].items())
        + f"; preprocess + postprocess + fusion {in_process['non_network_without_publish_median_ms']:.1f}; "
        f"cloud of 6 depth images: {in_process['cloud_points']} points")
    print(f"overload p99 / nominal p99: {result['overload_p99_over_nominal_p99']:.2f}")
    for goal, ok in result["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")
