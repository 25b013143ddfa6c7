#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: control_plane_plan
short_description: The checked step plan of a control-plane lifecycle operation
version_added: 0.1.0
description:
  - Compares the control plane the inventory asks for (O(etcd), O(control_plane), and the hosts being taken
    out, O(etcd_remove), O(control_plane_remove) and O(endpoint_remove)) with what runs now (the etcd member
    list with each member's health, read through O(etcd_endpoints), and the API endpoint's backend servers,
    read through HAProxy's runtime API on O(endpoint_socket)) and returns the ordered steps of O(operation).
  - O(operation=migrate) moves a running control plane to new hosts. The new members join, the new replicas
    start and join the endpoint, the old replicas and members leave. With O(endpoint_remove), the endpoint
    moves too; the new one starts and is filled with every replica of O(control_plane) before the old one
    stops. O(operation=scale) plans the same way under its own name.
  - O(operation=pivot) plans the hand-over from a bootstrap control plane (one host, named in
    O(plan_options)) to the control plane of the inventory, the target. The bootstrap's etcd is read
    through its own client URL with a second etcd client, as the target's is read through O(etcd_endpoints).
  - Every membership change of the plan is checked with the quorum rules of C(kubectl state etcd member)
    before anything runs. A plan with an unsafe step fails with the reason (and C(exit_status=6)) and
    plans nothing; the lifecycle playbooks run this module first, so they change nothing either.
  - Only reads. Run it where HAProxy's socket is (delegate it to the endpoint host).
author:
  - kubectl-state developers (@kubectl-state)
options:
  operation:
    description:
      - The lifecycle operation to plan.
    type: str
    required: true
    choices: [create, scale, migrate, repair, upgrade, backup, restore, delete, pivot]
  etcd:
    description:
      - The etcd members the inventory wants, in inventory order (the first forms a new cluster).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The member's name (its C(--name)).
        type: str
        required: true
      peer_url:
        description: The member's peer URL.
        type: str
        required: true
      client_url:
        description: The member's client URL.
        type: str
  etcd_remove:
    description:
      - etcd members to take out of the cluster (for O(operation=scale) and O(operation=migrate)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The member's name.
        type: str
        required: true
      peer_url:
        description: The member's peer URL.
        type: str
        required: true
      client_url:
        description: The member's client URL.
        type: str
  control_plane:
    description:
      - The API server replicas the inventory wants.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The replica's server name in the endpoint's backend.
        type: str
        required: true
      address:
        description: The replica's V(HOST:PORT).
        type: str
        required: true
  control_plane_remove:
    description:
      - API server replicas to take out of the endpoint and stop.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The replica's server name in the endpoint's backend.
        type: str
        required: true
      address:
        description: The replica's V(HOST:PORT).
        type: str
        required: true
  endpoint:
    description:
      - The host that runs the API endpoint (HAProxy).
    type: str
    required: true
  endpoint_socket:
    description:
      - HAProxy's runtime API socket on this host. A missing socket means the endpoint is not running.
    type: str
  endpoint_backend:
    description:
      - The endpoint's backend of API servers (on O(endpoint_remove) too).
    type: str
    default: kube-apiservers
  endpoint_remove:
    description:
      - The host the API endpoint moves away from (for O(operation=migrate) and O(operation=scale)); unset
        when the endpoint stays on O(endpoint).
    type: str
  endpoint_remove_running:
    description:
      - Whether HAProxy runs on O(endpoint_remove) (its runtime API socket is there). Its runtime API is a
        socket on that host, not on the one this module runs on, so the playbook looks there and says.
    type: bool
    default: false
  endpoint_remove_config:
    description:
      - The text of the HAProxy configuration file on O(endpoint_remove), whose O(endpoint_backend) section
        lists the replicas behind it (M(kubectl_state.control_plane.api_endpoint_member) keeps the file in
        step with the runtime API). Empty when there is none.
    type: str
    default: ""
  etcd_version:
    description:
      - With O(operation=upgrade), the etcd version the members are upgraded to (as their status reports it,
        V(3.5.21)); members at that version are left alone. Unset, every member is restarted.
    type: str
  outdated_apiservers:
    description:
      - With O(operation=upgrade), O(operation=scale) or O(operation=migrate), the running API server replicas
        whose command line changes (a new binary, other etcd servers), to be replaced by surge.
    type: list
    elements: str
    default: []
  plan_options:
    description:
      - Settings of the operation's plan that the inventory does not give.
      - For O(operation=backup), C(backup_host) (the host that keeps the backups; required), C(export) (bool,
        an API-level export too), C(retention) and C(schedule) (one-line descriptions shown in the plan) or
        C(unschedule) (bool).
      - For O(operation=restore), C(snapshot) (required), C(archive) (an API-level export to import afterwards)
        and C(backup_host).
      - For O(operation=pivot), C(bootstrap) (required), a dict with the bootstrap host's C(name), its etcd
        member's C(peer_url) and C(client_url), its API server's C(address) (V(HOST:PORT)), C(has_data) (bool,
        whether its etcd data dir exists) and optionally C(ca_cert), C(client_cert) and C(client_key) for its
        etcd (by default those of the module); C(level) (V(etcd), the default, or V(api)); C(target_data) (the
        target hosts whose etcd data dir exists, refused at the etcd level); C(move) (bool, the copied objects
        are deleted from the bootstrap); C(bootstrap_only) (bool, plan the endpoint and the bootstrap only);
        C(pivot_dir) (where the snapshot and exports go, shown in the plan).
      - An option the operation does not take fails the module with its name.
    type: dict
    default: {}
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
notes:
  - O(etcd_endpoints) defaults to the client URLs of O(etcd) and O(etcd_remove).
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode plans the same.
  diff_mode:
    support: none
    description: It changes nothing, so there is no diff.
"""

EXAMPLES = r"""
- name: Plan the scale to the inventory
  kubectl_state.control_plane.control_plane_plan:
    operation: scale
    etcd:
      - {name: etcd-1, peer_url: "https://10.0.0.11:2380", client_url: "https://10.0.0.11:2379"}
      - {name: etcd-2, peer_url: "https://10.0.0.12:2380", client_url: "https://10.0.0.12:2379"}
      - {name: etcd-3, peer_url: "https://10.0.0.13:2380", client_url: "https://10.0.0.13:2379"}
    etcd_remove:
      - {name: etcd-4, peer_url: "https://10.0.0.14:2380", client_url: "https://10.0.0.14:2379"}
    control_plane:
      - {name: cp-1, address: "10.0.0.21:6443"}
    endpoint: lb-1
    endpoint_socket: /run/haproxy/admin.sock
  delegate_to: lb-1
  register: plan

- name: Show it
  ansible.builtin.debug:
    var: plan.plan

- name: Plan the migration of a control plane to new hosts, the endpoint moving from lb-1 to lb-2
  kubectl_state.control_plane.control_plane_plan:
    operation: migrate
    etcd:
      - {name: etcd-4, peer_url: "https://10.0.0.14:2380", client_url: "https://10.0.0.14:2379"}
    etcd_remove:
      - {name: etcd-1, peer_url: "https://10.0.0.11:2380", client_url: "https://10.0.0.11:2379"}
    control_plane:
      - {name: cp-2, address: "10.0.0.22:6443"}
    control_plane_remove:
      - {name: cp-1, address: "10.0.0.21:6443"}
    endpoint: lb-2
    endpoint_socket: /run/haproxy/admin.sock
    endpoint_remove: lb-1
    endpoint_remove_running: true
    endpoint_remove_config: "{{ lb1_haproxy_cfg }}"
  delegate_to: lb-2

- name: Plan the pivot from the bootstrap on boot-1 into the inventory's control plane, at the etcd level
  kubectl_state.control_plane.control_plane_plan:
    operation: pivot
    etcd:
      - {name: etcd-1, peer_url: "https://10.0.0.11:2380", client_url: "https://10.0.0.11:2379"}
    control_plane:
      - {name: cp-1, address: "10.0.0.21:6443"}
    endpoint: lb-1
    endpoint_socket: /run/haproxy/admin.sock
    plan_options:
      bootstrap:
        name: boot-1
        peer_url: "https://10.0.0.10:2380"
        client_url: "https://10.0.0.10:2379"
        address: "10.0.0.10:6443"
        has_data: true
      level: etcd
      target_data: []
  delegate_to: lb-1
"""

RETURN = r"""
plan:
  description: The steps as numbered lines, then notes on what is left alone.
  returned: success
  type: list
  elements: str
  sample: ["1. add etcd member etcd-4 as a learner (peer https://10.0.0.14:2380)", "2. start etcd member etcd-4"]
steps:
  description: The steps, each with C(action), C(host), C(detail) and C(text).
  returned: success
  type: list
  elements: dict
hosts:
  description: For each action of the plan, the hosts it applies to in plan order (what playbooks loop over).
  returned: success
  type: dict
  sample: {add_learner: [etcd-4], promote: [etcd-4]}
bootstrap:
  description: The host that forms a new etcd cluster, or an empty string when a cluster runs already.
  returned: success
  type: str
bootstrap_members:
  description:
    - With O(operation=pivot), the bootstrap's etcd members as observed through its client URL, each with the
      keys of RV(members); empty when none answers.
  returned: success
  type: list
  elements: dict
members:
  description:
    - The etcd members as observed, each with id, name, peer_urls, is_learner, started, healthy, is_leader,
      version and reason (why it is unhealthy).
  returned: success
  type: list
  elements: dict
backends:
  description: The endpoint's backend servers as observed (name to V(HOST:PORT)).
  returned: success
  type: dict
leaving_backends:
  description: The backend servers of O(endpoint_remove) as its configuration lists them, when it runs.
  returned: success
  type: dict
"""

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    core_errors,
    etcd_client,
    new_module,
)

ETCD_HOST = dict(name=dict(type="str", required=True), peer_url=dict(type="str", required=True),
                 client_url=dict(type="str"))
API_SERVER = dict(name=dict(type="str", required=True), address=dict(type="str", required=True))
#: The bootstrap's etcd certificates in plan_options.bootstrap: for the second client, not the planner.
BOOTSTRAP_TLS = ("ca_cert", "client_cert", "client_key")


def flag(name, value):
    """A yes/no plan option as a bool: plan_options is a free dict, so Ansible has not converted it."""
    from kubectl_state.core.errors import InvalidInputError

    try:
        return boolean(value)
    except TypeError:
        raise InvalidInputError(f"plan_options {name} is true or false, not {value!r}") from None


def observed_bootstrap(module, options):
    """plan_options.bootstrap as the planner takes it: the host, with its etcd members as they answer
    through its client URL (a second client: the bootstrap is a cluster of its own)."""
    from kubectl_state.core.lifecycle.observe import etcd_members
    from kubectl_state.core.lifecycle.pivot import bootstrap_host

    entry = options.get("bootstrap")
    if isinstance(entry, dict):
        entry = dict(entry)
        tls = {key: entry.pop(key) for key in BOOTSTRAP_TLS if entry.get(key)}
        if "has_data" in entry:
            entry["has_data"] = flag("bootstrap.has_data", entry["has_data"])
    else:
        # Not a dict (or missing): bootstrap_host refuses it with what it wants instead.
        tls = {}
    bootstrap = bootstrap_host(entry)
    with etcd_client(module, etcd_endpoints=[bootstrap.etcd.client_url], **tls) as client:
        return bootstrap.found(etcd_members(client))


def member_results(members):
    return [dict(id=f"{m.id:x}", name=m.name, peer_urls=list(m.peer_urls), is_learner=m.is_learner,
                 started=m.started, healthy=m.healthy, is_leader=m.is_leader, version=m.version,
                 reason=m.reason) for m in members]


def main():
    module = new_module(
        dict(
            operation=dict(type="str", required=True,
                           choices=["create", "scale", "migrate", "repair", "upgrade", "backup", "restore",
                                    "delete", "pivot"]),
            etcd=dict(type="list", elements="dict", required=True, options=ETCD_HOST),
            etcd_remove=dict(type="list", elements="dict", default=[], options=ETCD_HOST),
            control_plane=dict(type="list", elements="dict", required=True, options=API_SERVER),
            control_plane_remove=dict(type="list", elements="dict", default=[], options=API_SERVER),
            endpoint=dict(type="str", required=True),
            endpoint_socket=dict(type="str"),
            endpoint_backend=dict(type="str", default="kube-apiservers"),
            endpoint_remove=dict(type="str"),
            endpoint_remove_running=dict(type="bool", default=False),
            endpoint_remove_config=dict(type="str", default=""),
            etcd_version=dict(type="str"),
            outdated_apiservers=dict(type="list", elements="str", default=[]),
            plan_options=dict(type="dict", default={}),
        ),
    )
    from kubectl_state.core.lifecycle.observe import observe
    from kubectl_state.core.lifecycle.planner import plan
    from kubectl_state.core.lifecycle.steps import Action
    from kubectl_state.core.lifecycle.topology import Topology, api_servers, etcd_hosts

    params = module.params
    with core_errors(module):
        topology = Topology(
            etcd=etcd_hosts(params["etcd"], "etcd"),
            etcd_remove=etcd_hosts(params["etcd_remove"], "etcd_remove"),
            control_plane=api_servers(params["control_plane"], "control_plane"),
            control_plane_remove=api_servers(params["control_plane_remove"], "control_plane_remove"),
            endpoint=params["endpoint"],
            endpoint_remove=params["endpoint_remove"] or "",
        )
        if not params["etcd_endpoints"]:
            params["etcd_endpoints"] = topology.client_urls()
        with etcd_client(module) as client:
            observed = observe(client, params["endpoint_socket"] or "", params["endpoint_backend"],
                               leaving_config=params["endpoint_remove_config"] if topology.endpoint_moves else "",
                               leaving_running=topology.endpoint_moves and params["endpoint_remove_running"])
        options = {}
        if params["operation"] in ("scale", "migrate", "upgrade"):
            options["outdated_apiservers"] = params["outdated_apiservers"]
        if params["operation"] == "upgrade":
            options["etcd_version"] = params["etcd_version"]
        options.update(params["plan_options"])
        bootstrap = None
        if params["operation"] == "pivot":
            bootstrap = options["bootstrap"] = observed_bootstrap(module, options)
            for name in ("move", "bootstrap_only"):
                if name in options:
                    options[name] = flag(name, options[name])
        checked = plan(params["operation"], topology, observed, **options)
    hosts = {}
    for step in checked.steps:
        hosts.setdefault(step.action.value, []).append(step.host)
    module.exit_json(
        changed=False,
        plan=checked.lines(),
        steps=[s.to_dict() for s in checked.steps],
        notes=list(checked.notes),
        hosts=hosts,
        bootstrap=next(iter(checked.hosts(Action.FORM_CLUSTER)), ""),
        members=member_results(observed.members),
        bootstrap_members=member_results(bootstrap.members) if bootstrap else [],
        backends=dict(observed.backends),
        leaving_backends=dict(observed.leaving_backends),
    )


if __name__ == "__main__":
    main()
