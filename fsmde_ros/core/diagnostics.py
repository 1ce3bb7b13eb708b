"""Diagnostics bookkeeping, ROS-free: rates, stage latencies, drops by reason, health statuses.

The node turns the ``Status`` list of ``NodeStats.report`` into ``diagnostic_msgs/DiagnosticArray``
once a second; ``NodeStats.snapshot`` is the same content as JSON-ready numbers (benchmarks).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from fsmde_ros.core.health import PairHealth
from fsmde_ros.core.sync import SyncStats

OK, WARN, ERROR = 0, 1, 2
"""diagnostic_msgs/DiagnosticStatus levels."""

STAGES = ("sync_wait", "queue", "preprocess", "inference", "postprocess", "fusion", "publish", "end_to_end")
"""Timed stages of a set. ``sync_wait``: first to last image of the set received; ``queue``: last image
received to the worker starting on the set; ``end_to_end``: last image received to the cloud published."""


@dataclass
class Status:
    """One diagnostic status (name, level, message, key/value pairs)."""

    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)
    hardware_id: str = ""


class RateMeter:
    """Event rate over the last ``window_s`` seconds (live) and over the whole run (``mean_hz``)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.count = 0
        self._first = self._last = 0.0

    def tick(self, now: float) -> None:
        if not self.count:
            self._first = now
        self.count += 1
        self._last = now
        self._times.append(now)
        self._trim(now)

    @property
    def mean_hz(self) -> float:
        """Events per second between the first and the last event."""
        span = self._last - self._first
        return (self.count - 1) / span if self.count > 1 and span > 0 else 0.0

    def hz(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()


class LatencyWindow:
    """The last ``size`` durations of one stage, summarised as median / p99 / mean milliseconds."""

    def __init__(self, size: int = 600) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self.total = 0

    def add(self, seconds: float) -> None:
        self._values.append(seconds)
        self.total += 1

    def summary_ms(self) -> dict[str, float]:
        if not self._values:
            return {"median": float("nan"), "p99": float("nan"), "mean": float("nan"), "count": 0}
        v = np.fromiter(self._values, dtype=np.float64) * 1e3
        return {"median": float(np.median(v)), "p99": float(np.percentile(v, 99)), "mean": float(v.mean()),
                "count": len(v)}


class NodeStats:
    """Everything the node reports, updated from the callbacks and the worker (thread-safe)."""

    def __init__(self, camera_names: list[str], node_name: str = "surround_depth",
                 window_s: float = 5.0) -> None:
        self.names = list(camera_names)
        self.node_name = node_name
        self.backend = "none"
        self.backend_error = ""
        self.inputs = [RateMeter(window_s) for _ in self.names]
        self.output = RateMeter(window_s)
        self.stages = {s: LatencyWindow() for s in STAGES}
        self.drops: Counter = Counter()
        self.last_problem = ""
        self.published_sets = 0
        self.partial_published = 0
        self.consistency: list[PairHealth] = []
        self._lock = threading.Lock()

    def input_received(self, camera: int, now: float) -> None:
        with self._lock:
            self.inputs[camera].tick(now)

    def output_published(self, now: float, partial: bool) -> None:
        with self._lock:
            self.output.tick(now)
            self.published_sets += 1
            self.partial_published += int(partial)

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self.stages[name].add(seconds)

    def drop(self, reason: str, problem: str = "", count: int = 1) -> None:
        """Count ``count`` drops under ``reason``; ``problem`` (a log-worthy line) is kept for diagnostics."""
        with self._lock:
            self.drops[reason] += count
            if problem:
                self.last_problem = problem

    def set_consistency(self, pairs: list[PairHealth]) -> None:
        with self._lock:
            self.consistency = pairs

    def all_drops(self, sync: SyncStats) -> dict[str, int]:
        """Node drops merged with the synchronizer's, by reason."""
        with self._lock:
            merged = Counter(self.drops)
        merged.update(sync.dropped)
        return {k: int(v) for k, v in sorted(merged.items()) if v}

    def snapshot(self, now: float, sync: SyncStats) -> dict:
        """JSON-ready numbers: rates (Hz), stage latencies (ms), drops by reason, consistency per pair."""
        with self._lock:
            inputs = {n: m.hz(now) for n, m in zip(self.names, self.inputs, strict=True)}
            mean_inputs = {n: m.mean_hz for n, m in zip(self.names, self.inputs, strict=True)}
            stages = {s: w.summary_ms() for s, w in self.stages.items()}
            output_hz, mean_output_hz = self.output.hz(now), self.output.mean_hz
            consistency = {f"{p.names[0]}|{p.names[1]}": p.median_abs_rel for p in self.consistency}
            published, partial = self.published_sets, self.partial_published
        return {
            "backend": self.backend, "input_hz": inputs, "output_hz": output_hz,
            "mean_input_hz": mean_inputs, "mean_output_hz": mean_output_hz, "stages_ms": stages,
            "published_sets": published, "partial_sets_published": partial,
            "synced_sets": sync.complete_sets + sync.partial_sets, "sync_resets": sync.resets,
            "drops": self.all_drops(sync),
            "missing_by_camera": {self.names[c]: int(n) for c, n in sorted(sync.missing.items())},
            "consistency_median_abs_rel": consistency,
        }

    def report(self, now: float, sync: SyncStats) -> list[Status]:
        """Statuses for ``/diagnostics``: pipeline, inputs, and cross-view consistency."""
        snap = self.snapshot(now, sync)
        prefix = f"{self.node_name}: "
        values = {"backend": self.backend, "output_hz": f"{snap['output_hz']:.2f}",
                  "published_sets": str(snap["published_sets"]),
                  "partial_sets_published": str(snap["partial_sets_published"]),
                  "sync_resets": str(snap["sync_resets"])}
        for stage, s in snap["stages_ms"].items():
            values[f"latency_{stage}_ms"] = f"median {s['median']:.2f} p99 {s['p99']:.2f}"
        for reason, n in snap["drops"].items():
            values[f"drops_{reason}"] = str(n)
        if self.last_problem:
            values["last_problem"] = self.last_problem
        inputs_hz = snap["input_hz"]
        receiving = any(hz > 0 for hz in inputs_hz.values())
        if self.backend_error:
            level, message = ERROR, f"backend unavailable: {self.backend_error}"
        elif receiving and snap["output_hz"] == 0:
            level, message = WARN, "receiving images but publishing no depth"
        elif not receiving:
            level, message = WARN, "no input images"
        else:
            level, message = OK, f"{snap['output_hz']:.1f} Hz"
        statuses = [Status(prefix + "pipeline", level, message, values, self.node_name)]
        silent = [n for n, hz in inputs_hz.items() if hz == 0]
        in_level = WARN if silent and receiving else OK if receiving else WARN
        in_message = f"silent: {', '.join(silent)}" if silent else "all cameras receiving"
        statuses.append(Status(prefix + "inputs", in_level, in_message,
                               {f"{n}_hz": f"{hz:.2f}" for n, hz in inputs_hz.items()}
                               | {f"{n}_missing_sets": str(v) for n, v in snap["missing_by_camera"].items()},
                               self.node_name))
        with self._lock:
            pairs = list(self.consistency)
        if pairs:
            worst = max(pairs, key=lambda p: p.level)
            statuses.append(Status(
                prefix + "cross-view consistency", worst.level,
                "adjacent views agree" if worst.level == OK else
                f"{worst.names[0]} vs {worst.names[1]}: median disagreement {worst.median_abs_rel:.3f}",
                {f"{p.names[0]}|{p.names[1]}": f"{p.median_abs_rel:.4f} ({p.count} px)" for p in pairs},
                self.node_name))
        return statuses
