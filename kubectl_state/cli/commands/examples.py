"""The `Examples:` section at the end of a command's --help.

argparse's default formatter re-wraps the epilog into one paragraph, which would run the
example command lines together; this formatter prints an epilog made by `examples()` line
by line and wraps everything else (the description) as before.
"""

from __future__ import annotations

import argparse

HEADING = "Examples:"


def examples(*lines: str) -> str:
    """An epilog of example command lines, each shown on its own line."""
    return "\n".join([HEADING, *(f"  {line}" for line in lines)])


class ExamplesFormatter(argparse.HelpFormatter):
    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(HEADING):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)
