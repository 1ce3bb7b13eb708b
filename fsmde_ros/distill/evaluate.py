"""``fsmde-eval``: evaluate a student (checkpoint or ONNX, through a backend) or a teacher on a dataset.

Predictions are made at the model's input size and bilinearly upsampled to the ground truth's
size; the shared protocol of ``fsmde_ros.evaluation`` then gives the depth metrics (per camera and
averaged) and the cross-view consistency (disagreement of adjacent cameras in their overlap), the
latter also for the ground truth itself, the floor any model is compared with. Teachers predict
relative disparity and are aligned to each image's sparse LiDAR depth (``median`` or ``lstsq``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.distill.alignment import align_disparity
from fsmde_ros.distill.data import resize_sample, sample_key
from fsmde_ros.distill.losses import depth_mask
from fsmde_ros.distill.overlap import rig_from_calibration
from fsmde_ros.distill.sources import open_source
from fsmde_ros.distill.teachers import RelativeDepthTeacher, TeacherCache, build_teacher
from fsmde_ros.evaluation import CrossViewConsistency, EvalConfig, MetricAccumulator

DATASET_PROTOCOL = {"synth": "synthsurround", "nuscenes": "nuscenes", "ddad": "ddad"}


def upsample(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) -> (N, height, width) bilinear."""
    if depth.shape[1:] == (height, width):
        return depth.astype(np.float32)
    return np.stack([cv2.resize(d, (width, height), interpolation=cv2.INTER_LINEAR) for d in depth])


class Predictor(ABC):
    """Metric depth (N, H, W) at the sample's image size."""

    name: str

    @abstractmethod
    def predict(self, sample: SurroundSample) -> np.ndarray: ...


class StudentPredictor(Predictor):
    """A student through a backend: ``torch`` for .safetensors, ``ort-cpu`` for .onnx."""

    def __init__(self, model_path: str | Path, num_cameras: int, threads: int = 2) -> None:
        from fsmde_ros.backends.factory import create_backend

        path = Path(model_path)
        kind = "torch" if path.suffix == ".safetensors" else "ort-cpu"
        self.backend = create_backend(kind, path, num_cameras=num_cameras, threads=threads)
        self.name = f"{path} ({self.backend.name})"
        _, self.height, self.width, _ = self.backend.input_shape

    def predict(self, sample: SurroundSample) -> np.ndarray:
        small = resize_sample(sample, self.height, self.width)
        depth = self.backend.infer(small.images).depth
        return upsample(depth, *sample.image_size)


class TeacherPredictor(Predictor):
    """A relative-depth teacher at ``height`` x ``width``, aligned per image to the sample's sparse depth.

    With ``cache_root`` the teacher's raw disparity is cached per sample (shared by both alignments).
    """

    def __init__(
        self,
        teacher: RelativeDepthTeacher,
        align: str,
        height: int,
        width: int,
        min_depth: float = 0.5,
        max_depth: float = 80.0,
        cache_root: str | Path | None = None,
    ) -> None:
        self.teacher, self.align, self.height, self.width = teacher, align, height, width
        self.min_depth, self.max_depth = min_depth, max_depth
        self.cache = None if cache_root is None else TeacherCache(cache_root, teacher.identity, height, width)
        self.name = f"{teacher.identity} ({align}-aligned)"

    def _disparity(self, sample: SurroundSample) -> np.ndarray:
        key = sample_key(sample)
        if self.cache is not None and self.cache.has(key):
            return self.cache.get(key)
        disparity = self.teacher.predict(resize_sample(sample, self.height, self.width).images)
        if self.cache is not None:
            self.cache.put(key, disparity)
        return disparity

    def predict(self, sample: SurroundSample) -> np.ndarray:
        disparity = upsample(self._disparity(sample), *sample.image_size)
        sparse = torch.from_numpy(sample.sparse_depth.astype(np.float32))
        mask = depth_mask(sparse, self.min_depth, self.max_depth)
        depth = align_disparity(
            torch.from_numpy(disparity), sparse, mask, self.align, self.min_depth, self.max_depth
        )
        return depth.numpy()


