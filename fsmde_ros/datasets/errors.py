"""The error every dataset loader raises, and the JSON file reader that raises it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """A dataset directory or file is missing or malformed; the message names the path and the problem."""


def read_json(path: Path, what: str) -> Any:
    """The parsed JSON file ``path``; a ``DatasetError`` naming it (as ``what``) when missing or invalid."""
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
