"""The shared core of kubectl-state.

Everything both faces (the `kubectl state` CLI and the Ansible collection) need lives
here. The core never parses command lines, never prints and never imports `cli` or the
Ansible collection; it raises errors from `kubectl_state.core.errors` and returns data.

Layers, lowest first (a layer may import only the layers before it; see .importlinter):
errors -> archive, endpoint, etcd, kube -> transform -> plan -> workflows -> lifecycle.
"""
