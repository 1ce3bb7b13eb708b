"""Inference off the subscription callbacks: one set in flight, one waiting, the latest wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestWinsWorker(Generic[T]):
    """A worker thread that runs ``process`` on submitted items, never holding more than two.

    ``submit`` puts an item in the single waiting slot; an item already waiting there is replaced
    and handed to ``on_replaced`` (counted as a ``backend_busy`` drop by the node). Exceptions of
    ``process`` go to ``on_error`` and the worker keeps running.
    """

    def __init__(self, process: Callable[[T], None], on_replaced: Callable[[T], None],
                 on_error: Callable[[BaseException], None], name: str = "fsmde-inference") -> None:
        self._process, self._on_replaced, self._on_error = process, on_replaced, on_error
        self._cond = threading.Condition()
        self._waiting: T | None = None
        self._busy = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Queue ``item`` as the next to process, replacing (and reporting) one that still waits."""
        with self._cond:
            replaced, self._waiting = self._waiting, item
            self._cond.notify()
        if replaced is not None:
            self._on_replaced(replaced)

    @property
    def in_flight(self) -> int:
        """Items being processed or waiting (0, 1 or 2)."""
        with self._cond:
            return int(self._busy) + int(self._waiting is not None)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight or waiting; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._waiting is None, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the item in flight, drop the waiting one, end the thread."""
        with self._cond:
            self._stopped = True
            self._waiting = None
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting is not None or self._stopped)
                if self._stopped:
                    return
                item, self._waiting, self._busy = self._waiting, None, True
            try:
                self._process(item)
            except Exception as exc:  # reported; one bad set must not stop the node
                self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
