"""``fsmde-demo``: the surround depth node end to end on a SynthSurround sequence bag.

1. makes a short SynthSurround sequence bag (``fsmde-synth bag``, reused on later runs);
2. starts ``surround_depth_node`` with the shipped model (an untrained student, said loudly, until
   the trained one is in models/), ``fsmde-record`` and ``fsmde-replay``, each its own process on
   the loopback-only DDS profile and a private ROS domain;
3. records the node's outputs (depth, camera_info, fused cloud, diagnostics) to an mcap that
   Foxglove opens;
4. writes a PNG contact sheet: the six inputs, the six colourised depth maps, a bird's-eye view of
   the fused cloud;
5. prints the latency and drop summary (also written as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fsmde_ros.bagio import BagError, deserialize, image_rgb, read_messages
from fsmde_ros.core.cloud import CLOUD_DTYPE
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.tools.node_processes import (
    REPO_ROOT,
    ProcessError,
    RosProcesses,
    ensure_model,
    ensure_synth_bag,
    write_node_config,
)

TILE_W, TILE_H = 320, 180
DEPTH_RANGE = (0.5, 80.0)
BEV_HALF_M = 40.0


def colourise_depth(depth: np.ndarray, size: tuple[int, int] = (TILE_W, TILE_H)) -> np.ndarray:
    """RGB tile of a depth image: turbo colours on log depth over DEPTH_RANGE (near = red), NaN black."""
    lo, hi = np.log(DEPTH_RANGE[0]), np.log(DEPTH_RANGE[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (hi - np.log(depth)) / (hi - lo)
    scaled = np.clip(np.nan_to_num(t, nan=0.0) * 255, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[~np.isfinite(depth)] = 0
    return cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST)


def birds_eye(cloud: np.ndarray, size: int = 2 * TILE_H, half_m: float = BEV_HALF_M) -> np.ndarray:
    """RGB top view of a cloud (CLOUD_DTYPE) in base_link: x forward up, y left to the left, car centred."""
    view = np.full((size, size, 3), 24, np.uint8)
    scale = size / (2 * half_m)
    for r in range(10, int(half_m) + 1, 10):
        cv2.circle(view, (size // 2, size // 2), int(r * scale), (60, 60, 60), 1)
    col = np.round(size / 2 - cloud["y"] * scale).astype(np.int64)
    row = np.round(size / 2 - cloud["x"] * scale).astype(np.int64)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    packed = cloud["rgb"].view(np.uint32)[inside]
    colours = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    order = np.argsort(cloud["z"][inside])  # higher points drawn last
    view[row[inside][order], col[inside][order]] = colours[order]
    car = np.array([[-2.0, -1.0], [-2.0, 1.0], [2.5, 1.0], [2.5, -1.0]])  # x, y corners of the ego car
    pts = np.stack([size / 2 - car[:, 1] * scale, size / 2 - car[:, 0] * scale], axis=1).astype(np.int32)
    cv2.polylines(view, [pts], True, (255, 255, 255), 1)
    return view


def contact_sheet(inputs: list[np.ndarray], depths: list[np.ndarray], cloud: np.ndarray,
                  names: list[str], caption: list[str]) -> np.ndarray:
    """RGB sheet: row of inputs, row of depth maps, then the bird's-eye view with a caption beside it."""
    n = len(inputs)
    width = n * TILE_W
    rows = [np.hstack([cv2.resize(img, (TILE_W, TILE_H), interpolation=cv2.INTER_AREA) for img in inputs]),
            np.hstack([colourise_depth(d) for d in depths])]
    for r, row in enumerate(rows):
        for i, name in enumerate(names):
            label = name if r == 0 else f"{name} depth"
            cv2.putText(row, label, (i * TILE_W + 6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                        cv2.LINE_AA)
    bev = birds_eye(cloud)
    bottom = np.full((bev.shape[0], width, 3), 16, np.uint8)
    bottom[:, : bev.shape[1]] = bev
    legend = [f"fused cloud: {cloud.size} points, bird's-eye view +-{BEV_HALF_M:.0f} m (rings every 10 m)",
              f"depth colours: turbo on log depth, {DEPTH_RANGE[0]} m red to {DEPTH_RANGE[1]:.0f} m blue, "
              "invalid black"]
    for k, line in enumerate([*legend, *caption]):
        cv2.putText(bottom, line, (bev.shape[1] + 16, 28 + 24 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return np.vstack([*rows, bottom])


def summary_lines(stats: dict) -> list[str]:
    """Human-readable latency and drop summary of the node's statistics (``NodeStats.snapshot``)."""
    stages = stats["stages_ms"]
    e2e = stages["end_to_end"]
    lines = [f"backend {stats['backend']}: {stats['published_sets']} sets published "
             f"({stats['synced_sets']} synchronized), output {stats['mean_output_hz']:.1f} Hz",
             f"end-to-end latency (last image received -> cloud published): median {e2e['median']:.1f} ms, "
             f"p99 {e2e['p99']:.1f} ms",
             "per stage, median ms: " + ", ".join(f"{name} {s['median']:.1f}" for name, s in stages.items()
                                                  if name != "end_to_end" and s["count"])]
    drops = stats["drops"]
    lines.append("drops: " + (", ".join(f"{k} {v}" for k, v in drops.items()) if drops else "none"))
    consistency = {k: v for k, v in stats["consistency_median_abs_rel"].items() if v == v}
    if consistency:
        lines.append("cross-view disagreement (median rel.): " + ", ".join(
            f"{k.replace('CAM_', '')} {v:.3f}" for k, v in consistency.items()))
    return lines


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def sheet_from_bags(input_bag: Path, output_bag: Path, names: list[str], caption: list[str]) -> np.ndarray:
    """Contact sheet of the last set whose six depth images and cloud were all recorded."""
    depths: dict[str, dict[int, np.ndarray]] = {n: {} for n in names}
    clouds: list[tuple[int, np.ndarray]] = []
    for message in read_messages(output_bag):
        if message.topic == "/points":
            msg = deserialize(message)
            clouds.append((_stamp(msg), np.frombuffer(bytes(msg.data), CLOUD_DTYPE).copy()))
        elif message.topic.endswith("/depth") and message.topic.strip("/").split("/")[0] in depths:
            msg = deserialize(message)
            depth = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width).copy()
            depths[message.topic.strip("/").split("/")[0]][_stamp(msg)] = depth
    images: dict[str, dict[int, np.ndarray]] = {n: {} for n in names}
    wanted = [f"/cameras/{n}/image_raw" for n in names]
    for message in read_messages(input_bag, wanted):
        msg = deserialize(message)
        images[message.topic.split("/")[2]][_stamp(msg)] = image_rgb(msg)
    for cloud_stamp, cloud in reversed(clouds):
        chosen = []
        for n in names:
            stamps = [s for s in depths[n] if abs(s - cloud_stamp) < 200_000_000 and s in images[n]]
            if not stamps:
                break
            chosen.append(max(stamps))
        if len(chosen) == len(names):
            pairs = list(zip(names, chosen, strict=True))
            return contact_sheet([images[n][s] for n, s in pairs], [depths[n][s] for n, s in pairs], cloud,
                                 names, caption)
    raise BagError(f"{output_bag}: no set with all {len(names)} depth images and a cloud was recorded")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "demo", help="output directory")
    parser.add_argument("--bag", type=Path, help="input surround bag (default: make a SynthSurround one)")
    parser.add_argument("--frames", type=int, default=24, help="frames of the SynthSurround bag (12 Hz)")
    parser.add_argument("--model", type=Path, help="model (default: models/student_cpu.onnx)")
    parser.add_argument("--backend", default="ort-cpu", help="backend (see fsmde_ros.backends.factory)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU inference threads (0 = all cores; 1 is best on 2 shared cores)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = load_rig(default_rig_path()).names
    print("fsmde-demo: 1/5 input bag", flush=True)
    if args.bag is None:
        bag = ensure_synth_bag(REPO_ROOT / "data" / "demo" / f"synth_bag_{args.frames}", args.frames)
        print(f"  SynthSurround sequence bag: {bag}", flush=True)
    else:
        bag = args.bag.resolve()
    model, note = ensure_model(args.model, out)
    print(f"fsmde-demo: 2/5 node, recorder, player ({note})", flush=True)
    config = write_node_config(out / "node.yaml", model, args.backend, args.threads)
    stats_file, recorded = out / "node_stats.json", out / "outputs"
    if recorded.exists():
        import shutil

        shutil.rmtree(recorded)
    topics = [f"/{n}/depth" for n in names] + [f"/{n}/depth/camera_info" for n in names] + \
        ["/points", "/diagnostics"]
    with RosProcesses(out / "logs") as procs:
        procs.start("node", "fsmde_ros.node", "--ros-args", "-p", f"config:={config}",
                    "-p", f"stats_file:={stats_file}")
        procs.wait_for_line("node", "backend ", 120)
        procs.start("record", "fsmde_ros.tools.record", str(recorded), "--topics", *topics)
        procs.wait_for_line("record", "fsmde-record: recording", 60)
        procs.start("replay", "fsmde_ros.tools.replay", str(bag), "--rate", str(args.rate),
                    "--wait-for")  # every topic of the bag: images and CameraInfo
        if procs.wait("replay", 600) != 0:
            raise ProcessError(f"replay failed:\n{procs.log_of('replay')[-3000:]}")
        time.sleep(1.5)  # the last set through inference, publishing and recording
        procs.stop("record")
        procs.stop("node")
    print(f"fsmde-demo: 3/5 outputs recorded to {recorded} (mcap; open it in Foxglove)", flush=True)
    stats = json.loads(stats_file.read_text())
    lines = summary_lines(stats)
    sheet = sheet_from_bags(bag, recorded, names, [note, *lines])
    sheet_path = out / "contact_sheet.png"
    cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"fsmde-demo: 4/5 contact sheet {sheet_path}", flush=True)
    print("fsmde-demo: 5/5 summary", flush=True)
    for line in [note, *lines]:
        print(f"  {line}", flush=True)
    summary = {"model": str(model), "note": note, "bag": str(bag), "recorded": str(recorded),
               "contact_sheet": str(sheet_path), "wall_s": time.monotonic() - started, "node": stats}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"fsmde-demo: done in {summary['wall_s']:.0f} s; summary in {out / 'summary.json'}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fsmde-demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except (ProcessError, BagError) as exc:
        print(f"fsmde-demo: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
