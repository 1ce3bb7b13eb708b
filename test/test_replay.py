"""Replay a bag end to end over real ROS 2: fsmde-replay -> surround_depth_node (tiny ONNX student,
ONNX Runtime) -> fsmde-record to mcap, each its own process on the loopback profile and a private domain."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fsmde_ros import ros_env
from fsmde_ros.bagio import deserialize, read_messages, write_surround_bag
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.params import default_config_path
from fsmde_ros.rig import default_rig_path, load_rig

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")

MS = 1_000_000
FRAMES = 6
SRC_W, SRC_H = 192, 108


def tiny_model(path: Path) -> Path:
    from fsmde_ros.model.onnx_export import export_onnx
    from fsmde_ros.model.student import build_student

    export_onnx(build_student("tiny", seed=0), path, check_parity=False)
    return path


def surround_bag(path: Path, storage: str = "mcap") -> tuple[Path, list[list[int]]]:
    """FRAMES sets at 12 Hz, cameras firing 8 ms apart, images SRC_W x SRC_H."""
    rig = load_rig(default_rig_path()).resized(SRC_W, SRC_H)
    rng = np.random.default_rng(0)
    stamps, samples = [], []
    for f in range(FRAMES):
        s = np.array([1_000 * 10**9 + f * 83 * MS + i * 8 * MS for i in range(6)], dtype=np.int64)
        stamps.append(s.tolist())
        samples.append(SurroundSample(
            images=rng.integers(0, 256, (6, SRC_H, SRC_W, 3), dtype=np.uint8), K=rig.intrinsics(),
            cam2ego=rig.extrinsics(), sparse_depth=np.full((6, SRC_H, SRC_W), np.nan, np.float32),
            camera_names=tuple(rig.names), stamps_ns=s, frame_index=f))
    write_surround_bag(path, samples, storage=storage)
    return path, stamps


def wait_line(process: subprocess.Popen, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} within {timeout} s; got {''.join(seen)[-2000:]}")


def test_bag_replayed_through_the_node_is_recorded_to_mcap(tmp_path):
    model = tiny_model(tmp_path / "tiny.onnx")
    bag, stamps = surround_bag(tmp_path / "in_bag")
    config = yaml.safe_load(default_config_path().read_text())
    config["rig"] = str(default_config_path().parent / config["rig"])
    config["model"].update(path=str(model), backend="ort-cpu", threads=1)
    config_path = tmp_path / "node.yaml"
    config_path.write_text(yaml.safe_dump(config))
    stats_file = tmp_path / "stats.json"
    out = tmp_path / "out_bag"
    topics = ["/CAM_FRONT/depth", "/CAM_BACK/depth/camera_info", "/points"]
    processes = []
    with ros_env.DomainLease() as lease:
        env = lease.env()

        def start(*args):
            p = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            processes.append(p)
            return p

        try:
            node = start("fsmde_ros.node", "--ros-args", "-p", f"config:={config_path}",
                         "-p", f"stats_file:={stats_file}")
            wait_line(node, "backend onnxruntime-cpu", 60)
            record = start("fsmde_ros.tools.record", str(out), "--topics", *topics, "--duration", "60")
            wait_line(record, "fsmde-record: recording", 60)
            replay = start("fsmde_ros.tools.replay", str(bag), "--wait-for")
            assert replay.wait(60) == 0, replay.stdout.read()
            assert "published 72 messages" in replay.stdout.read()
            time.sleep(2.0)  # the last set through the node and into the recorder
            record.send_signal(signal.SIGINT)
            assert record.wait(20) == 0, record.stdout.read()
            node.send_signal(signal.SIGINT)
            assert node.wait(20) == 0, node.stdout.read()
        finally:
            for p in processes:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    stats = json.loads(stats_file.read_text())
    assert stats["backend"] == "onnxruntime-cpu" and stats["published_sets"] >= FRAMES - 2
    messages = [(m.topic, deserialize(m)) for m in read_messages(out)]
    depth = [msg for topic, msg in messages if topic == "/CAM_FRONT/depth"]
    infos = [msg for topic, msg in messages if topic == "/CAM_BACK/depth/camera_info"]
    clouds = [msg for topic, msg in messages if topic == "/points"]
    assert len(depth) >= FRAMES - 2 and len(infos) == len(depth) and len(clouds) == len(depth)
    front_stamps = {s[0] for s in stamps}
    set_stamps = {max(s) for s in stamps}
    for d in depth:
        assert (d.header.frame_id, d.width, d.height, d.encoding) == ("CAM_FRONT", 96, 64, "32FC1")
        assert d.header.stamp.sec * 10**9 + d.header.stamp.nanosec in front_stamps
        values = np.frombuffer(bytes(d.data), np.float32)
        assert np.isfinite(values).all() and values.min() >= 0.5 and values.max() <= 80.0
    for info in infos:
        assert info.header.frame_id == "CAM_BACK" and (info.width, info.height) == (96, 64)
    for c in clouds:
        assert c.header.frame_id == "base_link" and c.point_step == 24 and c.width > 0
        assert c.header.stamp.sec * 10**9 + c.header.stamp.nanosec in set_stamps


@pytest.fixture
def ros_node():
    import rclpy

    with ros_env.DomainLease() as lease:
        ros_env.apply(lease.domain_id)
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=lease.domain_id)
        node = rclpy.create_node("replay_probe", context=context)
        yield node
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_player_keeps_timing_loops_and_publishes_clock(tmp_path, ros_node, storage):
    import threading

    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from fsmde_ros.tools.replay import BagPlayer

    bag, stamps = surround_bag(tmp_path / "bag", storage)
    topic = "/cameras/CAM_FRONT/image_raw"
    player = BagPlayer(ros_node, bag, rate=2.0, loops=2, clock=True, topics=[topic])
    clocks, images = [], []

    def ns(t):
        return t.sec * 10**9 + t.nanosec

    ros_node.create_subscription(Clock, "/clock", lambda m: clocks.append(ns(m.clock)), 100)
    ros_node.create_subscription(Image, topic, lambda m: images.append(ns(m.header.stamp)), 100)
    executor = SingleThreadedExecutor(context=ros_node.context)
    executor.add_node(ros_node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    assert player.wait_for_subscribers([topic], 30)
    stats = player.play()
    deadline = time.monotonic() + 10
    while len(images) < 2 * FRAMES and time.monotonic() < deadline:
        time.sleep(0.05)
    executor.shutdown()
    spinner.join(5)
    assert stats.loops == 2 and stats.published[topic] == 2 * FRAMES
    # Two passes of the bag at twice its speed: about 5 * 83 ms / 2 each.
    assert 0.3 < stats.wall_s < 5.0
    assert images[:FRAMES] == [s[0] for s in stamps] == images[FRAMES:]
    info = player.info
    assert clocks and all(info.start_ns <= c <= info.end_ns for c in clocks)


def test_player_and_recorder_refuse_bad_input(tmp_path, ros_node):
    from fsmde_ros.bagio import BagError, BagWriter
    from fsmde_ros.tools.record import Recorder
    from fsmde_ros.tools.replay import BagPlayer

    with pytest.raises(BagError, match="bag not found"):
        BagPlayer(ros_node, tmp_path / "nope")
    bag, _ = surround_bag(tmp_path / "bag")
    with pytest.raises(BagError, match=r"no topic\(s\) \['/x'\]"):
        BagPlayer(ros_node, bag, topics=["/x"])
    with pytest.raises(ValueError, match="rate must be > 0"):
        BagPlayer(ros_node, bag, rate=0.0)
    with pytest.raises(ValueError, match="loops must be >= 0"):
        BagPlayer(ros_node, bag, loops=-1)
    with BagWriter(tmp_path / "out") as writer, pytest.raises(BagError, match=r"\['/nothing'\] not found"):
        Recorder(ros_node, writer, ["/nothing"], discovery_timeout_s=0.3)
