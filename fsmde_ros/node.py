"""``surround_depth_node``: the rclpy shell around the ROS-free pipeline of ``fsmde_ros.core``.

Subscriptions (per camera) -> decode + checks -> approximate-time sync -> latest-wins worker thread
(preprocess, backend, postprocess, fusion, publish) -> ``<camera>/depth``, ``<camera>/depth/camera_info``,
``<camera>/depth/confidence``, the fused cloud and ``/diagnostics``. Parameters: ``config`` (the
YAML of ``fsmde_ros.params``), ``model`` and ``backend`` (override the file's), ``stats_file``
(JSON of the final statistics written on shutdown). Bad input is logged, counted by reason in
the diagnostics and dropped; the node keeps running.
"""

from __future__ import annotations

import array
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField

from fsmde_ros.backends.base import BackendError, DepthBackend
from fsmde_ros.conventions import DEPTH_ENCODING, NS_PER_S
from fsmde_ros.core.cloud import CLOUD_DTYPE
from fsmde_ros.core.decode import InputError, decode_compressed, decode_raw
from fsmde_ros.core.diagnostics import NodeStats
from fsmde_ros.core.health import ConsistencyMonitor
from fsmde_ros.core.pipeline import CameraFrame, PipelineOutput, SurroundPipeline
from fsmde_ros.core.preprocess import camera_matrix
from fsmde_ros.core.scheduler import LatestWinsWorker
from fsmde_ros.core.sync import ApproximateTimeSync, SyncedSet
from fsmde_ros.params import ConfigError, NodeConfig, default_config_path, load_config

CLOUD_FIELDS = [PointField(name=name, offset=CLOUD_DTYPE.fields[name][1], count=1,
                           datatype=PointField.UINT8 if name == "camera" else PointField.FLOAT32)
                for name in CLOUD_DTYPE.names]
PROBLEM_LOG_PERIOD_S = 5.0


