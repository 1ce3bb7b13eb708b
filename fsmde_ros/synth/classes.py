"""Semantic classes of SynthSurround (ids stored in the class maps)."""

CLASS_NAMES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "vehicle",
    "pole",
    "vegetation",
    "person",
    "sky",
    "traffic_sign",
)
"""Class id = index: road 0 (lane markings included), sidewalk 1 (curbs included), ..., sky 7."""

CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
ROAD, SIDEWALK, BUILDING, VEHICLE, POLE, VEGETATION, PERSON, SKY, TRAFFIC_SIGN = range(len(CLASS_NAMES))

CLASS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (0, 0, 142),
    (153, 153, 153),
    (107, 142, 35),
    (220, 20, 60),
    (70, 130, 180),
    (220, 220, 0),
)
"""Cityscapes-like colours of the classes, for contact sheets."""
