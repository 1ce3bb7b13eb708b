"""Approximate-time sync: rolling-shutter offsets, silent cameras, bad stamps, resets, bounded queues."""

import pytest

from fsmde_ros.core.sync import ApproximateTimeSync

MS = 1_000_000
PERIOD = 83 * MS  # 12 Hz


def feed(sync, rounds, offsets, skip=(), start=1_000 * MS):
    """Publish ``rounds`` rounds camera by camera in stamp order; returns the emitted sets."""
    out = []
    for r in range(rounds):
        for cam in sorted(range(len(offsets)), key=lambda c: offsets[c]):
            if cam in skip:
                continue
            stamp = start + r * PERIOD + offsets[cam]
            out += sync.add(cam, stamp, (cam, r), arrival_s=stamp / 1e9)
    return out


def test_cameras_fired_tens_of_ms_apart_sync_round_by_round():
    offsets = [0, 8 * MS, 16 * MS, 24 * MS, 32 * MS, 40 * MS]
    sync = ApproximateTimeSync(6, slop_ns=50 * MS, queue_size=4)
    sets = feed(sync, 10, offsets)
    assert len(sets) == 10
    for r, s in enumerate(sets):
        assert s.complete
        assert s.items == [(c, r) for c in range(6)]
        assert s.stamp_ns == 1_000 * MS + r * PERIOD + 40 * MS
    assert sync.stats.complete_sets == 10 and not sync.stats.dropped


def test_arrival_order_does_not_matter_within_a_round():
    sync = ApproximateTimeSync(3, slop_ns=30 * MS)
    assert sync.add(2, 1_020 * MS, "c", 0.0) == []
    assert sync.add(0, 1_000 * MS, "a", 0.0) == []
    (s,) = sync.add(1, 1_010 * MS, "b", 0.0)
    assert s.items == ["a", "b", "c"] and s.stamps_ns == [1_000 * MS, 1_010 * MS, 1_020 * MS]


def test_silent_camera_drops_sets_by_timeout_and_never_blocks():
    sync = ApproximateTimeSync(6, slop_ns=20 * MS, queue_size=3, timeout_ns=200 * MS)
    sets = feed(sync, 20, [0] * 6, skip={3})
    assert sets == []
    assert sync.stats.dropped["camera_missing"] >= 16
    assert sync.stats.missing[3] == sync.stats.dropped["camera_missing"]
    assert max(sync.pending()) <= 3  # bounded: nothing piles up behind the silent camera


def test_silent_camera_gives_partial_sets_when_configured():
    sync = ApproximateTimeSync(6, slop_ns=20 * MS, queue_size=3, timeout_ns=200 * MS, partial_sets=True)
    sets = feed(sync, 20, [0] * 6, skip={3})
    assert len(sets) >= 16
    for s in sets:
        assert not s.complete and s.items[3] is None and s.stamps_ns[3] is None
        assert len({st for st in s.stamps_ns if st is not None}) == 1
    # Once the camera comes back, complete sets resume.
    later = feed(sync, 3, [0] * 6, start=1_000 * MS + 30 * PERIOD)
    assert any(s.complete for s in later)


def test_duplicate_out_of_order_and_stale_stamps_are_counted():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS)
    sync.add(0, 1_000 * MS, "a0", 0.0)
    assert sync.add(0, 1_000 * MS, "dup", 0.0) == []
    assert sync.stats.dropped["duplicate"] == 1
    sync.add(0, 1_100 * MS, "a1", 0.0)
    assert sync.add(0, 1_050 * MS, "late", 0.0) == []
    assert sync.stats.dropped["out_of_order"] == 1
    (s,) = sync.add(1, 1_100 * MS, "b1", 0.0)
    assert s.items == ["a1", "b1"]
    assert sync.stats.dropped["superseded"] == 1  # a0 never found a partner
    assert sync.add(1, 1_000 * MS, "old", 0.0) == []
    assert sync.stats.dropped["stale"] == 1


def test_jump_back_resets_the_sync_like_a_looping_bag():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS, reset_jump_ns=500 * MS)
    first = feed(sync, 10, [0, 0])
    sync.add(0, 1_000 * MS + 10 * PERIOD, "pending", 0.0)
    again = feed(sync, 5, [0, 0])  # the bag starts over
    assert len(first) == 10 and len(again) == 5
    assert sync.stats.resets == 1 and sync.stats.dropped["reset"] == 1


def test_queue_overflow_is_bounded_and_counted():
    sync = ApproximateTimeSync(2, slop_ns=1 * MS, queue_size=2, timeout_ns=10_000 * MS)
    for k in range(5):
        sync.add(0, (1_000 + k) * MS * 10, k, 0.0)
    assert sync.pending() == [2, 0]
    assert sync.stats.dropped["queue_overflow"] == 3


@pytest.mark.parametrize("kwargs", [{"slop_ns": -1}, {"slop_ns": 1, "queue_size": 0},
                                    {"slop_ns": 1, "timeout_ns": 0}])
def test_bad_sync_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="required"):
        ApproximateTimeSync(2, **kwargs)


def test_unknown_camera_index_is_refused():
    with pytest.raises(ValueError, match="camera index 7"):
        ApproximateTimeSync(2, slop_ns=1).add(7, 1, None, 0.0)


def test_a_loop_shorter_than_the_reset_jump_resets_when_every_camera_went_back():
    sync = ApproximateTimeSync(3, slop_ns=10 * MS, reset_jump_ns=1_000 * MS)
    loops = [feed(sync, 4, [0, 0, 0]) for _ in range(3)]  # a 0.25 s bag looped, well under reset_jump
    # Each loop loses only its first set: cameras 0 and 1 are refused, camera 2 going back too resets.
    assert [len(sets) for sets in loops] == [4, 3, 3]
    assert sync.stats.resets == 2 and sync.stats.dropped["stale"] == 4
    # One late camera alone never resets.
    sync.add(0, 2_000 * MS, "a", 0.0)
    sync.add(0, 1_999 * MS, "late", 0.0)
    assert sync.stats.resets == 2 and sync.stats.dropped["out_of_order"] == 1
