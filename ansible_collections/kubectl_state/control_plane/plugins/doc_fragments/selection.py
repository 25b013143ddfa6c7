# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    # Which objects an export, import or migration takes: the same four filters as the
    # `kubectl state` commands' -n, -l, --include-resources and --exclude-resources, with one
    # meaning everywhere (kubectl_state.core.transform.selectors).
    DOCUMENTATION = r"""
options:
  namespaces:
    description:
      - Only objects of these namespaces (as named in the source), and the cluster-scoped objects they need.
        By default every namespace.
    type: list
    elements: str
    default: []
  selector:
    description:
      - Only objects matching this label selector (V(app=web,tier!=cache)).
    type: str
  include_resources:
    description:
      - Only these resources (V(deployments), V(deployments.apps), V(widgets.example.com), kubectl short names).
        Also brings back resources skipped by default.
    type: list
    elements: str
    default: []
  exclude_resources:
    description:
      - Leave these resources out.
    type: list
    elements: str
    default: []
"""
