"""The node over real ROS 2 (rclpy, loopback-only Fast DDS profile, a private ROS_DOMAIN_ID).

A camera-driver node publishes six image streams with CameraInfo (cameras firing 8 ms apart); the
surround depth node runs with a test-double backend whose depth is the ground plane of the rig, so
every value that comes back is known: stamps, frames, sizes, depth, intrinsics, and cloud points on
z = 0 in base_link within 1 mm. Then bad input of every kind: each is counted, the node keeps going.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_core_doubles import MODEL_H, MODEL_W, PlaneBackend, model_rig, plane_depth

from fsmde_ros import ros_env
from fsmde_ros.params import default_config_path, load_config

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

from fsmde_ros.node import SurroundDepthNode, byte_array  # noqa: E402

SRC_W, SRC_H = 320, 180
MS = 1_000_000
TIMEOUT = 60.0


class Harness:
    """Driver + listener nodes and the node under test, spun by one executor thread."""

    def __init__(self, context, node: SurroundDepthNode, compressed: bool = False) -> None:
        self.context, self.node, self.compressed = context, node, compressed
        self.rig = node.config.rig.resized(SRC_W, SRC_H)
        self.driver = rclpy.create_node("fake_cameras", context=context)
        self.listener = rclpy.create_node("listener", context=context)
        cameras = node.config.cameras
        image_type = CompressedImage if compressed else Image
        self.image_pubs = [self.driver.create_publisher(image_type, c.image_topic, 10) for c in cameras]
        self.info_pubs = [self.driver.create_publisher(CameraInfo, c.camera_info_topic, 10)
                          for c in node.config.cameras]
        self.lock = threading.Lock()
        self.depth: dict[tuple[str, int], Image] = {}
        self.info: dict[tuple[str, int], CameraInfo] = {}
        self.conf: dict[tuple[str, int], Image] = {}
        self.clouds: list[PointCloud2] = []
        self.diagnostics: list[DiagnosticArray] = []
        ns = node.get_namespace().rstrip("/")
        for cam in node.config.cameras:
            for store, topic, kind in ((self.depth, "depth", Image), (self.conf, "depth/confidence", Image),
                                       (self.info, "depth/camera_info", CameraInfo)):
                topic_name = f"{ns}/{cam.name}/{topic}"
                self.listener.create_subscription(kind, topic_name, self._keep(store, cam.name), 50)
        self.listener.create_subscription(PointCloud2, f"{ns}/points", self._append(self.clouds), 50)
        self.listener.create_subscription(DiagnosticArray, "/diagnostics", self._append(self.diagnostics), 50)
        self.executor = MultiThreadedExecutor(num_threads=3, context=context)
        for n in (node, self.driver, self.listener):
            self.executor.add_node(n)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.wait_for(lambda: all(p.get_subscription_count() > 0 for p in self.image_pubs + self.info_pubs),
                      "node subscriptions to be discovered")
        self.wait_for(lambda: self.node.depth_pubs[0].get_subscription_count() > 0, "listener discovery")

    def _keep(self, store, name):
        def callback(msg):
            with self.lock:
                store[(name, msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)] = msg
        return callback

    def _append(self, store):
        def callback(msg):
            with self.lock:
                store.append(msg)
        return callback

    def wait_for(self, predicate, what: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def image(self, camera: int, stamp: int, encoding: str = "rgb8", data: bytes | None = None,
              size: tuple[int, int] = (SRC_W, SRC_H), frame_id: str | None = None) -> Image | CompressedImage:
        w, h = size
        if self.compressed:
            msg = CompressedImage(format="png")
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
            msg.header.frame_id = self.node.config.cameras[camera].frame_id
            msg.data = byte_array(cv2.imencode(".png", np.full((h, w, 3), 40 * camera, np.uint8))[1])
            return msg
        msg = Image(height=h, width=w, encoding=encoding, step=w * 3)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        msg.header.frame_id = self.node.config.cameras[camera].frame_id if frame_id is None else frame_id
        pixels = np.full((h, w, 3), 40 * camera, np.uint8) if data is None else None
        msg.data = byte_array(pixels) if data is None else byte_array(np.frombuffer(data, np.uint8))
        return msg

    def camera_info(self, camera: int, stamp: int, K: np.ndarray | None = None) -> CameraInfo:
        msg = CameraInfo(width=SRC_W, height=SRC_H)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        msg.header.frame_id = self.node.config.cameras[camera].frame_id
        msg.k = (self.rig.cameras[camera].K if K is None else K).reshape(-1)
        return msg

    def send_camera_infos(self, stamp: int) -> None:
        """CameraInfo of every camera, then wait until the node holds them all."""
        for i, pub in enumerate(self.info_pubs):
            pub.publish(self.camera_info(i, stamp))
        self.wait_for(lambda: all(info is not None for info in self.node._camera_info), "camera infos")

    def publish_round(self, stamp: int, skip: tuple[int, ...] = (), offset_ns: int = 8 * MS) -> list[int]:
        """One set: camera i fires at stamp + i * offset; returns the stamps used."""
        stamps = []
        for i in range(len(self.image_pubs)):
            s = stamp + i * offset_ns
            stamps.append(s)
            if i in skip:
                continue
            self.info_pubs[i].publish(self.camera_info(i, s))
            self.image_pubs[i].publish(self.image(i, s))
        return stamps

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(10)
        for n in (self.driver, self.listener, self.node):
            n.destroy_node()


def node_config(tmp_path: Path, **sections) -> Path:
    data = yaml.safe_load(default_config_path().read_text())
    data["rig"] = str(default_config_path().parent / data["rig"])
    model = tmp_path / "double.onnx"
    model.write_bytes(b"unused: the test injects its backend")
    data["model"]["path"] = str(model)
    data["output"]["max_invalid_fraction"] = 1.0  # the ground plane leaves the sky NaN
    data["cloud"].update(stride=1, max_range=300.0)
    for name, values in sections.items():
        data[name].update(values)
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def ros_context():
    lease = ros_env.DomainLease()
    ros_env.apply(lease.domain_id)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=lease.domain_id)
    yield context
    rclpy.shutdown(context=context)
    lease.release()


GROUND = (np.array([0.0, 0.0, 1.0]), 0.0)


def test_six_cameras_in_depth_camera_info_and_ground_plane_cloud_out(ros_context, tmp_path):
    config = load_config(node_config(tmp_path))
    rig = model_rig()
    expected = plane_depth(rig, *GROUND)
    node = SurroundDepthNode(config, PlaneBackend(expected), node_name="depth_under_test",
                             namespace="/surround", context=ros_context)
    h = Harness(ros_context, node)
    try:
        names = config.rig.names
        base = 1_700_000_000 * 10**9
        stamps = []
        h.send_camera_infos(base)
        for r in range(3):
            stamps.append(h.publish_round(base + r * 100 * MS))
            time.sleep(0.3)
        last = stamps[-1]
        h.wait_for(lambda: all((n, s) in h.depth and (n, s) in h.info and (n, s) in h.conf
                               for n, s in zip(names, last, strict=True)), "depth of the last set")
        h.wait_for(lambda: any(c.header.stamp.sec * 10**9 + c.header.stamp.nanosec == max(last)
                               for c in h.clouds), "cloud of the last set")
        for i, (name, stamp) in enumerate(zip(names, last, strict=True)):
            depth, info, conf = h.depth[(name, stamp)], h.info[(name, stamp)], h.conf[(name, stamp)]
            assert depth.header.frame_id == name == info.header.frame_id == conf.header.frame_id
            assert (depth.width, depth.height, depth.encoding) == (MODEL_W, MODEL_H, "32FC1")
            assert depth.step == MODEL_W * 4
            values = np.frombuffer(bytes(depth.data), np.float32).reshape(MODEL_H, MODEL_W)
            assert np.array_equal(np.isnan(values), np.isnan(expected[i]))
            assert np.allclose(values, expected[i], equal_nan=True)
            confidence = np.frombuffer(bytes(conf.data), np.float32).reshape(MODEL_H, MODEL_W)
            assert np.allclose(confidence, np.where(np.isnan(expected[i]), 0.0, 0.9))
            assert (info.width, info.height) == (MODEL_W, MODEL_H)
            assert np.allclose(np.asarray(info.k).reshape(3, 3), rig.cameras[i].K, atol=1e-6)
            assert np.allclose(np.asarray(info.p).reshape(3, 4)[:, :3], rig.cameras[i].K, atol=1e-6)
        cloud = next(c for c in h.clouds if c.header.stamp.sec * 10**9 + c.header.stamp.nanosec == max(last))
        assert cloud.header.frame_id == "base_link"
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb", "confidence", "camera"]
        assert cloud.point_step == 24 and cloud.row_step == 24 * cloud.width and cloud.height == 1
        points = np.frombuffer(bytes(cloud.data), np.dtype({
            "names": ["x", "y", "z", "rgb", "camera"], "formats": ["<f4", "<f4", "<f4", "<u4", "u1"],
            "offsets": [0, 4, 8, 12, 20], "itemsize": 24}))
        assert points.size > 0.3 * 6 * MODEL_H * MODEL_W
        assert np.abs(points["z"]).max() < 1e-3  # the ground plane, within 1 mm in base_link
        assert set(np.unique(points["camera"])) == set(range(6))
        front = points[points["camera"] == 1]  # CAM_FRONT_RIGHT: grey level 40 from the driver
        assert np.all(front["rgb"] == (40 << 16 | 40 << 8 | 40))
        h.wait_for(lambda: any(s.name.endswith("pipeline") for d in h.diagnostics for s in d.status),
                   "diagnostics")
        snap = node.snapshot()
        assert snap["published_sets"] == 3 and snap["backend"] == "plane-double"
        assert snap["stages_ms"]["end_to_end"]["count"] == 3
    finally:
        h.close()


def test_bad_input_is_counted_and_the_node_keeps_running(ros_context, tmp_path):
    config = load_config(node_config(tmp_path, sync={"timeout_s": 0.3}))
    node = SurroundDepthNode(config, PlaneBackend(plane_depth(model_rig(), *GROUND)),
                             node_name="depth_bad_input", namespace="/bad", context=ros_context)
    h = Harness(ros_context, node)
    try:
        base = 1_800_000_000 * 10**9
        cams = config.rig.names

        def drops():
            return node.snapshot()["drops"]

        def expect(reason, count=1):
            h.wait_for(lambda: drops().get(reason, 0) >= count, f"drop reason {reason}")
            assert node.stats.last_problem

        h.image_pubs[0].publish(h.image(0, base))  # before any CameraInfo
        expect("no_camera_info")
        h.send_camera_infos(base)
        h.publish_round(base)  # a good set
        h.wait_for(lambda: node.snapshot()["published_sets"] == 1, "the first good set")
        h.image_pubs[1].publish(h.image(1, base + 100 * MS, encoding="yuv422"))
        expect("bad_encoding")
        assert "unsupported encoding 'yuv422'" in node.stats.last_problem
        h.image_pubs[1].publish(h.image(1, base + 100 * MS, size=(SRC_W // 2, SRC_H // 2)))
        expect("bad_size")
        empty = h.image(1, base + 100 * MS)
        empty.data = byte_array(np.zeros(0, np.uint8))
        h.image_pubs[1].publish(empty)
        expect("empty_data")
        h.info_pubs[2].publish(h.camera_info(2, base, K=np.zeros((3, 3))))
        expect("bad_camera_info")
        h.image_pubs[3].publish(h.image(3, base + 100 * MS, frame_id="CAM_ROOF"))
        expect("frame_mismatch")
        assert "CAM_ROOF" in node.stats.last_problem
        # Duplicate and out-of-order stamps, then a set with a silent camera.
        h.image_pubs[0].publish(h.image(0, base + 200 * MS))
        time.sleep(0.2)
        h.image_pubs[0].publish(h.image(0, base + 200 * MS))
        expect("duplicate")
        h.image_pubs[0].publish(h.image(0, base + 150 * MS))
        expect("out_of_order")
        for r in range(3, 9):
            h.publish_round(base + r * 100 * MS, skip=(4,))
            time.sleep(0.05)
        expect("camera_missing")
        assert node.snapshot()["missing_by_camera"].get(cams[4], 0) >= 1
        # A looping bag jumps back: the sync resets and sets flow again.
        before = node.snapshot()["published_sets"]
        for r in range(3):
            h.publish_round(base - 10 * 10**9 + r * 100 * MS)
            time.sleep(0.2)
        h.wait_for(lambda: node.snapshot()["published_sets"] >= before + 2, "sets after the jump back")
        assert node.snapshot()["sync_resets"] >= 1
        h.wait_for(lambda: any(kv.key == "drops_bad_encoding" for d in h.diagnostics for s in d.status
                               for kv in s.values), "drops in /diagnostics")
        # Whatever else a callback meets is counted and logged; the executor keeps spinning.
        node._guarded(lambda msg: 1 / 0)(None)
        assert drops()["internal_error"] == 1 and "ZeroDivisionError" in node.stats.last_problem
    finally:
        h.close()


def test_backend_nan_and_model_load_failure_keep_the_node_alive(ros_context, tmp_path):
    config = load_config(node_config(tmp_path, output={"max_invalid_fraction": 0.5}))
    nan_backend = PlaneBackend(np.full((6, MODEL_H, MODEL_W), np.nan, np.float32))
    node = SurroundDepthNode(config, nan_backend, node_name="depth_nan", namespace="/nan",
                             context=ros_context)
    h = Harness(ros_context, node)
    try:
        h.send_camera_infos(1_900_000_000 * 10**9)
        h.publish_round(1_900_000_000 * 10**9)
        h.wait_for(lambda: node.snapshot()["drops"].get("backend_nan", 0) == 1, "backend_nan drop")
        assert "100% invalid" in node.stats.last_problem and node.snapshot()["published_sets"] == 0
    finally:
        h.close()
    # A model file that is not a model: the node starts, reports ERROR, counts the sets it cannot run.
    broken = load_config(node_config(tmp_path, model={"backend": "ort-cpu", "retry_s": 0.5}))
    node = SurroundDepthNode(broken, node_name="depth_no_model", namespace="/nomodel", context=ros_context)
    h = Harness(ros_context, node)
    try:
        assert node.pipeline is None and "double.onnx" in node.stats.backend_error
        h.send_camera_infos(1_950_000_000 * 10**9)
        h.publish_round(1_950_000_000 * 10**9)
        h.wait_for(lambda: node.snapshot()["drops"].get("backend_unavailable", 0) == 1,
                   "backend_unavailable")
        h.wait_for(lambda: any(s.level == b"\x02" and "backend unavailable" in s.message
                               for d in h.diagnostics for s in d.status), "ERROR diagnostic")
    finally:
        h.close()


def udp_sockets_of_this_process() -> list[str]:
    """Local IPv4 addresses of this process's UDP sockets (from /proc)."""
    import os
    import socket
    import struct

    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    hex_ip = fields[1].split(":")[0]
                    if len(hex_ip) == 8:
                        addresses.append(socket.inet_ntoa(struct.pack("<I", int(hex_ip, 16))))
                    else:
                        addresses.append(f"ipv6:{hex_ip}")
    return addresses


