"""Size and speed of a network for the results table: parameters, GFLOPs and ONNX Runtime CPU latency.

FLOPs are counted by ``torch.utils.flop_counter`` (2 per multiply-accumulate) for one N-camera set.
Latency is ONNX Runtime on the CPU (``threads`` intra-op threads) for one batched N-camera call:
median and 90th percentile over ``runs`` calls after ``warmup`` calls.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_gflops(model: torch.nn.Module, example: torch.Tensor) -> float:
    """GFLOPs of one forward pass on ``example``."""
    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return counter.get_total_flops() / 1e9


def ort_latency_ms(
    onnx_path: str | Path, example: np.ndarray, threads: int = 2, warmup: int = 3, runs: int = 15
) -> dict[str, float]:
    """Median and p90 milliseconds of ``session.run`` on ``example`` with ``threads`` CPU threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: example}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "threads": threads,
        "runs": runs,
    }


def profile_student(checkpoint: str | Path, threads: int = 2, runs: int = 15) -> dict:
    """Parameters, GFLOPs and ORT latency of a student checkpoint for its profile's N x H x W set."""
    from fsmde_ros.model.checkpoint import load_student
    from fsmde_ros.model.onnx_export import export_onnx
    from fsmde_ros.model.student import DeployStudent

    model, _ = load_student(checkpoint)
    c = model.config
    images = torch.randint(
        0, 256, c.input_shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "student.onnx", check_parity=False).path
        latency = ort_latency_ms(path, images.numpy(), threads, runs=runs)
    return {
        "parameters": count_parameters(model),
        "gflops": count_gflops(DeployStudent(model), images),
        "ort_cpu": latency,
        "input": list(c.input_shape),
    }


def profile_teacher(
    checkpoint: str | Path, input_shape: tuple[int, int, int, int], threads: int = 2, runs: int = 15
) -> dict:
    """The same figures for a SynthSurround teacher checkpoint on an N x H x W x 3 uint8 set."""
    from fsmde_ros.distill.teachers import SynthTeacher

    model = SynthTeacher(checkpoint).model.eval()
    images = torch.randint(0, 256, input_shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "teacher.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (images,),
                str(path),
                input_names=["images"],
                output_names=["disparity"],
                opset_version=17,
                dynamo=False,
            )
        latency = ort_latency_ms(path, images.numpy(), threads, runs=runs)
    return {
        "parameters": count_parameters(model),
        "gflops": count_gflops(model, images),
        "ort_cpu": latency,
        "input": list(input_shape),
    }
