"""Approximate-time synchronization of N camera streams, with every discarded message counted.

Algorithm (the semantics of message_filters' ``ApproximateTimeSynchronizer``, in message time):

1. Each camera has a queue of at most ``queue_size`` pending messages ordered by stamp; when a queue
   overflows its oldest message is discarded (``queue_overflow``).
2. When a message with stamp t arrives on camera i, for every other camera the pending message
   closest in time to t is chosen. If every camera has one and the spread of the N stamps
   (max - min) is at most ``slop``, the set is emitted. Cameras that fire tens of ms apart in a
   round (rolling rigs) sync as long as ``slop`` covers the spread of one round.
3. After emitting, every pending message not newer than the set's message of its camera is
   removed; those older than the chosen one are discarded as ``superseded``.
4. A message is refused when its stamp is not newer than the last emitted set's stamp of its
   camera (``stale``), equals a pending stamp of its camera (``duplicate``), or is older than the
   newest message of its camera by at most ``reset_jump`` (``out_of_order``). A jump back by more
   than ``reset_jump`` (a looping bag, a restarted player), or a step back on a camera while every
   other camera's latest message went back to within ``slop`` of it too (all streams restarted
   together: a loop shorter than ``reset_jump``; late messages of some cameras never trigger it),
   resets the synchronizer: pending messages are discarded as ``reset``, the message starts afresh.
5. Timeout (a silent camera never blocks the others): the synchronizer's clock is the newest stamp
   received on any camera. When the oldest pending message is older than that clock by more than
   ``timeout`` and no complete set formed, the cameras present within ``slop`` of it form a partial
   set: emitted when ``partial_sets`` is on (missing cameras left out) and at least
   ``min_partial_cameras`` are present, else discarded: ``camera_missing`` counts such sets,
   ``incomplete`` their messages, and ``SyncStats.missing`` counts the absences per camera.

Every reason except ``camera_missing`` counts messages.

Time runs on message stamps, so bags replayed at any rate and simulated time sync the same.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncedSet:
    """One synchronized set; ``items[i]`` is None for a camera missing from a partial set."""

    stamps_ns: list[int | None]
    items: list[Any]
    arrival_s: float  # monotonic time the last message of the set arrived
    first_arrival_s: float  # monotonic time the first message of the set arrived

    @property
    def complete(self) -> bool:
        return all(item is not None for item in self.items)

    @property
    def stamp_ns(self) -> int:
        """Reference stamp of the set: the newest image stamp in it."""
        return max(s for s in self.stamps_ns if s is not None)


@dataclass
class SyncStats:
    """Counts of emitted sets and of discarded messages by reason (and missing cameras by name)."""

    complete_sets: int = 0
    partial_sets: int = 0
    dropped: Counter = field(default_factory=Counter)
    missing: Counter = field(default_factory=Counter)
    resets: int = 0


class ApproximateTimeSync:
    """Approximate-time synchronizer of ``num_cameras`` streams (see the module docstring)."""

    def __init__(self, num_cameras: int, slop_ns: int, queue_size: int = 5, timeout_ns: int = 500_000_000,
                 partial_sets: bool = False, reset_jump_ns: int = 1_000_000_000,
                 min_partial_cameras: int = 1) -> None:
        if num_cameras < 1:
            raise ValueError(f"num_cameras must be >= 1, got {num_cameras}")
        if slop_ns < 0 or queue_size < 1 or timeout_ns <= 0 or reset_jump_ns <= 0:
            raise ValueError("slop_ns >= 0, queue_size >= 1, timeout_ns > 0 and reset_jump_ns > 0 required")
        self.num_cameras = num_cameras
        self.slop_ns = slop_ns
        self.queue_size = queue_size
        self.timeout_ns = timeout_ns
        self.partial_sets = partial_sets
        self.reset_jump_ns = reset_jump_ns
        self.min_partial_cameras = min_partial_cameras
        self.stats = SyncStats()
        self._clear()

    def _clear(self) -> None:
        self._stamps: list[list[int]] = [[] for _ in range(self.num_cameras)]
        self._items: list[list[tuple[Any, float]]] = [[] for _ in range(self.num_cameras)]
        self._newest: list[int | None] = [None] * self.num_cameras
        self._emitted: list[int | None] = [None] * self.num_cameras
        # Stamp of each camera's latest message when it was refused for going back in time, else None.
        self._went_back: list[int | None] = [None] * self.num_cameras
        self._clock: int | None = None

    def reset(self) -> None:
        """Forget every pending message (each counted as ``reset``) and the stamps seen so far."""
        self.stats.dropped["reset"] += sum(len(q) for q in self._stamps)
        self.stats.resets += 1
        self._clear()

    def pending(self) -> list[int]:
        """Number of pending messages per camera."""
        return [len(q) for q in self._stamps]

    def add(self, camera: int, stamp_ns: int, item: Any, arrival_s: float) -> list[SyncedSet]:
        """Offer one message; returns the sets (complete or partial) it completes, oldest first."""
        if not 0 <= camera < self.num_cameras:
            raise ValueError(f"camera index {camera} is not one of {self.num_cameras} cameras")
        newest = self._newest[camera]
        back = newest is not None and stamp_ns < newest
        together = all(b is not None and abs(b - stamp_ns) <= self.slop_ns
                       for c, b in enumerate(self._went_back) if c != camera)
        if back and (stamp_ns < newest - self.reset_jump_ns or together):
            self.reset()
            newest = None
        elif self._emitted[camera] is not None and stamp_ns <= self._emitted[camera]:
            return self._refuse(camera, "stale", stamp_ns if back else None)
        stamps = self._stamps[camera]
        pos = bisect.bisect_left(stamps, stamp_ns)
        if pos < len(stamps) and stamps[pos] == stamp_ns:
            return self._refuse(camera, "duplicate", None)
        if newest is not None and stamp_ns < newest:
            return self._refuse(camera, "out_of_order", stamp_ns)
        self._went_back[camera] = None
        stamps.insert(pos, stamp_ns)
        self._items[camera].insert(pos, (item, arrival_s))
        self._newest[camera] = stamp_ns
        if len(stamps) > self.queue_size:
            del stamps[0], self._items[camera][0]
            self.stats.dropped["queue_overflow"] += 1
        self._clock = stamp_ns if self._clock is None else max(self._clock, stamp_ns)
        out = []
        complete = self._complete_set(camera, stamp_ns)
        if complete is not None:
            out.append(self._emit(complete))
        out.extend(self._expire())
        return out

    def _refuse(self, camera: int, reason: str, went_back_to: int | None) -> list[SyncedSet]:
        self.stats.dropped[reason] += 1
        self._went_back[camera] = went_back_to
        return []

    def _closest(self, camera: int, stamp_ns: int) -> int | None:
        """Index of camera's pending message closest to ``stamp_ns`` within slop, or None."""
        stamps = self._stamps[camera]
        if not stamps:
            return None
        pos = bisect.bisect_left(stamps, stamp_ns)
        candidates = [p for p in (pos - 1, pos) if 0 <= p < len(stamps)]
        best = min(candidates, key=lambda p: abs(stamps[p] - stamp_ns))
        return best if abs(stamps[best] - stamp_ns) <= self.slop_ns else None

    def _complete_set(self, camera: int, stamp_ns: int) -> list[int | None] | None:
        chosen: list[int | None] = []
        for c in range(self.num_cameras):
            index = self._closest(c, stamp_ns)
            if index is None:
                return None
            chosen.append(index)
        picked = [self._stamps[c][i] for c, i in enumerate(chosen)]
        return chosen if max(picked) - min(picked) <= self.slop_ns else None

    def _emit(self, chosen: list[int | None]) -> SyncedSet:
        stamps: list[int | None] = []
        items: list[Any] = []
        arrival, first = 0.0, float("inf")
        for c, index in enumerate(chosen):
            if index is None:
                stamps.append(None)
                items.append(None)
                continue
            item, arrived = self._items[c][index]
            stamps.append(self._stamps[c][index])
            items.append(item)
            arrival, first = max(arrival, arrived), min(first, arrived)
            if index:
                self.stats.dropped["superseded"] += index
            del self._stamps[c][: index + 1], self._items[c][: index + 1]
            self._emitted[c] = stamps[-1]
        synced = SyncedSet(stamps, items, arrival, first)
        if synced.complete:
            self.stats.complete_sets += 1
        else:
            self.stats.partial_sets += 1
        return synced

    def _expire(self) -> list[SyncedSet]:
        """Partial sets (or drops) for pending messages older than the clock by more than the timeout."""
        out = []
        while True:
            heads = [(q[0], c) for c, q in enumerate(self._stamps) if q]
            if not heads:
                return out
            oldest, _ = min(heads)
            if self._clock - oldest <= self.timeout_ns:
                return out
            chosen = [self._closest(c, oldest) for c in range(self.num_cameras)]
            # Keep only members within slop of the oldest message, never newer ones that could still sync.
            chosen = [i if i is not None and self._stamps[c][i] - oldest <= self.slop_ns else None
                      for c, i in enumerate(chosen)]
            present = sum(i is not None for i in chosen)
            missing = [c for c, i in enumerate(chosen) if i is None]
            for c in missing:
                self.stats.missing[c] += 1
            if self.partial_sets and present >= self.min_partial_cameras:
                out.append(self._emit(chosen))
                continue
            self.stats.dropped["camera_missing"] += 1
            for c, index in enumerate(chosen):
                if index is not None:
                    self._emitted[c] = self._stamps[c][index]
                    if index:
                        self.stats.dropped["superseded"] += index
                    self.stats.dropped["incomplete"] += 1
                    del self._stamps[c][: index + 1], self._items[c][: index + 1]
