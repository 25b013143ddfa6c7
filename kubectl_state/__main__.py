"""`python -m kubectl_state` behaves exactly like the `kubectl-state` console script."""

import sys

from kubectl_state.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
