"""A dataset split as a sequence of ``SurroundSample``, from a recipe's ``data`` mapping.

``{dataset: synth, root: data/synth, split: student-train, max_frames: 300}``. The frames present
when the source is opened are used (SynthSurround may still be generating); ``max_frames`` keeps
the first frames in (sequence, frame) order, which the generator writes first, so runs started at
different times of generation see the same frames.
"""

from __future__ import annotations

from collections.abc import Sequence

from fsmde_ros.datasets.sample import SurroundSample


class SourceError(ValueError):
    """A data source cannot be opened; the message names the dataset, root and split."""


class _Head:
    """The first ``count`` items of a sequence."""

    def __init__(self, base: Sequence[SurroundSample], count: int) -> None:
        self.base, self.count = base, min(count, len(base))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> SurroundSample:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self.base[i]


def open_source(spec: dict) -> Sequence[SurroundSample]:
    """The samples of ``spec['dataset']`` (``synth``) under ``spec['root']``, split ``spec['split']``."""
    dataset, root, split = spec.get("dataset"), spec.get("root"), spec.get("split")
    if dataset != "synth":
        raise SourceError(f"data.dataset must be 'synth' (SynthSurround), got {dataset!r}")
    from fsmde_ros.datasets.synthsurround import DatasetError, SynthSurroundDataset

    try:
        source = SynthSurroundDataset(root, split)
    except DatasetError as exc:
        raise SourceError(f"data {dataset} {root} [{split}]: {exc}") from exc
    if len(source) == 0:
        raise SourceError(f"data {dataset} {root} [{split}]: no frames yet")
    max_frames = spec.get("max_frames")
    if max_frames is not None:
        if int(max_frames) < 1:
            raise SourceError(f"data.max_frames must be >= 1, got {max_frames}")
        return _Head(source, int(max_frames))
    return source