def test_dds_traffic_stays_on_loopback(ros_context):
    node = rclpy.create_node("socket_probe", context=ros_context)
    try:
        addresses = udp_sockets_of_this_process()
        assert addresses, "the DDS participant holds no UDP socket"
        for address in addresses:
            first = int(address.split(".")[0]) if not address.startswith("ipv6") else -1
            assert first == 127 or 224 <= first <= 239, f"UDP socket bound to {address}, not loopback"
    finally:
        node.destroy_node()



def test_compressed_transport_gives_the_same_depth(ros_context, tmp_path):
    config = load_config(node_config(tmp_path, input={"transport": "compressed"}))
    expected = plane_depth(model_rig(), *GROUND)
    node = SurroundDepthNode(config, PlaneBackend(expected), node_name="depth_png", namespace="/png",
                             context=ros_context)
    h = Harness(ros_context, node, compressed=True)
    try:
        base = 2_000_000_000 * 10**9
        h.send_camera_infos(base)
        stamps = h.publish_round(base)
        h.wait_for(lambda: all((n, s) in h.depth for n, s in zip(config.rig.names, stamps, strict=True)),
                   "depth from png images")
        depth = h.depth[(config.rig.names[2], stamps[2])]
        values = np.frombuffer(bytes(depth.data), np.float32).reshape(MODEL_H, MODEL_W)
        assert np.allclose(values, expected[2], equal_nan=True)
        assert node.snapshot()["drops"] == {}
    finally:
        h.close()


