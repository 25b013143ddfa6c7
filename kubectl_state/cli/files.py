"""Reading the small YAML files users hand to commands (tier tables, pause rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubectl_state.core.errors import UsageError


def load_yaml_file(path: str, what: str) -> Any:
    """The document in `path`; a missing file or bad YAML is a usage error naming `what`."""
    import yaml  # noqa: PLC0415 (start-up cost)

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{what} {path} is not YAML: {str(exc).splitlines()[0]}") from None
