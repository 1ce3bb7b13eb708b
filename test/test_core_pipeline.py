"""ROS-free pipeline: decoding, preprocessing, backend output cleaning, fused cloud geometry, health."""

import threading
import time

import cv2
import numpy as np
import pytest
from test_core_doubles import MODEL_H, MODEL_W, PlaneBackend, model_rig, plane_depth

from fsmde_ros.core.cloud import CLOUD_DTYPE, CloudBuilder, pack_rgb
from fsmde_ros.core.decode import InputError, decode_compressed, decode_raw
from fsmde_ros.core.diagnostics import ERROR, OK, WARN, NodeStats
from fsmde_ros.core.health import ConsistencyMonitor
from fsmde_ros.core.pipeline import CameraFrame, CloudSettings, SurroundPipeline
from fsmde_ros.core.preprocess import Preprocessor, camera_matrix
from fsmde_ros.core.scheduler import LatestWinsWorker
from fsmde_ros.core.sync import SyncStats
from fsmde_ros.rig import default_rig_path, load_rig

GROUND = (np.array([0.0, 0.0, 1.0]), 0.0)


def rgb_image(h=6, w=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_raw_encodings_decode_to_rgb(encoding):
    rgb = rgb_image()
    alpha = np.full(rgb.shape[:2], 7, np.uint8)
    source = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.dstack([rgb, alpha]),
              "bgra8": np.dstack([rgb[..., ::-1], alpha]), "mono8": rgb[..., 0]}[encoding]
    channels = 1 if source.ndim == 2 else source.shape[2]
    padded = np.zeros((6, 8 * channels + 4), np.uint8)  # a step with row padding
    padded[:, : 8 * channels] = source.reshape(6, -1)
    out = decode_raw(encoding, 6, 8, 8 * channels + 4, padded.tobytes())
    expected = np.repeat(rgb[..., :1], 3, axis=2) if encoding == "mono8" else rgb
    assert out.shape == (6, 8, 3) and np.array_equal(out, expected)


def test_rgb8_is_a_view_on_the_message_buffer():
    buf = bytearray(rgb_image().tobytes())
    out = decode_raw("rgb8", 6, 8, 24, buf)
    buf[0] = 255 - buf[0]
    assert out[0, 0, 0] == buf[0]


@pytest.mark.parametrize(("args", "reason", "message"), [
    (("yuv422", 6, 8, 16, b"x" * 96), "bad_encoding", "unsupported encoding 'yuv422'"),
    (("rgb8", 6, 8, 24, b""), "empty_data", "empty"),
    (("rgb8", 0, 8, 24, b""), "empty_data", "0 is empty"),
    (("rgb8", 6, 8, 24, b"x" * 100), "bad_size", "needs 144"),
    (("rgb8", 6, 8, 10, b"x" * 144), "bad_size", "step 10"),
])
def test_bad_raw_images_are_refused_with_a_reason(args, reason, message):
    with pytest.raises(InputError, match=message) as info:
        decode_raw(*args)
    assert info.value.reason == reason


@pytest.mark.parametrize("fmt", ["jpeg", "png", "bgr8; jpeg compressed bgr8"])
def test_compressed_images_decode(fmt):
    rgb = np.full((16, 24, 3), (200, 100, 50), np.uint8)
    ext = ".png" if "png" in fmt else ".jpg"
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    out = decode_compressed(fmt, data.tobytes())
    assert out.shape == (16, 24, 3) and np.abs(out.astype(int) - rgb).max() <= 3


def test_bad_compressed_images_are_refused():
    with pytest.raises(InputError, match="unsupported compressed format 'tiff'"):
        decode_compressed("tiff", b"abc")
    with pytest.raises(InputError, match="could not decode") as info:
        decode_compressed("jpeg", b"not a jpeg")
    assert info.value.reason == "decode_failed"
    with pytest.raises(InputError, match="empty"):
        decode_compressed("png", b"")


@pytest.mark.parametrize(("k", "message"), [
    ([0.0] * 9, "non-positive focal"),
    ([1.0] * 8, "9 numbers"),
    ([100, 0, 50, 0, 100, 40, 0, 0, float("nan")], "NaN"),
    ([100, 0, 50, 0, 100, 40, 0, 1, 1], "not a pinhole"),
])
def test_bad_camera_info_k_is_refused(k, message):
    with pytest.raises(InputError, match=message) as info:
        camera_matrix(k, 640, 480)
    assert info.value.reason == "bad_camera_info"


