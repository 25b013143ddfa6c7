# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The adapter between the modules and the kubectl_state core library.

Modules stay thin: they build their argument_spec on connection_argument_spec(), make
their AnsibleModule with new_module(), call the core inside `with core_errors(module):`
and hand the result back. This file holds what they all share: importing the core (and
reporting it missing the Ansible way), the connection options, turning the core's
expected errors into fail_json, and the result shapes of etcd members.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    from kubectl_state.core.errors import KubectlStateError
except ImportError:
    HAS_KUBECTL_STATE = False
    KUBECTL_STATE_IMPORT_ERROR = traceback.format_exc()

    class KubectlStateError(Exception):  # type: ignore[no-redef]
        """Stands in so `except KubectlStateError` still parses; never raised."""

        message = ""
else:
    HAS_KUBECTL_STATE = True
    KUBECTL_STATE_IMPORT_ERROR = None

#: etcdctl's default endpoint, used when neither the option nor ETCDCTL_ENDPOINTS is set.
DEFAULT_ETCD_ENDPOINT = "http://127.0.0.1:2379"


def connection_argument_spec():
    """The options every module takes (see the connection doc fragment)."""
    return dict(
        etcd_endpoints=dict(type="list", elements="str", fallback=(env_fallback, ["ETCDCTL_ENDPOINTS"])),
        ca_cert=dict(type="path", fallback=(env_fallback, ["ETCDCTL_CACERT"])),
        client_cert=dict(type="path", fallback=(env_fallback, ["ETCDCTL_CERT"])),
        # A path to the key, not the key itself: nothing secret goes into the results.
        client_key=dict(type="path", no_log=False, fallback=(env_fallback, ["ETCDCTL_KEY"])),
        username=dict(type="str", fallback=(env_fallback, ["ETCDCTL_USER"])),
        password=dict(type="str", no_log=True, fallback=(env_fallback, ["ETCDCTL_PASSWORD"])),
        validate_certs=dict(type="bool", default=True),
        kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
        context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    )


#: The object filters of state_export, state_import and state_migrate (doc fragment `selection`).
SELECTION_OPTIONS = dict(
    namespaces=dict(type="list", elements="str", default=[]),
    selector=dict(type="str"),
    include_resources=dict(type="list", elements="str", default=[]),
    exclude_resources=dict(type="list", elements="str", default=[]),
)


def new_module(argument_spec, **kwargs):
    """An AnsibleModule with the shared options and check mode; fails when the core is missing."""
    spec = connection_argument_spec()
    spec.update(argument_spec)
    kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if not HAS_KUBECTL_STATE:
        module.fail_json(msg=missing_required_lib("kubectl-state"), exception=KUBECTL_STATE_IMPORT_ERROR)
    return module


@contextlib.contextmanager
def core_errors(module):
    """Turn the core's expected errors into a plain failure: its message, no traceback.

    `error` names the kind of failure and `exit_status` is what `kubectl state` would exit
    with (6: refused as unsafe, 4: unreachable, ...), so playbooks can tell them apart.
    Anything else is a bug and keeps Ansible's traceback.
    """
    try:
        yield
    except KubectlStateError as exc:
        module.fail_json(msg=exc.message, error=type(exc).__name__, exit_status=int(getattr(exc, "exit_status", 1)))


@contextlib.contextmanager
def warnings_to(module):
    """The core warns through `warnings` (TLS verification turned off, say); Ansible shows
    only what reaches module.warn, so pass each warning on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    for warning in caught:
        if not issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning)):
            module.warn(str(warning.message))
    if any(w.category.__name__ == "TlsVerificationOffWarning" for w in caught):
        # catch_warnings dropped the core's filter for urllib3's per-connection repeats; said once is enough.
        import urllib3

        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


def etcd_client(module, **overrides):
    """An EtcdClient from the shared connection options; `overrides` replace some of them (the
    endpoints and certificates of a second cluster, say)."""
    from kubectl_state.core.etcd.client import EtcdClient

    params = dict(module.params, **overrides)
    endpoints = [e.strip() for e in params.get("etcd_endpoints") or [] if e and e.strip()]
    if params.get("password") is not None and not params.get("username"):
        module.fail_json(msg="password needs username")
    with warnings_to(module):
        return EtcdClient(
            endpoints or [DEFAULT_ETCD_ENDPOINT],
            ca_file=params.get("ca_cert"),
            cert_file=params.get("client_cert"),
            key_file=params.get("client_key"),
            username=params.get("username"),
            password=params.get("password"),
            verify=params.get("validate_certs", True),
        )


def kube_client(module, **kwargs):
    """A KubeClient from the kubeconfig options (the client's own defaults when unset)."""
    from kubectl_state.core.kube.client import KubeClient

    with warnings_to(module):
        return KubeClient.from_kubeconfig(module.params.get("kubeconfig"), module.params.get("context"), **kwargs)


# --- etcd members as results ------------------------------------------------------------------


def member_facts(state):
    """One member (a MemberState of kubectl_state.core.etcd.members) as a result dict."""
    member = state.member
    status = state.status
    return dict(
        id=f"{member.id:x}",
        name=member.name,
        peer_urls=list(member.peer_urls),
        client_urls=list(member.client_urls),
        is_learner=member.is_learner,
        started=state.started,
        healthy=state.healthy,
        reason=state.reason,
        is_leader=state.is_leader,
        version=status.version if status else None,
        db_size=status.db_size if status else None,
        db_size_in_use=status.db_size_in_use if status else None,
        raft_term=status.raft_term if status else None,
        raft_index=status.raft_index if status else None,
        raft_applied_index=status.raft_applied_index if status else None,
        revision=status.revision if status else None,
    )


def member_line(name, member_id, peer_urls, is_learner):
    """One line of a member list in a diff: name, ID, role and peer URLs."""
    role = "learner" if is_learner else "voter"
    ident = f"{member_id:x}" if member_id is not None else "(new)"
    return "{} {} {} {}".format(name or "(unstarted)", ident, role, ",".join(peer_urls))


def members_text(states):
    """The member list of a diff side, one member per line, sorted so the diff is stable."""
    lines = sorted(member_line(s.member.name, s.member.id, s.member.peer_urls, s.member.is_learner) for s in states)
    return "".join(line + "\n" for line in lines)
