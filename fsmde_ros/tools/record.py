"""``fsmde-record OUT --topics ...``: record ROS 2 topics to an mcap rosbag2 (viewable in Foxglove).

The rosbag route on machines without ``ros2 bag``: each topic's type is found by discovery, its
messages are received as CDR bytes (no deserialization) and written with ``fsmde_ros.bagio`` at
their receive time on the node clock (bag time with ``--use-sim-time``). Stops on Ctrl-C / SIGTERM,
after ``--duration`` seconds or ``--count`` messages; the bag is always closed properly.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from fsmde_ros.bagio import BagError, BagWriter
from fsmde_ros.tools.replay import message_class


class Recorder:
    """Subscribes ``topics`` raw on ``node`` and writes every message to an open ``BagWriter``."""

    def __init__(self, node, writer: BagWriter, topics: list[str], discovery_timeout_s: float = 10.0,
                 qos_depth: int = 50) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.node, self.writer = node, writer
        self.counts: Counter = Counter()
        types = self._discover(topics, discovery_timeout_s)
        qos = QoSProfile(depth=qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.subscriptions = []
        for topic in topics:
            callback = self._writer_for(topic, types[topic])
            self.subscriptions.append(
                node.create_subscription(message_class(types[topic]), topic, callback, qos, raw=True))
        self._wait_matched(discovery_timeout_s)

    def _wait_matched(self, timeout_s: float) -> None:
        """Wait until every subscription is matched with a publisher, so the first messages are kept."""
        deadline = time.monotonic() + timeout_s
        while any(s.get_publisher_count() == 0 for s in self.subscriptions):
            if time.monotonic() > deadline:
                unmatched = [s.topic_name for s in self.subscriptions if s.get_publisher_count() == 0]
                raise BagError(f"{self.writer.path}: no publisher matched {unmatched} within {timeout_s} s "
                               "(incompatible QoS?)")
            time.sleep(0.02)

    def _discover(self, topics: list[str], timeout_s: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while True:  # the graph cache fills in the background, no spinning needed
            known = {name: types[0] for name, types in self.node.get_topic_names_and_types() if types}
            if all(t in known for t in topics) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        missing = [t for t in topics if t not in known]
        if missing:
            raise BagError(f"{self.writer.path}: topic(s) {missing} not found within {timeout_s} s")
        return {t: known[t] for t in topics}

    def _writer_for(self, topic: str, msgtype: str):
        def callback(data: bytes) -> None:
            self.writer.write_raw(topic, msgtype, self.node.get_clock().now().nanoseconds, data)
            self.counts[topic] += 1
        return callback

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="new rosbag2 directory to write")
    parser.add_argument("--topics", nargs="+", required=True, help="topics to record")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0 = never)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages (0 = never)")
    parser.add_argument("--discovery-timeout", type=float, default=10.0,
                        help="seconds to wait for the topics to appear")
    parser.add_argument("--use-sim-time", action="store_true", help="log times from /clock")


def run(args: argparse.Namespace) -> Counter:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.parameter import Parameter

    rclpy.init()
    node = rclpy.create_node("fsmde_record", parameter_overrides=[
        Parameter("use_sim_time", Parameter.Type.BOOL, args.use_sim_time)])
    try:
        with BagWriter(args.out, args.storage) as writer:
            recorder = Recorder(node, writer, args.topics, args.discovery_timeout)
            print(f"fsmde-record: recording {args.topics} to {args.out}", flush=True)
            started = time.monotonic()
            try:
                while rclpy.ok():
                    rclpy.spin_once(node, timeout_sec=0.1)
                    if args.duration and time.monotonic() - started >= args.duration:
                        break
                    if args.count and recorder.total >= args.count:
                        break
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
        print(f"fsmde-record: wrote {recorder.total} messages to {args.out} "
              f"({', '.join(f'{t}: {n}' for t, n in sorted(recorder.counts.items()))})", flush=True)
        return recorder.counts
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fsmde-record", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except BagError as exc:
        print(f"fsmde-record: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
