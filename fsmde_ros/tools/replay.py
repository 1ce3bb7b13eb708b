"""``fsmde-replay BAG``: play a rosbag2 (mcap or sqlite3) over ROS 2 with its original timing.

The rosbag route on machines without ``ros2 bag``: messages are read with the ``rosbags`` library
(``fsmde_ros.bagio``) and published as the recorded CDR bytes (no deserialization), each at its
recorded log time divided by ``--rate``. ``--loop`` starts over at the end until interrupted,
``--loops N`` plays N passes (header stamps then jump
back, which resets the node's sync); ``--clock`` publishes ``/clock`` with the bag time (run the
node with ``use_sim_time:=true``). DDS settings come from the environment (``fsmde_ros.ros_env``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fsmde_ros.bagio import BagError, bag_info, read_messages
from fsmde_ros.conventions import NS_PER_S

CLOCK_PERIOD_S = 0.01


def message_class(msgtype: str) -> type:
    """The rclpy message class of a ROS type name ``pkg/msg/Type``."""
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not available to rclpy here ({exc})") from exc


@dataclass
class PlayStats:
    """What a replay published: messages per topic, loops, wall time, worst lateness."""

    published: Counter = field(default_factory=Counter)
    loops: int = 0
    wall_s: float = 0.0
    max_late_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.published.values())


class BagPlayer:
    """Publishes a bag's messages from ``node`` with the recorded timing scaled by ``rate``."""

    def __init__(self, node, bag: str | Path, rate: float = 1.0, loops: int = 1, clock: bool = False,
                 topics: list[str] | None = None, qos_depth: int = 10) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if loops < 0:
            raise ValueError(f"loops must be >= 0 (0 = until stopped), got {loops}")
        self.node, self.bag, self.rate, self.loops, self.clock = node, Path(bag), rate, loops, clock
        self.info = bag_info(self.bag)
        wanted = self.info.topics if not topics else {t: self.info.topics.get(t) for t in topics}
        missing = [t for t, v in wanted.items() if v is None]
        if missing:
            raise BagError(f"{self.bag}: no topic(s) {missing}; it has {sorted(self.info.topics)}")
        self.topics = sorted(wanted)
        self.publishers = {t: node.create_publisher(message_class(wanted[t][0]), t, qos_depth)
                           for t in self.topics}
        self.clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = node.create_publisher(Clock, "/clock", 10)

    def wait_for_subscribers(self, topics: list[str], timeout_s: float) -> bool:
        """Wait until each of ``topics`` has a subscriber (discovery), so the first messages are not lost."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.05)
        return False

    def _publish_clock(self, bag_ns: int) -> None:
        from rosgraph_msgs.msg import Clock

        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), NS_PER_S)
        self.clock_pub.publish(msg)

    def play(self, should_stop=lambda: False) -> PlayStats:
        """Play ``loops`` passes (0: until ``should_stop()``), stopping early on ``should_stop()`` or
        Ctrl-C; returns what was published."""
        stats = PlayStats()
        started = time.monotonic()
        with contextlib.suppress(KeyboardInterrupt):
            self._play(stats, should_stop)
        stats.wall_s = time.monotonic() - started
        return stats

    def _play(self, stats: PlayStats, should_stop) -> None:
        while True:
            wall0 = time.monotonic()
            bag0 = self.info.start_ns
            last_clock = -1.0
            for message in read_messages(self.bag, self.topics):
                target = wall0 + (message.stamp_ns - bag0) / NS_PER_S / self.rate
                while True:
                    now = time.monotonic()
                    if self.clock_pub is not None and now - last_clock >= CLOCK_PERIOD_S:
                        # bag time now, never past the message about to go out (a late player holds it)
                        bag_now = bag0 + (now - wall0) * self.rate * NS_PER_S
                        self._publish_clock(min(bag_now, message.stamp_ns))
                        last_clock = now
                    if now >= target or should_stop():
                        break
                    time.sleep(min(target - now, CLOCK_PERIOD_S))
                if should_stop():
                    return
                stats.max_late_s = max(stats.max_late_s, time.monotonic() - target)
                self.publishers[message.topic].publish(message.data)
                stats.published[message.topic] += 1
            stats.loops += 1
            if stats.loops == self.loops or should_stop():
                return


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (mcap or sqlite3) or a single .mcap/.db3")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    passes = parser.add_mutually_exclusive_group()
    passes.add_argument("--loop", action="store_true", help="start over at the end, until interrupted")
    passes.add_argument("--loops", type=int, default=1, help="passes through the bag (default 1)")
    parser.add_argument("--clock", action="store_true", help="publish /clock with the bag time")
    parser.add_argument("--topics", nargs="+", help="play only these topics (default: all)")
    parser.add_argument("--wait-for", nargs="*", default=None, metavar="TOPIC",
                        help="wait until these topics have subscribers before playing (no TOPIC: all)")
    parser.add_argument("--wait-timeout", type=float, default=30.0, help="seconds to wait for subscribers")
    parser.add_argument("--qos-depth", type=int, default=10, help="publisher queue depth (reliable)")


def run(args: argparse.Namespace) -> PlayStats:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init()
    node = rclpy.create_node("fsmde_replay")
    try:
        player = BagPlayer(node, args.bag, args.rate, 0 if args.loop else args.loops, args.clock, args.topics,
                           args.qos_depth)
        print(f"fsmde-replay: {args.bag}: {player.info.message_count} messages on {len(player.topics)} "
              f"topics, {player.info.duration_s:.2f} s at rate {args.rate}", flush=True)
        if args.wait_for is not None:
            topics = args.wait_for or player.topics
            if not player.wait_for_subscribers(topics, args.wait_timeout):
                print(f"fsmde-replay: no subscriber on some of {topics} after {args.wait_timeout} s; "
                      "playing anyway", file=sys.stderr, flush=True)
        stats = player.play(lambda: not rclpy.ok())
        print(f"fsmde-replay: published {stats.total} messages in {stats.wall_s:.2f} s ({stats.loops} "
              f"loop(s), worst lateness {stats.max_late_s * 1e3:.1f} ms)", flush=True)
        return stats
    except (KeyboardInterrupt, ExternalShutdownException):
        return PlayStats()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fsmde-replay", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except (BagError, ValueError) as exc:
        print(f"fsmde-replay: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
