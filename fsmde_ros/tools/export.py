"""``fsmde-export``: export a student checkpoint (or an untrained profile) to ONNX with metadata.

The export always runs the parity check (ONNX Runtime CPU against torch, relative error <= 1e-4)
and fails when it does not pass.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from fsmde_ros.model.contract import OUTPUT_NAMES

PROVENANCE_SKIPPED = ("fsmde_format", "fsmde_model_config", "weights_sha256")
"""Checkpoint metadata the graph already states in its own properties."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmde-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="student .safetensors checkpoint")
    source.add_argument("--untrained-profile", metavar="PROFILE",
                        help="export a randomly initialised student of this profile (benchmarks, tests)")
    parser.add_argument("--output", "-o", required=True, help="ONNX file to write")
    parser.add_argument("--num-cameras", type=int, help="static batch size (default: the profile's)")
    parser.add_argument("--dynamic-batch", action="store_true", help="make the batch axis dynamic")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed for --untrained-profile")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from fsmde_ros.model.checkpoint import CheckpointError, load_student
    from fsmde_ros.model.config import ModelConfigError
    from fsmde_ros.model.onnx_export import ExportError, export_onnx
    from fsmde_ros.model.student import build_student

    try:
        if args.checkpoint:
            model, checkpoint_metadata = load_student(args.checkpoint)
            source = f"checkpoint {args.checkpoint}"
            provenance = {k: v for k, v in checkpoint_metadata.items() if k not in PROVENANCE_SKIPPED}
        else:
            model = build_student(args.untrained_profile, seed=args.seed)
            source = f"untrained profile {args.untrained_profile} (seed {args.seed})"
            provenance = {"kind": "untrained student: random weights, for benchmarks and tests only"}
        if args.num_cameras is not None and args.num_cameras < 1:
            raise ExportError(f"--num-cameras must be >= 1, got {args.num_cameras}")
        report = export_onnx(model, args.output, num_cameras=args.num_cameras,
                             dynamic_batch=args.dynamic_batch, opset=args.opset, source=source,
                             provenance=provenance)
    except (CheckpointError, ModelConfigError, ExportError) as exc:
        print(f"fsmde-export: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"output": str(report.path), "outputs": list(OUTPUT_NAMES),
                      "parity_relative_error": report.parity,
                      "metadata": {k: v for k, v in report.metadata.items() if k != "fsmde_model_config"}},
                      indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
