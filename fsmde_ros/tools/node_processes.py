"""Process orchestration shared by ``fsmde-demo`` and ``fsmde-bench node``: the node, the bag player
and the recorder as separate processes on the loopback-only DDS profile and a private ROS domain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fsmde_ros import ros_env
from fsmde_ros.params import default_config_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "models" / "student_cpu.onnx"


class ProcessError(RuntimeError):
    """A child process failed or did not get ready; the message quotes its log."""


class RosProcesses:
    """Starts ``python -m MODULE`` children on one leased ROS domain, logs to files, stops them cleanly."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.lease = ros_env.DomainLease()
        self.env = self.lease.env()
        self.env["PYTHONUNBUFFERED"] = "1"
        self.children: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, module: str, *args: str) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, "-m", module, *args], env=self.env, stdout=out,
                                       stderr=subprocess.STDOUT, cwd=os.getcwd())
        self.children.append((name, process, log))
        return process

    def log_of(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text()

    def wait_for_line(self, name: str, text: str, timeout_s: float) -> None:
        """Wait until child ``name`` logs ``text``; ProcessError if it exits or the time runs out."""
        process = next(p for n, p, _ in self.children if n == name)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_of(name):
                return
            if process.poll() is not None:
                raise ProcessError(f"{name} exited with {process.returncode}:\n{self.log_of(name)[-3000:]}")
            time.sleep(0.1)
        raise ProcessError(f"{name} did not log {text!r} within {timeout_s} s:\n{self.log_of(name)[-3000:]}")

    def wait(self, name: str, timeout_s: float) -> int:
        process = next(p for n, p, _ in self.children if n == name)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ProcessError(f"{name} still running after {timeout_s} s:\n"
                               f"{self.log_of(name)[-3000:]}") from exc

    def stop(self, name: str, timeout_s: float = 20.0) -> int:
        """SIGINT (the node writes its statistics, the recorder closes its bag); kill after the timeout."""
        process = next(p for n, p, _ in self.children if n == name)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def close(self) -> None:
        for name, process, _ in reversed(self.children):
            if process.poll() is None:
                self.stop(name, 10.0)
        self.lease.release()

    def __enter__(self) -> RosProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_node_config(path: Path, model: Path, backend: str, threads: int, **sections: dict) -> Path:
    """The shipped node configuration with the model, backend, threads and section overrides."""
    data = yaml.safe_load(default_config_path().read_text())
    data["rig"] = str((default_config_path().parent / data["rig"]).resolve())
    data["model"].update(path=str(Path(model).resolve()), backend=backend, threads=threads)
    for name, values in sections.items():
        data[name].update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def ensure_synth_bag(path: Path, frames: int, seed: int | None = None) -> Path:
    """A SynthSurround sequence bag (``fsmde-synth bag``) at ``path``, made once and then reused."""
    if (path / "metadata.yaml").is_file():
        return path
    if path.exists():
        raise ProcessError(f"{path}: exists but is not a finished bag; remove it")
    args = [sys.executable, "-m", "fsmde_ros.synth.cli", "bag", "--out", str(path), "--frames", str(frames)]
    if seed is not None:
        args += ["--seed", str(seed)]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProcessError(f"fsmde-synth bag failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return path


def ensure_model(model: Path | None, work_dir: Path) -> tuple[Path, str]:
    """The model to run and a note for the user: the given one, the shipped one, or else an untrained
    ``cpu``-profile student exported to ``work_dir`` (right size and speed, meaningless depth)."""
    if model is not None:
        if not Path(model).is_file():
            raise ProcessError(f"{model}: model file not found")
        return Path(model), f"model {model}"
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, f"shipped model {DEFAULT_MODEL.relative_to(REPO_ROOT)}"
    from fsmde_ros.model.onnx_export import export_onnx
    from fsmde_ros.model.student import build_student

    untrained = work_dir / "student_cpu_untrained.onnx"  # exported afresh: always today's architecture
    export_onnx(build_student("cpu", seed=0), untrained, check_parity=False)
    return untrained, (f"NOTE: {DEFAULT_MODEL.relative_to(REPO_ROOT)} is not there yet; running an UNTRAINED "
                       f"cpu-profile student ({untrained}): timings are real, depth values are not")
