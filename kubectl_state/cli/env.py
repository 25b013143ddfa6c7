"""The environment a command runs in: streams, terminal detection, verbosity.

Commands receive one `Environment` instead of reaching for sys.stdout or os.environ, so
tests can run them with captured streams, and so "progress only on a terminal" is decided
in one place (the idea comes from httpie's Environment).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    #: kubectl's -v: 0 is quiet about internals; 5 and above shows tracebacks of expected errors.
    verbosity: int = 0
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def stderr_is_terminal(self) -> bool:
        isatty = getattr(self.stderr, "isatty", None)
        return bool(isatty and isatty())

    @property
    def show_progress(self) -> bool:
        """Progress lines go to stderr only when a person is watching it."""
        return self.stderr_is_terminal

    def warn(self, message: str) -> None:
        self.stderr.write(f"Warning: {message}\n")

    def log(self, level: int, message: str) -> None:
        """Diagnostics shown at `-v level` and above, on stderr."""
        if self.verbosity >= level:
            self.stderr.write(f"{message}\n")
