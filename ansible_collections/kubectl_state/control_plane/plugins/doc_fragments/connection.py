# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    # Every module of the collection takes all of these, so that one
    # module_defaults group (group/kubectl_state.control_plane.control_plane) can set them
    # for a whole play; each module uses the ones it needs and ignores the rest.
    DOCUMENTATION = r"""
options:
  etcd_endpoints:
    description:
      - Client URLs of etcd members (V(https://10.0.0.1:2379)); any member that answers serves a request.
      - Used by the etcd modules. Defaults to E(ETCDCTL_ENDPOINTS), then V(http://127.0.0.1:2379).
    type: list
    elements: str
  ca_cert:
    description:
      - CA bundle that signed the etcd members' server certificates.
      - Defaults to E(ETCDCTL_CACERT).
    type: path
  client_cert:
    description:
      - Client certificate presented to etcd.
      - Defaults to E(ETCDCTL_CERT).
    type: path
  client_key:
    description:
      - Private key of O(client_cert).
      - Defaults to E(ETCDCTL_KEY).
    type: path
  username:
    description:
      - etcd user, when etcd authentication is enabled.
      - Defaults to E(ETCDCTL_USER).
    type: str
  password:
    description:
      - Password of O(username). Never shown in results or logs.
      - Defaults to E(ETCDCTL_PASSWORD).
    type: str
  validate_certs:
    description:
      - Verify the etcd members' certificates. Turn off only for tests.
    type: bool
    default: true
  kubeconfig:
    description:
      - Kubeconfig file of the cluster, for the Kubernetes API modules (M(kubectl_state.control_plane.state_export)).
      - Defaults to E(K8S_AUTH_KUBECONFIG), then the client's own default (E(KUBECONFIG), then C(~/.kube/config)).
    type: path
  context:
    description:
      - Kubeconfig context to use instead of the current one.
      - Defaults to E(K8S_AUTH_CONTEXT).
    type: str
requirements:
  - kubectl-state (the Python package, C(pip install kubectl-state)) on the host that runs the module
notes:
  - >-
    All modules of the collection share these options and belong to the action group
    C(kubectl_state.control_plane.control_plane), so
    C(module_defaults: {group/kubectl_state.control_plane.control_plane: {etcd_endpoints: ...}}) sets them once.
"""
