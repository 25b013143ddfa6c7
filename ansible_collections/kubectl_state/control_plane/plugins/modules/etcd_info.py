#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_info
short_description: Members, leader, versions, sizes, health and alarms of an etcd cluster
version_added: 0.1.0
description:
  - Lists every member of the etcd cluster reached through O(etcd_endpoints) and probes each one
    (in parallel, with a short timeout) for its status and health, as C(kubectl state etcd member list) does.
  - Reports the leader, each member's etcd version and database size, the active alarms, and whether the
    cluster has its quorum and how many more members it can lose.
  - Changes nothing.
author:
  - kubectl-state developers (@kubectl-state)
options:
  probe_timeout:
    description:
      - Seconds a member may take to answer its status and health probe before it counts as unhealthy.
    type: float
    default: 3.0
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
attributes:
  check_mode:
    support: full
    description: Reads only, so check mode runs the same.
  diff_mode:
    support: none
    description: Reads only.
"""

EXAMPLES = r"""
- name: Look at the etcd cluster
  kubectl_state.control_plane.etcd_info:
    etcd_endpoints:
      - https://10.0.0.11:2379
      - https://10.0.0.12:2379
    ca_cert: /etc/etcd/pki/ca.crt
    client_cert: /etc/etcd/pki/client.crt
    client_key: /etc/etcd/pki/client.key
  register: etcd

- name: Stop unless every voting member is healthy
  ansible.builtin.assert:
    that: etcd.quorum.healthy_voters == etcd.quorum.voters
    fail_msg: "unhealthy etcd members: {{ etcd.members | rejectattr('healthy') | map(attribute='name') | list }}"
"""

RETURN = r"""
members:
  description: Every member, with what its probe found. Learners count as healthy when they answer with a known leader.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Member ID in hex, as etcdctl prints it.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name; empty until the member has started.
      type: str
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
    client_urls:
      description: Client URLs; empty until the member has started.
      type: list
      elements: str
    is_learner:
      description: Whether the member is a learner (does not vote).
      type: bool
    started:
      description: Whether the member has started and published its name and client URLs.
      type: bool
    healthy:
      description: Whether the member answered its probe as healthy.
      type: bool
    reason:
      description: Why the member is unhealthy; empty when healthy.
      type: str
    is_leader:
      description: Whether the member is the raft leader.
      type: bool
    version:
      description: etcd version of the member; null when it did not answer.
      type: str
      sample: 3.5.17
    db_size:
      description: Size of the member's database file in bytes.
      type: int
    db_size_in_use:
      description: Bytes of the database in use (the rest is reclaimable by defragmenting).
      type: int
    raft_term:
      description: Raft term.
      type: int
    raft_index:
      description: Raft index.
      type: int
    raft_applied_index:
      description: Raft applied index.
      type: int
    revision:
      description: Key-value store revision seen by the member.
      type: int
leader:
  description: The leader (id and name), or null when no member reports one.
  returned: always
  type: dict
  sample: {"id": "8e9e05c52164694d", "name": "etcd-1"}
alarms:
  description: Active alarms.
  returned: always
  type: list
  elements: dict
  sample: [{"member_id": "8e9e05c52164694d", "member": "etcd-1", "alarm": "NOSPACE"}]
quorum:
  description: Quorum arithmetic of the voting members as seen now.
  returned: always
  type: dict
  contains:
    voters:
      description: Voting members.
      type: int
    healthy_voters:
      description: Voting members that answered healthy.
      type: int
    learners:
      description: Learners.
      type: int
    quorum:
      description: Voting members needed to commit anything.
      type: int
    fault_tolerance:
      description: Voting members the cluster can lose and keep its quorum.
      type: int
    has_quorum:
      description: Whether enough voting members are healthy to commit changes.
      type: bool
cluster_id:
  description: Cluster ID in hex, from the first member that answered; null when none did.
  returned: always
  type: str
"""

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    core_errors,
    etcd_client,
    member_facts,
    new_module,
)


def main():
    module = new_module(dict(probe_timeout=dict(type="float", default=3.0)))
    from kubectl_state.core.etcd import quorum
    from kubectl_state.core.etcd.members import cluster_state, health_map

    with core_errors(module), etcd_client(module) as client:
        states = cluster_state(client, timeout=module.params["probe_timeout"])
        alarms = client.alarms()
    summary = quorum.summarize(quorum.views(states, health_map(states)))
    leader = next((s for s in states if s.is_leader), None)
    cluster_id = next((f"{s.status.cluster_id:x}" for s in states if s.status is not None), None)
    names = {s.id: s.name for s in states}
    module.exit_json(
        changed=False,
        members=[member_facts(s) for s in states],
        leader=dict(id=f"{leader.id:x}", name=leader.name) if leader else None,
        alarms=[dict(member_id="{:x}".format(a["member_id"]), member=names.get(a["member_id"], ""), alarm=a["alarm"])
                for a in alarms],
        quorum=dict(
            voters=summary.voters,
            healthy_voters=summary.healthy_voters,
            learners=summary.learners,
            quorum=summary.quorum,
            fault_tolerance=summary.fault_tolerance,
            has_quorum=summary.has_quorum,
        ),
        cluster_id=cluster_id,
    )


if __name__ == "__main__":
    main()
