"""kubectl-state: back up, restore, migrate and pivot a Kubernetes control plane's state.

The version below is the single source of truth: setup.cfg, galaxy.yml, krew-manifest.yaml
and `kubectl state version` all read it from here.
"""

__version__ = "0.1.0"
