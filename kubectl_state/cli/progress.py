"""A one-line progress display on stderr, shown only when stderr is a terminal.

The core reports progress through plain callbacks (it never prints); this turns them into a
line that is rewritten in place at most a few times a second, so that piping or logging the
command's output never fills up with progress noise.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from kubectl_state.cli.env import Environment

#: Seconds between redraws: often enough to look alive, rarely enough to cost nothing.
REDRAW_INTERVAL = 0.2


class Progress:
    def __init__(self, env: Environment, verb: str, *, unit: str = "objects", enabled: bool | None = None) -> None:
        self.stream: TextIO = env.stderr
        self.enabled = env.show_progress if enabled is None else enabled
        self.verb = verb
        self.unit = unit
        self.total_groups = 0
        self.done_groups = 0
        self.count = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self._width = 0

    def set_total(self, groups: int) -> None:
        with self._lock:
            self.total_groups = groups
        self._draw()

    def add(self, count: int) -> None:
        with self._lock:
            self.count += count
        self._draw()

    def group_done(self) -> None:
        with self._lock:
            self.done_groups += 1
        self._draw(force=True)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        groups = f"{self.done_groups}/{self.total_groups} resources, " if self.total_groups else ""
        return f"{self.verb}: {groups}{self.count} {self.unit} ({self.rate:.0f}/s)"

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_draw < REDRAW_INTERVAL:
                return
            self._last_draw = now
            text = self.line()
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write(f"\r{text}{' ' * pad}")
            self.stream.flush()

    def finish(self) -> None:
        """Clear the progress line so the summary that follows starts on a clean line."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