def test_resize_and_crop_scale_the_intrinsics():
    K = camera_matrix([800, 0, 799.5, 0, 800, 449.5, 0, 0, 1], 1600, 900)
    resize = Preprocessor(160, 288, "resize").plan(1600, 900, K)
    assert resize.K[0, 0] == pytest.approx(800 * 288 / 1600)
    assert resize.K[1, 1] == pytest.approx(800 * 160 / 900)
    assert resize.K[0, 2] == pytest.approx(143.5) and resize.K[1, 2] == pytest.approx(79.5)
    crop = Preprocessor(160, 288, "crop").plan(1600, 900, K)
    scale = 288 / 1600  # width limits: 900 * 0.18 = 162 rows, 1 cropped at the top
    assert crop.K[0, 0] == pytest.approx(800 * scale) and crop.K[1, 1] == pytest.approx(800 * scale)
    assert (crop.scaled_width, crop.scaled_height, crop.top) == (288, 162, 1)
    assert crop.K[1, 2] == pytest.approx(79.5)
    image = np.zeros((900, 1600, 3), np.uint8)
    assert Preprocessor(160, 288, "crop").apply(image, crop).shape == (160, 288, 3)


def test_image_not_matching_camera_info_is_refused():
    pre = Preprocessor(64, 96)
    plan = pre.plan(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
    with pytest.raises(InputError, match="camera info says 640x480") as info:
        pre.apply(np.zeros((400, 640, 3), np.uint8), plan)
    assert info.value.reason == "bad_size"


def ground_pipeline(**cloud):
    rig = model_rig()
    backend = PlaneBackend(plane_depth(rig, *GROUND))
    full = load_rig(default_rig_path())
    pipeline = SurroundPipeline(backend, rig.extrinsics(), full.intrinsics(), (1600, 900), "resize",
                                CloudSettings(**({"stride": 1} | cloud)), max_invalid_fraction=1.0)
    return pipeline, full


def frames_of(full, stamp=5):
    images = np.random.default_rng(1).integers(0, 256, (6, 900, 1600, 3), dtype=np.uint8)
    return [CameraFrame(images[i], full.cameras[i].K, stamp, full.cameras[i].name) for i in range(6)]


def test_ground_plane_depth_gives_points_on_the_ground_within_1mm():
    pipeline, full = ground_pipeline(max_range=200.0)
    out = pipeline.process(frames_of(full))
    cloud = out.cloud
    assert cloud.dtype == CLOUD_DTYPE and cloud.size > 6 * MODEL_W * MODEL_H * 0.3
    assert np.abs(cloud["z"]).max() < 1e-3
    assert set(np.unique(cloud["camera"])) == set(range(6))
    # Points lie around the car: ahead of the front camera and behind the back one.
    front, back = cloud[cloud["camera"] == 0], cloud[cloud["camera"] == 3]
    assert np.median(front["x"]) > 3 and np.median(back["x"]) < -3
    assert np.allclose(cloud["confidence"], 0.9)
    assert out.K.shape == (6, 3, 3)
    assert out.K[0, 0, 0] == pytest.approx(full.cameras[0].K[0, 0] * MODEL_W / 1600)
    assert set(out.timings) == {"preprocess", "inference", "postprocess", "fusion"}


def test_overlap_split_keeps_each_direction_once():
    rig = model_rig()
    depth = np.full((6, MODEL_H, MODEL_W), 20.0, np.float32)
    K, T = rig.intrinsics(), rig.extrinsics()
    split = CloudBuilder(K, T, MODEL_H, MODEL_W, 1, overlap="split").build(depth)
    both = CloudBuilder(K, T, MODEL_H, MODEL_W, 1, overlap="all").build(depth)
    assert both.size == 6 * MODEL_H * MODEL_W and split.size < both.size
    # Azimuth of every split point: each camera keeps a contiguous sector; no sector overlaps another.
    yaw = np.degrees(np.arctan2(split["y"], split["x"]))
    front = yaw[split["camera"] == 0]
    assert front.max() - front.min() < rig.cameras[0].hfov_deg


def test_cloud_filters_range_confidence_stride_and_voxels():
    rig = model_rig()
    depth = np.full((6, MODEL_H, MODEL_W), 10.0, np.float32)
    depth[0] = 100.0  # beyond max_range
    depth[1, :, :10] = np.nan
    conf = np.full(depth.shape, 0.9, np.float32)
    conf[2] = 0.1
    builder = CloudBuilder(rig.intrinsics(), rig.extrinsics(), MODEL_H, MODEL_W, 2, max_range=80.0,
                           min_confidence=0.5, overlap="all")
    cloud = builder.build(depth, conf)
    cams = np.bincount(cloud["camera"], minlength=6)
    assert cams[0] == 0 and cams[2] == 0
    assert cams[3] == (MODEL_H // 2) * (MODEL_W // 2) and cams[1] == (MODEL_H // 2) * (MODEL_W // 2 - 5)
    coarse = CloudBuilder(rig.intrinsics(), rig.extrinsics(), MODEL_H, MODEL_W, 2, overlap="all",
                          voxel_size=2.0).build(depth, conf)
    assert 0 < coarse.size < cloud.size + cams[2]
    cells = np.floor(np.stack([coarse["x"], coarse["y"], coarse["z"]], 1) / 2.0)
    assert len(np.unique(cells, axis=0)) == coarse.size


def test_rgb_is_packed_as_rviz_expects():
    packed = pack_rgb(np.array([[255, 128, 1]], np.uint8))
    assert packed.view(np.uint32)[0] == 0xFF8001


def test_backend_nan_is_counted_and_too_much_refuses_the_set():
    rig = model_rig()
    depth = np.full((6, MODEL_H, MODEL_W), 10.0, np.float32)
    depth[0, :4] = np.nan
    depth[1, 0, 0] = np.inf
    depth[2, 0, 0] = -1.0
    full = load_rig(default_rig_path())
    pipeline = SurroundPipeline(PlaneBackend(depth), rig.extrinsics(), full.intrinsics(), (1600, 900),
                                cloud=CloudSettings(), max_invalid_fraction=0.1)
    out = pipeline.process(frames_of(full))
    assert out.nonfinite.tolist() == [4 * MODEL_W, 1, 1, 0, 0, 0]
    assert np.isnan(out.depth[0, :4]).all() and np.isnan(out.depth[1, 0, 0]) and np.isnan(out.depth[2, 0, 0])
    assert out.confidence[0, 0, 0] == 0.0
    all_nan = SurroundPipeline(PlaneBackend(np.full_like(depth, np.nan)), rig.extrinsics(), full.intrinsics(),
                               (1600, 900), max_invalid_fraction=0.1)
    with pytest.raises(InputError, match="100% invalid") as info:
        all_nan.process(frames_of(full))
    assert info.value.reason == "backend_nan"


def test_partial_set_publishes_nan_for_the_missing_camera():
    pipeline, full = ground_pipeline()
    frames = frames_of(full)
    frames[4] = None
    out = pipeline.process(frames)
    assert out.present == [True, True, True, True, False, True]
    assert np.isnan(out.depth[4]).all() and 4 not in set(out.cloud["camera"])


def test_consistency_monitor_flags_a_miscalibrated_or_failing_camera():
    rig = model_rig()
    monitor = ConsistencyMonitor(rig.names, rig.intrinsics(), rig.extrinsics(), rig.adjacent, MODEL_H,
                                 MODEL_W, 0.5, 80.0, warn=0.1, error=0.2)
    depth = plane_depth(rig, *GROUND)
    good = monitor(depth)
    assert len(good) == 6 and all(p.level == OK and p.count > 0 for p in good)
    bad_depth = depth.copy()
    bad_depth[0] *= 1.6
    bad = {p.names: p for p in monitor(bad_depth)}
    assert bad[("CAM_FRONT", "CAM_FRONT_RIGHT")].level == ERROR
    assert bad[("CAM_BACK_RIGHT", "CAM_BACK")].level == OK


def test_diagnostics_report_rates_latencies_drops_and_health():
    stats = NodeStats(["A", "B"], "node")
    stats.backend = "ort-cpu"
    for k in range(11):
        stats.input_received(0, 100 + k * 0.1)
        stats.output_published(100 + k * 0.1, partial=False)
        stats.stage("inference", 0.05)
    stats.drop("backend_busy", "B: something")
    sync = SyncStats()
    sync.dropped["camera_missing"] = 3
    statuses = {s.name: s for s in stats.report(101.0, sync)}
    pipe, inputs = statuses["node: pipeline"], statuses["node: inputs"]
    assert pipe.level == OK
    assert pipe.values["drops_backend_busy"] == "1" and pipe.values["drops_camera_missing"] == "3"
    assert pipe.values["latency_inference_ms"].startswith("median 50.00")
    assert float(pipe.values["output_hz"]) == pytest.approx(10.0)
    snap = stats.snapshot(107.0, sync)  # the window has passed: live rates drop, run means stay
    assert snap["output_hz"] == 0.0 and snap["mean_output_hz"] == pytest.approx(10.0)
    assert snap["mean_input_hz"] == {"A": pytest.approx(10.0), "B": 0.0}
    assert inputs.level == WARN and inputs.message == "silent: B"
    stats.backend_error = "model.onnx: not found"
    assert stats.report(101.0, sync)[0].level == ERROR


def test_worker_holds_one_in_flight_and_one_waiting_latest_wins():
    gate, done, replaced = threading.Event(), [], []
    worker = LatestWinsWorker(lambda item: (gate.wait(30), done.append(item)), replaced.append,
                              lambda e: None)
    worker.submit(0)
    deadline = time.monotonic() + 30
    while worker.in_flight != 1 or worker._waiting is not None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    for item in range(1, 5):
        worker.submit(item)
        assert worker.in_flight == 2
    gate.set()
    assert worker.wait_idle(30)
    worker.stop()
    assert done == [0, 4] and replaced == [1, 2, 3]


def test_worker_survives_a_failing_item():
    errors, done = [], []

    def process(item):
        if item == "bad":
            raise RuntimeError("boom")
        done.append(item)

    worker = LatestWinsWorker(process, lambda item: None, errors.append)
    worker.submit("bad")
    assert worker.wait_idle(30)
    worker.submit("good")
    assert worker.wait_idle(30)
    worker.stop()
    assert done == ["good"] and str(errors[0]) == "boom"


@pytest.mark.parametrize(("src", "interpolation"),
                         [((400, 224), cv2.INTER_LINEAR), ((1600, 900), cv2.INTER_AREA)])
def test_resize_averages_areas_only_where_the_image_halves(src, interpolation):
    image = np.random.default_rng(2).integers(0, 256, (src[1], src[0], 3), dtype=np.uint8)
    K = np.array([[300.0, 0, src[0] / 2], [0, 300.0, src[1] / 2], [0, 0, 1]])
    pre = Preprocessor(160, 288)
    out = pre.apply(image, pre.plan(src[0], src[1], K))
    assert np.array_equal(out, cv2.resize(image, (288, 160), interpolation=interpolation))


def test_any_n_camera_rig_works(tmp_path):
    import yaml

    from fsmde_ros.params import load_config
    from fsmde_ros.rig import load_rig

    data = yaml.safe_load(default_rig_path().read_text())
    front = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT")
    data["cameras"] = [c for c in data["cameras"] if c["name"] in front]
    rig_path = tmp_path / "three.yaml"
    rig_path.write_text(yaml.safe_dump(data))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    config_path = tmp_path / "node.yaml"
    config_path.write_text(yaml.safe_dump({"rig": str(rig_path), "model": {"path": str(model)}}))
    config = load_config(config_path)
    rig = load_rig(rig_path)
    assert [c.name for c in config.cameras] == rig.names == list(front)
    assert sorted(rig.adjacent) == [(0, 1), (0, 2)]
    small = rig.resized(MODEL_W, MODEL_H)
    pipeline = SurroundPipeline(PlaneBackend(plane_depth(small, *GROUND)), rig.extrinsics(), rig.intrinsics(),
                                (1600, 900), cloud=CloudSettings(max_range=200.0), max_invalid_fraction=1.0)
    images = np.zeros((3, 900, 1600, 3), np.uint8)
    out = pipeline.process([CameraFrame(images[i], rig.cameras[i].K, 1, rig.names[i]) for i in range(3)])
    assert out.depth.shape == (3, MODEL_H, MODEL_W) and np.abs(out.cloud["z"]).max() < 1e-3
    assert set(np.unique(out.cloud["camera"])) == {0, 1, 2}
    monitor = ConsistencyMonitor(rig.names, small.intrinsics(), rig.extrinsics(), small.adjacent, MODEL_H,
                                 MODEL_W, 0.5, 80.0)
    health = monitor(out.depth)
    assert len(health) == 2 and all(p.level == OK and p.count > 0 for p in health)