def evaluate(
    predictor: Predictor,
    source,
    dataset: str,
    gt: str = "dense",
    max_frames: int | None = None,
    max_depth: float | None = None,
    progress: bool = False,
) -> dict:
    """Metrics, cross-view consistency (model and ground truth) and timing over ``source``."""
    if dataset not in DATASET_PROTOCOL:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASET_PROTOCOL)}")
    if gt not in ("dense", "sparse"):
        raise ValueError(f"gt must be 'dense' or 'sparse', got {gt!r}")
    config = EvalConfig.for_dataset(DATASET_PROTOCOL[dataset], max_depth=max_depth)
    count = len(source) if max_frames is None else min(len(source), max_frames)
    if count == 0:
        raise ValueError("evaluation source is empty")
    first = source[0]
    accumulator = MetricAccumulator(first.camera_names, config)
    consistency = None
    model_cv, gt_cv = [], []
    seconds = 0.0
    for i in tqdm(range(count), desc="eval", disable=not progress, leave=False):
        sample = source[i]
        truth = sample.depth if gt == "dense" else sample.sparse_depth
        if truth is None:
            raise ValueError(
                f"frame {sample.sequence}/{sample.frame_index} has no dense depth; use --gt sparse"
            )
        t0 = time.perf_counter()
        pred = predictor.predict(sample)
        seconds += time.perf_counter() - t0
        accumulator.add(pred, truth)
        if consistency is None:
            H, W = sample.image_size
            pairs = rig_from_calibration(sample.K, sample.cam2ego, H, W).adjacent
            consistency = CrossViewConsistency(sample.K, sample.cam2ego, pairs, H, W, 0.5, config.max_depth)
        model_cv.append(consistency(pred))
        if sample.depth is not None:
            gt_cv.append(consistency(sample.depth))
    result = accumulator.result()
    result.update(
        {
            "model": predictor.name,
            "dataset": dataset,
            "ground_truth": gt,
            "frames": count,
            "cross_view": _pool(model_cv),
            "cross_view_ground_truth": _pool(gt_cv) if gt_cv else None,
            "seconds_per_frame": seconds / count,
        }
    )
    return result


def _pool(results: list) -> dict:
    """Pixel-weighted mean of per-frame mean disagreement, and the mean of per-frame medians."""
    counts = np.array([r.count for r in results], dtype=np.float64)
    means = np.array([r.abs_rel if r.count else 0.0 for r in results])
    medians = [r.median_abs_rel for r in results if r.count]
    return {
        "abs_rel": float((counts * means).sum() / counts.sum()) if counts.sum() else float("nan"),
        "median_abs_rel": float(np.mean(medians)) if medians else float("nan"),
        "pixels": int(counts.sum()),
    }


def build_predictor(args: argparse.Namespace, num_cameras: int) -> Predictor:
    if args.model:
        return StudentPredictor(args.model, num_cameras, args.threads)
    from fsmde_ros.model.config import load_profile

    profile = load_profile(args.profile)
    teacher = build_teacher({"type": args.teacher_type, "path": args.teacher})
    return TeacherPredictor(
        teacher, args.align, profile.input_height, profile.input_width, profile.min_depth, profile.max_depth
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fsmde-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="student .safetensors (torch) or .onnx (ONNX Runtime CPU)")
    what.add_argument("--teacher", help="teacher path (see --teacher-type)")
    parser.add_argument("--teacher-type", default="synth", choices=("synth", "dav2", "onnx"))
    parser.add_argument("--align", default="lstsq", choices=("median", "lstsq"), help="teacher alignment")
    parser.add_argument("--profile", default="cpu", help="student profile whose input size the teacher uses")
    parser.add_argument("--dataset", default="synth", choices=sorted(DATASET_PROTOCOL))
    parser.add_argument("--root", default="data/synth", help="dataset root")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--gt",
        default="dense",
        choices=("dense", "sparse"),
        help="ground truth: dense depth (SynthSurround) or sparse LiDAR",
    )
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--max-depth", type=float, help="override the dataset's depth cap")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    source = open_source({"dataset": args.dataset, "root": args.root, "split": args.split})
    predictor = build_predictor(args, source[0].num_cameras)
    result = evaluate(
        predictor,
        source,
        args.dataset,
        args.gt,
        args.max_frames,
        args.max_depth,
        progress=sys.stderr.isatty(),
    )
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    mean, cv, nan = result["mean"], result["cross_view"], float("nan")
    print(
        f"{result['model']}: AbsRel {mean.get('abs_rel', nan):.4f}  RMSE {mean.get('rmse', nan):.3f}  "
        f"d1 {mean.get('a1', nan):.4f}  cross-view AbsRel {cv['abs_rel']:.4f} over {result['frames']} frames"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
