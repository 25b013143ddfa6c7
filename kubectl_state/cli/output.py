"""Rendering data for people (text) and for machines (`-o json|yaml`)."""

from __future__ import annotations

import json
from typing import IO, Any

import yaml

MACHINE_FORMATS = ("json", "yaml")


def write_data(data: Any, fmt: str, stream: IO[str]) -> None:
    """Write `data` as JSON or YAML; both end with a newline."""
    if fmt == "json":
        stream.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt == "yaml":
        stream.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    else:
        raise ValueError(f"unknown machine output format {fmt!r}")
