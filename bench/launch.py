"""Run one command and report its wall time and peak RSS, measured from a small process.

Linux counts a process's memory from before its exec() in ru_maxrss: a command forked
from a large benchmark runner would inherit the runner's size as its "peak". So the runner
starts this small script, which forks the command from its own few megabytes, waits for
it with wait4 and writes the figures as JSON to the file named by its first argument.

    python bench/launch.py RESULT.json COMMAND [ARG...]
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    result_path, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: become the command
        try:
            os.execvp(argv[0], argv)  # noqa: S606 - running the measured command is the point
        finally:
            os._exit(127)
    _, status, rusage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(result_path, "w") as handle:
        # ru_maxrss is in KiB on Linux.
        json.dump({"wall_s": wall, "peak_rss_kb": rusage.ru_maxrss,
                   "returncode": os.waitstatus_to_exitcode(status)}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
