"""Datasets: ``SurroundSample`` and the SynthSurround, nuScenes and DDAD loaders that yield it."""