def test_node_process_exits_on_a_config_error_naming_the_key(tmp_path):
    import subprocess
    import sys

    bad = node_config(tmp_path, sync={"slop_s": -1.0})
    with ros_env.DomainLease() as lease:
        command = [sys.executable, "-m", "fsmde_ros.node", "--ros-args", "-p", f"config:={bad}"]
        result = subprocess.run(command, env=lease.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"configuration error: {bad}: sync.slop_s: -1.0 must be >= 0" in result.stderr


def test_domain_leases_are_exclusive_and_env_is_loopback_only(tmp_path):
    with ros_env.DomainLease(tmp_path) as a, ros_env.DomainLease(tmp_path) as b:
        assert a.domain_id != b.domain_id
        env = a.env({"ROS_LOCALHOST_ONLY": "1", "PATH": "/bin"})
        assert env["ROS_DOMAIN_ID"] == str(a.domain_id) and env["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
        assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(ros_env.profile_path())
        assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT" and "ROS_LOCALHOST_ONLY" not in env
    with ros_env.DomainLease(tmp_path) as c:  # released ids are handed out again
        assert c.domain_id == a.domain_id
    with pytest.raises(ros_env.RosEnvError, match="out of range"):
        ros_env.loopback_env(500)
    profile = ros_env.profile_path().read_text()
    for needed in ("<useBuiltinTransports>false</useBuiltinTransports>", "<type>SHM</type>",
                   "<address>127.0.0.1</address>", "<initialPeersList>"):
        assert needed in profile
