"""``fsmde-build-engine``: build (or validate the cached) native TensorRT engine of an exported student.

The engine and its sidecar JSON go to --engine-dir (default: ``engines/`` beside the ONNX file); a
cached engine whose sidecar matches this TensorRT version, GPU, ONNX file and precision is reused.
int8 calibrates on images from a surround-camera bag (--calib-bag) or image files (--calib-images,
grouped N at a time in camera order) and writes a calibration cache; without images the cache is used.
Without --build-only, the engine is then checked against ONNX Runtime CPU and timed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from fsmde_ros.backends.base import BackendError
from fsmde_ros.backends.factory import PRECISIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmde-build-engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", help="exported student (.onnx, from fsmde-export)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16")
    parser.add_argument("--engine-dir", help="engines and sidecars (default: engines/ beside the model)")
    parser.add_argument("--num-cameras", type=int, help="camera count (default: the model's)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--workspace-mb", type=int, default=2048, help="builder workspace limit")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if the cached engine is valid")
    parser.add_argument("--build-only", action="store_true", help="build or validate, then exit")
    calib = parser.add_argument_group("int8 calibration")
    calib.add_argument("--calib-bag", help="surround-camera bag (fsmde_ros.bagio layout)")
    calib.add_argument("--calib-rig", help="rig YAML naming the bag's cameras (default: the nuScenes rig)")
    calib.add_argument("--calib-namespace", default="/cameras", help="camera topic namespace in the bag")
    calib.add_argument("--calib-images", nargs="+", help="image files, N consecutive files per set")
    calib.add_argument("--calib-cache", help="calibration cache file (default: beside the engine)")
    calib.add_argument("--calib-batches", type=int, default=64, help="most camera sets to calibrate on")
    parser.add_argument("--runs", type=int, default=50, help="timed runs after the build check")
    return parser


def calibration_stream(args, input_shape):
    """The CalibrationBatchStream the arguments name, or None."""
    from fsmde_ros.backends.tensorrt_calibration import (
        CalibrationBatchStream,
        image_sets_from_bag,
        image_sets_from_files,
    )

    if args.calib_bag and args.calib_images:
        raise BackendError("give --calib-bag or --calib-images, not both")
    if args.calib_bag:
        from fsmde_ros.rig import default_rig_path, load_rig

        names = load_rig(args.calib_rig or default_rig_path()).names
        if len(names) != input_shape[0]:
            raise BackendError(f"{args.calib_rig or default_rig_path()}: rig has {len(names)} cameras, the "
                               f"engine takes {input_shape[0]}")
        sets = image_sets_from_bag(args.calib_bag, names, args.calib_namespace)
        return CalibrationBatchStream(sets, input_shape, args.calib_batches, str(args.calib_bag))
    if args.calib_images:
        sets = image_sets_from_files(args.calib_images, input_shape[0])
        return CalibrationBatchStream(sets, input_shape, args.calib_batches, "--calib-images")
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from fsmde_ros.backends.model_info import read_onnx_info
    from fsmde_ros.backends.tensorrt_backend import TensorRTBackend

    try:
        info = read_onnx_info(args.onnx)
        info.check_expected(args.num_cameras, None)
        stream = calibration_stream(args, info.input_shape(args.num_cameras))
        started = time.monotonic()
        backend = TensorRTBackend(args.onnx, precision=args.precision, engine_dir=args.engine_dir,
                                  device_id=args.device, num_cameras=args.num_cameras, calibration=stream,
                                  calibration_cache=args.calib_cache,
                                  workspace_bytes=args.workspace_mb << 20, rebuild=args.rebuild)
        summary = {"engine": str(backend.plan.engine_path), "precision": args.precision,
                   "ready_s": round(time.monotonic() - started, 1)}
        if not args.build_only:
            summary.update(check_and_time(backend, Path(args.onnx), args.runs))
        backend.close()
    except BackendError as exc:
        print(f"fsmde-build-engine: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


def check_and_time(backend, onnx_path: Path, runs: int) -> dict:
    """Depth error against ONNX Runtime CPU on random images, and engine latency."""
    from fsmde_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from fsmde_ros.model.onnx_export import relative_error

    images = np.random.default_rng(0).integers(0, 256, backend.input_shape, dtype=np.uint8)
    reference = OnnxRuntimeBackend(onnx_path, "cpu", num_cameras=backend.input_shape[0]).infer(images)
    result = backend.infer(images)
    for _ in range(5):
        backend.infer(images)
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        backend.infer(images)
        times.append(time.perf_counter() - start)
    return {"depth_relative_error_vs_ort_cpu": relative_error(result.depth, reference.depth),
            "latency_ms_median": round(1000 * float(np.median(times)), 3),
            "latency_ms_p90": round(1000 * float(np.percentile(times, 90)), 3)}


if __name__ == "__main__":
    sys.exit(main())
