"""Reading YAML configuration files and ``section.key=value`` overrides, one way for every config.

Used by the rig, model profiles, node configuration and the training recipes; each passes its own
exception class so errors keep naming the file and the problem in that module's terms.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str) -> dict:
    """The mapping in the YAML file ``path`` ({} for an empty file).

    Raises ``error`` naming the file when it is missing, not valid YAML or not a mapping; ``what``
    names the kind of file in the message (``"recipe"``, ``"rig"``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} must be a mapping")
    return data


def apply_override(data: dict, assignment: str, error: type[Exception]) -> None:
    """Set ``section.key=value`` in the nested mapping ``data`` (value parsed as YAML), creating
    missing sections; raises ``error`` for a malformed assignment or a path through a non-mapping."""
    if "=" not in assignment:
        raise error(f"override {assignment!r}: expected key.sub=value")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise error(f"override {assignment!r}: {key!r} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)
