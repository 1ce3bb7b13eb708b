"""BriGeS: a trainable Bridging Gate between a frozen depth model and a frozen segmentation model.

See docs/briges.md.
"""
