#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_member
short_description: Add, promote or remove one etcd member without costing quorum
version_added: 0.1.0
description:
  - Makes one member of the etcd cluster reached through O(etcd_endpoints) present, promoted or absent,
    with the same safety rules as C(kubectl state etcd member add|promote|remove).
  - A new member joins as a learner. Start it with the returned RV(initial_cluster) and
    C(--initial-cluster-state=existing); with O(promote=auto) a later run promotes it once it has started
    and caught up with the leader.
  - Every change is checked first against the health of all members; one that would leave the cluster
    without quorum is refused with the reason as the failure message (override with O(force)).
  - The member is found by O(name), or by O(peer_urls) while it has not started yet (etcd learns a
    member's name only when it starts).
author:
  - kubectl-state developers (@kubectl-state)
options:
  name:
    description:
      - The member's name (its C(--name)).
    type: str
    required: true
  peer_urls:
    description:
      - The member's peer URLs. Needed to add it; otherwise used to find a member that has not started yet.
    type: list
    elements: str
  state:
    description:
      - V(present) adds the member when it is missing (as a learner unless O(learner=false)), and with
        O(promote=auto) promotes it once it has started.
      - V(promoted) makes an existing member a voting member, waiting up to O(promote_timeout) seconds for
        it to catch up with the leader. It fails for a member that is missing or has not started.
      - V(absent) removes the member, handing leadership over first when it is the leader.
    type: str
    choices: [present, promoted, absent]
    default: present
  learner:
    description:
      - Add a missing member as a learner (recommended). V(false) adds a voting member straight away,
        which raises the quorum before the member has started and is refused when that would cost quorum.
    type: bool
    default: true
  promote:
    description:
      - With O(state=present), what to do with a member that is a learner.
      - V(auto) promotes it once it has started (a learner that has not started is left as it is),
        waiting up to O(promote_timeout) seconds for it to catch up.
      - V(never) leaves it a learner.
    type: str
    choices: [auto, never]
    default: auto
  promote_timeout:
    description:
      - Seconds to wait for a learner to catch up with the leader before giving up on promoting it.
    type: float
    default: 60.0
  settle_timeout:
    description:
      - When the check refuses only because some member does not answer as healthy, re-check for up to this
        many seconds before failing. Right after a member joins, is promoted or leaves, the others often need
        a moment to answer their health checks again. V(0) refuses at once.
    type: float
    default: 20.0
  force:
    description:
      - Skip the quorum safety checks. etcd's own checks still apply. Only for repairing a cluster that has
        already lost quorum.
    type: bool
    default: false
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
attributes:
  check_mode:
    support: full
    description: Reports what would change and runs the same quorum checks, changing nothing.
  diff_mode:
    support: full
    description: The member list before and after.
"""

EXAMPLES = r"""
- name: Add etcd-4 as a learner
  kubectl_state.control_plane.etcd_member:
    name: etcd-4
    peer_urls: [https://10.0.0.14:2380]
    etcd_endpoints: [https://10.0.0.11:2379]
  register: added

- name: Start etcd-4 with the membership etcd expects
  ansible.builtin.template:
    src: etcd.env.j2
    dest: /etc/etcd/etcd.env
  vars:
    initial_cluster: "{{ added.initial_cluster }}"
    initial_cluster_state: "{{ added.initial_cluster_state }}"
  when: added.action == 'added'

- name: Promote etcd-4 once it has caught up
  kubectl_state.control_plane.etcd_member:
    name: etcd-4
    state: promoted
    etcd_endpoints: [https://10.0.0.11:2379]

- name: Remove etcd-1 (refused if that would cost quorum)
  kubectl_state.control_plane.etcd_member:
    name: etcd-1
    state: absent
    etcd_endpoints: [https://10.0.0.12:2379, https://10.0.0.13:2379]
"""

RETURN = r"""
action:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: str
  choices: [added, promoted, removed, none]
member:
  description:
    - The member after the change, as M(kubectl_state.control_plane.etcd_info) describes members.
    - Null when it is (or would be) absent, or while a member added in check mode does not exist yet.
  returned: always
  type: dict
members:
  description:
    - Every member after the change (before it, in check mode),
      as M(kubectl_state.control_plane.etcd_info) describes members.
  returned: always
  type: list
  elements: dict
initial_cluster:
  description: The C(--initial-cluster) value the new member must start with (every member, itself included).
  returned: when the member was added, or exists but has not started yet
  type: str
  sample: etcd-1=https://10.0.0.11:2380,etcd-2=https://10.0.0.12:2380,etcd-4=https://10.0.0.14:2380
initial_cluster_state:
  description: The C(--initial-cluster-state) the new member must start with.
  returned: when the member was added, or exists but has not started yet
  type: str
  sample: existing
"""

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    core_errors,
    etcd_client,
    member_facts,
    member_line,
    members_text,
    new_module,
)


def find_member(module, states):
    """The member meant by name (or, while it has not started, by peer URLs); None if missing."""
    name = module.params["name"]
    wanted = set(module.params["peer_urls"] or [])
    by_name = [s for s in states if s.name == name]
    by_peer = [s for s in states if wanted and wanted & set(s.member.peer_urls)]
    for s in by_peer:
        if s.name and s.name != name:
            taken = ", ".join(sorted(wanted & set(s.member.peer_urls)))
            module.fail_json(msg=f"peer URLs {taken} belong to etcd member {s.name} ({s.id:x}), not {name}")
    found = by_name[0] if by_name else (by_peer[0] if by_peer else None)
    if found is not None and wanted and set(found.member.peer_urls) != wanted:
        module.fail_json(msg=f"etcd member {name} ({found.id:x}) has peer URLs {','.join(found.member.peer_urls)}, "
                             f"not {','.join(sorted(wanted))}; remove it and add it again to change them")
    return found


def plan(module, target):
    """The action for the wanted state and what the member is now."""
    state = module.params["state"]
    name = module.params["name"]
    if state == "absent":
        return "removed" if target is not None else "none"
    if target is None:
        if state == "promoted":
            module.fail_json(msg=f"etcd member {name} is not in the cluster: add it with state=present, start it, "
                                 "then promote it")
        if not module.params["peer_urls"]:
            module.fail_json(msg=f"adding etcd member {name} needs peer_urls")
        return "added"
    if not target.is_learner:
        return "none"
    if state == "promoted":
        if not target.started:
            module.fail_json(msg=f"learner {name} ({target.id:x}) has not started yet: start it with "
                                 "--initial-cluster-state=existing, then promote it")
        return "promoted"
    if module.params["promote"] == "auto" and target.started:
        return "promoted"
    return "none"


def predicted_text(module, states, target, action):
    """The member list a check-mode run would leave, in the diff's format."""
    lines = []
    for s in states:
        if target is not None and s.id == target.id:
            if action == "removed":
                continue
            if action == "promoted":
                lines.append(member_line(s.name, s.id, s.member.peer_urls, False))
                continue
        lines.append(member_line(s.name, s.id, s.member.peer_urls, s.is_learner))
    if action == "added":
        lines.append(member_line("", None, module.params["peer_urls"], module.params["learner"]))
    return "".join(line + "\n" for line in sorted(lines))


def main():
    module = new_module(
        dict(
            name=dict(type="str", required=True),
            peer_urls=dict(type="list", elements="str"),
            state=dict(type="str", default="present", choices=["present", "promoted", "absent"]),
            learner=dict(type="bool", default=True),
            promote=dict(type="str", default="auto", choices=["auto", "never"]),
            promote_timeout=dict(type="float", default=60.0),
            settle_timeout=dict(type="float", default=20.0),
            force=dict(type="bool", default=False),
        ),
    )
    from kubectl_state.core.etcd import quorum
    from kubectl_state.core.etcd.members import (
        add_member,
        cluster_state,
        health_map,
        initial_cluster_for,
        promote_member,
        remove_member,
    )

    params = module.params
    force = params["force"]
    result = dict(changed=False, action="none")
    with core_errors(module), etcd_client(module) as client:
        states = cluster_state(client)
        target = find_member(module, states)
        action = plan(module, target)
        before = members_text(states)
        if module.check_mode:
            # The same quorum rules as the real run, so check mode fails where it would.
            if not force and action == "added":
                quorum.check_add(states, health_map(states), learner=params["learner"])
            elif not force and action == "promoted":
                quorum.check_promote(states, health_map(states), target.id)
            elif not force and action == "removed":
                quorum.check_remove(states, health_map(states), target.id)
            after_text = predicted_text(module, states, target, action)
            after = states
        else:
            if action == "added":
                added = add_member(client, params["name"], params["peer_urls"], learner=params["learner"],
                                   force=force, settle=params["settle_timeout"])
                result.update(initial_cluster=added.initial_cluster,
                              initial_cluster_state=added.initial_cluster_state)
            elif action == "promoted":
                promote_member(client, target.id, timeout=params["promote_timeout"], force=force)
            elif action == "removed":
                remove_member(client, target.id, force=force, settle=params["settle_timeout"])
            after = cluster_state(client) if action != "none" else states
            after_text = members_text(after)
    result["action"] = action
    result["changed"] = action != "none"
    found = None if action == "removed" else find_member(module, after)
    result["member"] = member_facts(found) if found is not None else None
    result["members"] = [member_facts(s) for s in after]
    if found is not None and not found.member.name and "initial_cluster" not in result:
        # Added by an earlier run that failed before the member started: that run's
        # start flags are what the playbook still needs.
        result.update(initial_cluster=initial_cluster_for([s.member for s in after], params["name"],
                                                          found.member.peer_urls),
                      initial_cluster_state="existing")
    if module._diff:
        result["diff"] = dict(before=before, after=after_text,
                              before_header="etcd members", after_header="etcd members")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
