"""Resizing samples to the network input: sparse LiDAR keeps its nearest returns, intrinsics follow."""

import numpy as np
import pytest
import torch

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.distill.data import SurroundTrainSet, resize_sample, resize_sparse_depth
from fsmde_ros.distill.teachers import TeacherCache
from fsmde_ros.rig import default_rig_path, load_rig


def _sample(h=48, w=80, frame=0):
    rig = load_rig(default_rig_path()).resized(w, h)
    rng = np.random.default_rng(frame)
    depth = rng.uniform(2, 50, (6, h, w)).astype(np.float32)
    sparse = np.full_like(depth, np.nan)
    sparse[:, ::3, ::2] = depth[:, ::3, ::2]
    return SurroundSample(
        rng.integers(0, 256, (6, h, w, 3), dtype=np.uint8),
        rig.intrinsics(),
        rig.extrinsics(),
        sparse,
        tuple(rig.names),
        np.zeros(6, np.int64),
        depth=depth,
        sequence="seq/a",
        frame_index=frame,
    )


def test_sparse_resize_keeps_the_nearest_return_and_invents_nothing():
    sparse = np.full((1, 4, 4), np.nan, np.float32)
    sparse[0, 0, 0], sparse[0, 0, 1], sparse[0, 3, 3] = 10.0, 4.0, 7.0
    out = resize_sparse_depth(sparse, 2, 2)
    assert out[0, 0, 0] == 4.0 and out[0, 1, 1] == 7.0
    assert np.isnan(out[0, 0, 1]) and np.isnan(out[0, 1, 0])


def test_resize_sample_scales_images_depth_and_intrinsics():
    sample = _sample()
    small = resize_sample(sample, 24, 40)
    assert small.images.shape == (6, 24, 40, 3) and small.depth.shape == (6, 24, 40)
    assert small.sparse_depth.shape == (6, 24, 40)
    np.testing.assert_allclose(small.K[:, 0, 0], sample.K[:, 0, 0] / 2)
    np.testing.assert_allclose(small.K[:, 0, 2], (sample.K[:, 0, 2] + 0.5) / 2 - 0.5)
    assert small.sequence == sample.sequence and resize_sample(sample, 48, 80) is sample
    finite = np.isfinite(small.sparse_depth)
    assert finite.any() and set(np.unique(small.sparse_depth[finite])) <= set(np.unique(sample.depth))


def test_train_set_attaches_the_cached_teacher_and_jitters_deterministically(tmp_path):
    samples = [_sample(frame=i) for i in range(2)]
    cache = TeacherCache(tmp_path, "t", 24, 40)
    for s in samples:
        cache.put(TeacherCache.key(s.sequence, s.frame_index), np.full((6, 24, 40), s.frame_index + 1.0))
    ds = SurroundTrainSet(samples, 24, 40, cache, photometric=True, seed=0)
    item = ds[1]
    assert item["images"].dtype == torch.uint8 and item["images"].shape == (6, 24, 40, 3)
    assert float(item["teacher"][0, 0, 0]) == 2.0
    assert torch.equal(ds[1]["images"], item["images"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["images"], item["images"])


def test_train_set_rejects_an_empty_source():
    with pytest.raises(ValueError, match="empty"):
        SurroundTrainSet([], 24, 40)
