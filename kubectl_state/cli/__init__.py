"""The thin `kubectl state` front end: flags, output, progress and exit codes."""
