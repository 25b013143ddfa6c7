"""The frozen executable's entry point (PyInstaller runs this file as __main__).

One binary serves both names kubectl looks for: `kubectl-state` (the plugin) and
`kubectl_complete-state` (its shell completion, kubectl 1.26+), so a symlink of the second
name to the first is all a krew install needs for completion.
"""

import sys

from kubectl_state.cli.completion import COMPLETION_EXECUTABLE, invoked_as, main_complete
from kubectl_state.cli.main import main

if __name__ == "__main__":
    sys.exit(main_complete() if invoked_as(sys.argv[0]) == COMPLETION_EXECUTABLE else main())
