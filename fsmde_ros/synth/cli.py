"""``fsmde-synth``: generate SynthSurround, a surround-camera rosbag2, a benchmark, a contact sheet.

fsmde-synth generate --out data/synth            # default splits: 600/600/60/120 frames
fsmde-synth bag --out data/synth_bag --seed 200000 --frames 48
fsmde-synth bench --frames 3 --json out/synth_bench.json
fsmde-synth sheet --out docs/contact_sheet.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fsmde_ros.bagio import BagError, write_surround_bag
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.rig import RigError, default_rig_path, load_rig
from fsmde_ros.synth.dataset import (
    SPLIT_SEED_BASE,
    Sequence,
    SequenceFrame,
    SynthError,
    generate_dataset,
    sequence_seed,
)

DEFAULT_SIZE = (224, 400)  # H, W
DEFAULT_PLAN = {"teacher-train": 60, "student-train": 60, "val": 6, "test": 12}
DEFAULT_FRAMES_PER_SEQUENCE = 10


def _rig(args: argparse.Namespace):
    return load_rig(args.rig).resized(args.width, args.height)


def _plan(entries: list[str] | None, frames: int) -> dict[str, tuple[int, int]]:
    if not entries:
        return {split: (n, frames) for split, n in DEFAULT_PLAN.items()}
    plan = {}
    for entry in entries:
        split, sep, count = entry.partition("=")
        if not sep or split not in SPLIT_SEED_BASE or not count.isdigit():
            raise SynthError(
                f"--sequences {entry!r}: expected SPLIT=COUNT with SPLIT one of {list(SPLIT_SEED_BASE)}"
            )
        plan[split] = (int(count), frames)
    return plan


def sample_of(seq_frame: SequenceFrame, sequence: Sequence, name: str) -> SurroundSample:
    """A rendered frame as the project's ``SurroundSample``."""
    f = seq_frame.frame
    rig = sequence.rig
    return SurroundSample(
        images=f.images,
        K=rig.intrinsics(),
        cam2ego=rig.extrinsics(),
        sparse_depth=f.sparse_depth,
        camera_names=tuple(rig.names),
        stamps_ns=seq_frame.stamps_ns,
        ego_pose=f.ego_pose,
        depth=f.depth,
        semantic=f.semantic,
        reflective=f.reflective,
        sequence=name,
        frame_index=seq_frame.index,
        camera_ego_poses=f.camera_ego_poses,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    plan = _plan(args.sequences, args.frames_per_sequence)
    t0 = time.perf_counter()
    done = generate_dataset(
        args.out,
        _rig(args),
        plan,
        str(args.rig),
        log=lambda line: print(f"[{time.perf_counter() - t0:7.1f} s] {line}", flush=True),
        reflections=not args.no_reflections,
    )
    print(json.dumps({"out": str(args.out), "frames": done, "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


def cmd_bag(args: argparse.Namespace) -> int:
    if args.frames <= 0:
        raise SynthError(f"--frames must be positive, got {args.frames}")
    sequence = Sequence(args.seed, _rig(args))
    name = f"seed_{args.seed}"
    samples = (sample_of(f, sequence, name) for f in sequence.frames(args.frames))
    info = write_surround_bag(
        args.out, samples, storage=args.storage, transport_delay_ns=args.transport_delay_ms * 1_000_000
    )
    print(
        json.dumps(
            {
                "out": str(args.out),
                "messages": info.message_count,
                "duration_s": round(info.duration_s, 3),
                "topics": sorted(info.topics),
            }
        )
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.frames <= 0:
        raise SynthError(f"--frames must be positive, got {args.frames}")
    rig = _rig(args)
    sequence = Sequence(sequence_seed("test", args.sequence), rig)
    sequence.frame(0)  # warm-up: caches, first-call allocations
    times = []
    for k in range(1, args.frames + 1):
        t0 = time.perf_counter()
        sequence.frame(k)
        times.append(time.perf_counter() - t0)
    result = {
        "benchmark": "synthsurround_frame",
        "cameras": len(rig),
        "height": args.height,
        "width": args.width,
        "frames": args.frames,
        "seconds_per_frame_median": float(np.median(times)),
        "seconds_per_frame_max": float(np.max(times)),
        "goal_seconds": 1.0,
        "ratio_to_goal": float(np.median(times)) / 1.0,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "machine": platform.processor() or platform.machine(),
    }
    print(
        f"SynthSurround: {len(rig)} cameras at {args.width}x{args.height}: "
        f"{result['seconds_per_frame_median']:.3f} s per frame (median of {args.frames}; goal <= 1 s, "
        f"ratio {result['ratio_to_goal']:.2f}; 1-min load average {result['load_average_1min']:.1f})"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    from fsmde_ros.synth.contact_sheet import contact_sheet

    rig = _rig(args)
    rows = []
    for split, index, frame in (("val", 0, 0), ("test", 1, 5), ("teacher-train", 2, 3)):
        sequence = Sequence(sequence_seed(split, index), rig)
        rows.append(sample_of(sequence.frame(frame), sequence, f"{split}_{index:05d}"))
    contact_sheet(rows, args.out)
    print(json.dumps({"out": str(args.out)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsmde-synth",
        description="Generate SynthSurround, a surround-camera rosbag2, a benchmark or a contact sheet.",
    )
    parser.add_argument("--rig", type=Path, default=default_rig_path(), help="rig YAML (default: nuScenes)")
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[1], help="rendered image width")
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[0], help="rendered image height")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="render the dataset splits into a directory")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument(
        "--sequences",
        action="append",
        metavar="SPLIT=COUNT",
        help=f"sequences per split (repeat; default {DEFAULT_PLAN})",
    )
    gen.add_argument("--frames-per-sequence", type=int, default=DEFAULT_FRAMES_PER_SEQUENCE)
    gen.add_argument(
        "--no-reflections",
        action="store_true",
        help="render mirror-like surfaces without what they mirror: the diffuse layer (diagnostics)",
    )
    gen.set_defaults(func=cmd_generate)
    bag = sub.add_parser("bag", help="write a surround-camera rosbag2 (Image + CameraInfo per camera)")
    bag.add_argument("--out", type=Path, required=True, help="bag directory to create")
    bag.add_argument("--seed", type=int, default=SPLIT_SEED_BASE["test"], help="sequence seed")
    bag.add_argument("--frames", type=int, default=48, help="frames at 12 Hz")
    bag.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    bag.add_argument("--transport-delay-ms", type=int, default=4, help="log time minus capture stamp")
    bag.set_defaults(func=cmd_bag)
    bench = sub.add_parser("bench", help="time the rendering of one frame")
    bench.add_argument("--frames", type=int, default=3)
    bench.add_argument("--sequence", type=int, default=0, help="test-split sequence index to render")
    bench.add_argument("--json", type=Path, help="write the result as JSON here")
    bench.set_defaults(func=cmd_bench)
    sheet = sub.add_parser("sheet", help="contact sheet PNG of a few frames")
    sheet.add_argument("--out", type=Path, default=Path("docs/contact_sheet.png"))
    sheet.set_defaults(func=cmd_sheet)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.width <= 0 or args.height <= 0:
        print(f"fsmde-synth: image size must be positive, got {args.width}x{args.height}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (SynthError, RigError, BagError) as exc:
        print(f"fsmde-synth: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