def byte_array(values: np.ndarray) -> array.array:
    """The bytes of a numpy array as the ``array('B')`` a uint8[] message field holds: one memcpy."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    return out


def stamp_ns(header) -> int:
    return header.stamp.sec * NS_PER_S + header.stamp.nanosec


def set_stamp(header, ns: int) -> None:
    header.stamp.sec, header.stamp.nanosec = divmod(int(ns), NS_PER_S)


class SurroundDepthNode(Node):
    """Six (N) synchronized cameras in; metric depth, confidence and a fused cloud out."""

    def __init__(self, config: NodeConfig | None = None, backend: DepthBackend | None = None,
                 node_name: str = "surround_depth", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        config_param = self.declare_parameter("config", str(default_config_path())).value
        model_param = self.declare_parameter("model", "").value
        backend_param = self.declare_parameter("backend", "").value
        self.stats_file = self.declare_parameter("stats_file", "").value
        if config is None:
            try:
                config = load_config(config_param, model_param or None, backend_param or None)
            except ConfigError:
                super().destroy_node()  # nothing of this node exists yet beyond the rclpy node
                raise
        self.config = config
        rig = config.rig
        self.stats = NodeStats(rig.names, self.get_fully_qualified_name())
        s = config.sync
        self.sync = ApproximateTimeSync(len(rig), int(s["slop_s"] * NS_PER_S), s["queue_size"],
                                        int(s["timeout_s"] * NS_PER_S), s["partial_sets"],
                                        int(s["reset_jump_s"] * NS_PER_S), s["min_cameras"])
        self._camera_info: list[tuple[np.ndarray, int, int] | None] = [None] * len(rig)
        self._depth_infos: dict[int, tuple[tuple, CameraInfo]] = {}
        self._problem_logged: dict[str, float] = {}
        self._last_consistency = 0.0
        self.pipeline: SurroundPipeline | None = None
        self.monitor: ConsistencyMonitor | None = None
        self._monitor_key = b""
        self._create_io()
        self.worker: LatestWinsWorker[SyncedSet] = LatestWinsWorker(
            self._process_set, self._on_replaced, self._on_worker_error)
        self._retry_timer = None
        if backend is not None:
            self._use_backend(backend)
        else:
            self._load_backend()
            if self.pipeline is None:
                self._retry_timer = self.create_timer(config.model["retry_s"], self._load_backend)
        self.create_timer(config.diagnostics["period_s"], self._publish_diagnostics)

    # ----- set-up
    def _create_io(self) -> None:
        cfg = self.config
        in_qos = QoSProfile(depth=cfg.input["qos_depth"], history=HistoryPolicy.KEEP_LAST,
                            reliability=ReliabilityPolicy.BEST_EFFORT)
        out_qos = QoSProfile(depth=cfg.output["qos_depth"], history=HistoryPolicy.KEEP_LAST,
                             reliability=ReliabilityPolicy.RELIABLE if cfg.output["reliable"]
                             else ReliabilityPolicy.BEST_EFFORT)
        compressed = cfg.input["transport"] == "compressed"
        self.depth_pubs, self.info_pubs, self.conf_pubs = [], [], []
        for i, cam in enumerate(cfg.cameras):
            # CameraInfo first: the executor serves ready subscriptions in creation order, so an image
            # and its CameraInfo that arrive together are handled info first.
            self.create_subscription(CameraInfo, cam.camera_info_topic, self._info_callback(i), in_qos)
            self.create_subscription(CompressedImage if compressed else Image, cam.image_topic,
                                     self._image_callback(i, compressed), in_qos)
            self.depth_pubs.append(self.create_publisher(Image, f"{cam.name}/depth", out_qos))
            self.info_pubs.append(self.create_publisher(CameraInfo, f"{cam.name}/depth/camera_info", out_qos))
            if cfg.output["confidence"]:
                self.conf_pubs.append(self.create_publisher(Image, f"{cam.name}/depth/confidence", out_qos))
        self.cloud_pub = (self.create_publisher(PointCloud2, cfg.output["cloud_topic"], out_qos)
                          if cfg.output["cloud"] else None)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

    def _load_backend(self) -> None:
        from fsmde_ros.backends.factory import create_backend

        m = self.config.model
        backend = None
        try:
            backend = create_backend(m["backend"], m["path"], num_cameras=len(self.config.rig),
                                     threads=m["threads"] or None, precision=m["precision"],
                                     engine_dir=m["engine_dir"] or None)
            self._use_backend(backend)
        except (BackendError, ValueError, OSError) as exc:
            if backend is not None:
                backend.close()
            self.stats.backend_error = str(exc)
            self._problem("model", f"model load failed, retrying every {m['retry_s']} s: {exc}", error=True)
            return
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self.destroy_timer(self._retry_timer)
            self._retry_timer = None

    def _use_backend(self, backend: DepthBackend) -> None:
        rig = self.config.rig
        cfg = self.config
        self.pipeline = SurroundPipeline(
            backend, rig.extrinsics(), rig.intrinsics(), (rig.cameras[0].width, rig.cameras[0].height),
            cfg.input["preprocess"], cfg.cloud if cfg.output["cloud"] else None,
            cfg.output["max_invalid_fraction"])
        started = time.perf_counter()
        backend.infer(np.zeros(backend.input_shape, np.uint8))  # first-run allocations off the live path
        warm_up_ms = (time.perf_counter() - started) * 1e3
        self.stats.backend = backend.name
        self.stats.backend_error = ""
        self.get_logger().info(f"backend {backend.name}, input {backend.input_shape}, cameras {rig.names}, "
                               f"warm-up inference {warm_up_ms:.0f} ms")

    # ----- callbacks (executor thread): cheap checks, decode, sync
    def _info_callback(self, camera: int) -> Callable[[CameraInfo], None]:
        def callback(msg: CameraInfo) -> None:
            try:
                K = camera_matrix(msg.k, msg.width, msg.height)
            except InputError as exc:
                self._drop(exc.reason, f"{self.config.cameras[camera].name} camera_info: {exc}")
                return
            self._camera_info[camera] = (K, msg.width, msg.height)
        return self._guarded(callback)

    def _image_callback(self, camera: int, compressed: bool) -> Callable[[Image | CompressedImage], None]:
        cam = self.config.cameras[camera]

        def callback(msg: Image | CompressedImage) -> None:
            now = time.monotonic()
            self.stats.input_received(camera, now)
            if self.config.input["check_frame_id"] and msg.header.frame_id != cam.frame_id:
                self._drop("frame_mismatch", f"{cam.name}: image frame_id {msg.header.frame_id!r} is not "
                                             f"the configured {cam.frame_id!r}")
                return
            info = self._camera_info[camera]
            if info is None:
                self._drop("no_camera_info",
                           f"{cam.name}: no valid CameraInfo on {cam.camera_info_topic} yet")
                return
            try:
                if compressed:
                    image = decode_compressed(msg.format, msg.data)
                else:
                    image = decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data)
                if image.shape[:2] != (info[2], info[1]):
                    raise InputError("bad_size", f"image is {image.shape[1]}x{image.shape[0]}, its "
                                                 f"CameraInfo says {info[1]}x{info[2]}")
            except InputError as exc:
                self._drop(exc.reason, f"{cam.name}: {exc}")
                return
            stamp = stamp_ns(msg.header)
            frame = CameraFrame(image, info[0], stamp, msg.header.frame_id or cam.frame_id)
            for synced in self.sync.add(camera, stamp, frame, now):
                self.worker.submit(synced)
        return self._guarded(callback)

    def _guarded(self, callback: Callable) -> Callable:
        """``callback`` that counts and logs an unexpected exception instead of stopping the executor."""
        def guarded(msg) -> None:
            try:
                callback(msg)
            except Exception as exc:  # the node keeps running whatever one message does
                self._drop("internal_error", f"callback failed: {type(exc).__name__}: {exc}", error=True)
        return guarded

    # ----- worker thread: inference and publishing
    def _on_replaced(self, synced: SyncedSet) -> None:
        self.stats.drop("backend_busy")

    def _on_worker_error(self, exc: BaseException) -> None:
        self._drop("internal_error", f"set processing failed: {type(exc).__name__}: {exc}", error=True)

    def _process_set(self, synced: SyncedSet) -> None:
        started = time.monotonic()
        pipeline = self.pipeline
        if pipeline is None:
            self.stats.drop("backend_unavailable")
            return
        self.stats.stage("sync_wait", synced.arrival_s - synced.first_arrival_s)
        self.stats.stage("queue", started - synced.arrival_s)
        try:
            out = pipeline.process(synced.items)
        except InputError as exc:
            self._drop(exc.reason, str(exc))
            return
        except BackendError as exc:
            self._drop("backend_error", str(exc), error=True)
            return
        t0 = time.perf_counter()
        self._publish(out, synced.stamp_ns)
        published = time.monotonic()
        for stage, seconds in out.timings.items():
            self.stats.stage(stage, seconds)
        self.stats.stage("publish", time.perf_counter() - t0)
        self.stats.stage("end_to_end", published - synced.arrival_s)
        self.stats.output_published(published, partial=not synced.complete)
        self._check_consistency(out, published)

    def _publish(self, out: PipelineOutput, set_stamp_ns: int) -> None:
        h, w = out.depth.shape[1:]
        for i, frame in enumerate(out.frames):
            if frame is None:
                continue
            depth = Image(height=h, width=w, encoding=DEPTH_ENCODING,
                          is_bigendian=int(sys.byteorder == "big"), step=w * 4)
            set_stamp(depth.header, frame.stamp_ns)
            depth.header.frame_id = frame.frame_id
            depth.data = byte_array(out.depth[i])
            info = self._depth_camera_info(i, out.K[i], w, h)
            info.header = depth.header
            self.depth_pubs[i].publish(depth)
            self.info_pubs[i].publish(info)
            if self.conf_pubs:
                conf = Image(header=depth.header, height=h, width=w, encoding=DEPTH_ENCODING,
                             is_bigendian=depth.is_bigendian, step=w * 4)
                conf.data = byte_array(out.confidence[i])
                self.conf_pubs[i].publish(conf)
        if self.cloud_pub is not None and out.cloud is not None:
            cloud = PointCloud2(height=1, width=int(out.cloud.size), fields=CLOUD_FIELDS,
                                is_bigendian=False, point_step=CLOUD_DTYPE.itemsize,
                                row_step=CLOUD_DTYPE.itemsize * int(out.cloud.size), is_dense=True)
            set_stamp(cloud.header, set_stamp_ns)
            cloud.header.frame_id = self.config.rig.frame_id
            cloud.data = byte_array(out.cloud)
            self.cloud_pub.publish(cloud)

    def _depth_camera_info(self, camera: int, K: np.ndarray, width: int, height: int) -> CameraInfo:
        """CameraInfo of camera's depth images, rebuilt only when its intrinsics or size change."""
        key = (K.tobytes(), width, height)
        cached = self._depth_infos.get(camera)
        if cached is None or cached[0] != key:
            info = CameraInfo(height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
                              k=K.reshape(-1), r=np.eye(3).reshape(-1),
                              p=np.hstack([K, np.zeros((3, 1))]).reshape(-1))
            cached = self._depth_infos[camera] = (key, info)
        return cached[1]

    def _check_consistency(self, out: PipelineOutput, now: float) -> None:
        period = self.config.diagnostics["consistency_period_s"]
        if period <= 0 or now - self._last_consistency < period:
            return
        self._last_consistency = now
        key = out.K.tobytes()
        if self.monitor is None or key != self._monitor_key:
            d, rig, cloud = self.config.diagnostics, self.config.rig, self.config.cloud
            self.monitor = ConsistencyMonitor(rig.names, out.K, rig.extrinsics(), rig.adjacent,
                                              out.depth.shape[1], out.depth.shape[2], cloud.min_range,
                                              cloud.max_range, d["consistency_warn"], d["consistency_error"])
            self._monitor_key = key
        self.stats.set_consistency(self.monitor(out.depth))

    # ----- bookkeeping
    def _drop(self, reason: str, problem: str, error: bool = False) -> None:
        self.stats.drop(reason, problem)
        self._problem(reason, problem, error)

    def _problem(self, key: str, message: str, error: bool = False) -> None:
        """Log a problem, at most once per PROBLEM_LOG_PERIOD_S for the same kind."""
        now = time.monotonic()
        if now - self._problem_logged.get(key, -PROBLEM_LOG_PERIOD_S) < PROBLEM_LOG_PERIOD_S:
            return
        self._problem_logged[key] = now
        if error:  # rclpy wants one severity per call site
            self.get_logger().error(f"[{key}] {message}")
        else:
            self.get_logger().warning(f"[{key}] {message}")

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for status in self.stats.report(time.monotonic(), self.sync.stats):
            msg.status.append(DiagnosticStatus(
                level=bytes([status.level]), name=status.name, message=status.message,
                hardware_id=status.hardware_id,
                values=[KeyValue(key=k, value=v) for k, v in status.values.items()]))
        self.diag_pub.publish(msg)

    def snapshot(self) -> dict:
        """Statistics as JSON-ready numbers (see ``NodeStats.snapshot``)."""
        return self.stats.snapshot(time.monotonic(), self.sync.stats)

    def destroy_node(self) -> None:
        self.worker.stop()
        if self.stats_file:
            Path(self.stats_file).write_text(json.dumps(self.snapshot(), indent=2) + "\n")
        if self.pipeline is not None:
            self.pipeline.backend.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = SurroundDepthNode()
    except ConfigError as exc:
        print(f"surround_depth_node: configuration error: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
