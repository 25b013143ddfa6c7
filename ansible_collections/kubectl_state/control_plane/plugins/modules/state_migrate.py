#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: state_migrate
short_description: Copy or move a cluster's objects into another cluster, pausing what would fight the copy
version_added: 0.1.0
description:
  - Exports the selected objects of the source cluster (O(kubeconfig)/O(context)) and imports them into the target
    cluster (O(to_kubeconfig)/O(to_context)) in plan order, owner references relinked to the target's uids, as
    C(kubectl state migrate) does. No archive is written unless O(keep) names one.
  - Before copying, objects matching the pause rules (default, Cluster API C(Cluster.spec.paused=true)) are paused in
    the source, and objects carrying the C(clusterctl.cluster.x-k8s.io/block-move) annotation are waited for.
  - With O(move), the moved objects are deleted from the source afterwards (dependents first), and only when every
    selected object arrived in the target. On any failure nothing is deleted, the source is unpaused, and the module
    fails with the whole report, which says what exists in the target.
  - Pauses are journaled in O(journal), so a killed run is undone by the next run of the same task.
author:
  - kubectl-state developers (@kubectl-state)
options:
  to_kubeconfig:
    description:
      - Kubeconfig file of the target cluster. Defaults to O(kubeconfig).
    type: path
  to_context:
    description:
      - Kubeconfig context of the target cluster.
    type: str
  namespace_mapping:
    description:
      - Objects of namespace KEY go to namespace VALUE in the target.
    type: dict
    default: {}
  move:
    description:
      - Delete the moved objects from the source once all of them are in the target.
    type: bool
    default: false
  pause_rules:
    description:
      - Replace the default pause rules; each rule is a dict with C(group) (V("") for the core group), C(kind),
        C(path) (V(spec.paused) or a JSON pointer) and C(value). V([]) pauses nothing.
    type: list
    elements: dict
  keep:
    description:
      - Also write the export to this archive (a directory or C(.tar.gz)) and import from it.
    type: path
  existing:
    description:
      - An object that already exists in the target and differs is skipped, updated (server-side apply) or failed.
    type: str
    choices: [skip, update, fail]
    default: fail
  concurrency:
    description:
      - Objects written at once.
    type: int
    default: 8
  timeout:
    description:
      - Seconds to wait for block-move annotations to go and for CRDs to become Established.
    type: float
    default: 300.0
  journal:
    description:
      - Where pauses are recorded until undone. Default, a file under C($XDG_STATE_HOME/kubectl-state/migrations/)
        keyed by both clusters, as C(kubectl state migrate) uses.
    type: path
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
  - kubectl_state.control_plane.selection
attributes:
  check_mode:
    support: full
    description: The plan only (C(kubectl state migrate --dry-run)); nothing is paused, written or deleted.
  diff_mode:
    support: none
    description: The report in RV(report) says what changed where.
"""

EXAMPLES = r"""
- name: Pivot the Cluster API objects from the bootstrap cluster into the management cluster
  kubectl_state.control_plane.state_migrate:
    kubeconfig: /etc/kubernetes/bootstrap.conf
    to_kubeconfig: /etc/kubernetes/admin.conf
    namespaces: [capi-clusters]
    move: true
"""

RETURN = r"""
summary:
  description: Counts of the migration.
  returned: always
  type: dict
  sample: {"planned": 40, "moved": 40, "notMoved": 0, "deletedFromSource": 40, "leftBehind": 1, "paused": 2}
report:
  description: >-
    The report as C(kubectl state migrate -o json) prints it: every object with its outcome and whether it exists in
    the target, what was paused, deleted from the source and left behind (with the reason).
  returned: always
  type: dict
"""

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    SELECTION_OPTIONS,
    core_errors,
    kube_client,
    new_module,
)


def migrate_options(module, journal):
    from kubectl_state.core.transform.namespaces import parse_namespace_mapping
    from kubectl_state.core.transform.selectors import parse_label_selector
    from kubectl_state.core.workflows.migrate import DEFAULT_PAUSE_RULES, MigrateOptions, parse_pause_rules

    p = module.params
    if p["selector"]:
        parse_label_selector(p["selector"])  # a typo fails here, before any request
    return MigrateOptions(
        namespaces=tuple(dict.fromkeys(p["namespaces"])),
        label_selector=p["selector"],
        include_resources=tuple(p["include_resources"]),
        exclude_resources=tuple(p["exclude_resources"]),
        namespace_mapping=parse_namespace_mapping(f"{old}:{new}" for old, new in p["namespace_mapping"].items()),
        move=p["move"],
        dry_run=module.check_mode,
        pause_rules=DEFAULT_PAUSE_RULES if p["pause_rules"] is None else parse_pause_rules(p["pause_rules"]),
        keep=None if module.check_mode else p["keep"],
        existing=p["existing"],
        concurrency=p["concurrency"],
        timeout=p["timeout"],
        journal=journal,
    )


def run_migration(module):
    import os
    from pathlib import Path

    from kubectl_state.core.kube.client import KubeClient
    from kubectl_state.core.workflows.migrate import default_journal_path, migrate

    p = module.params
    migrate_options(module, None)  # options are checked before any connection
    pool = max(p["concurrency"], 4)
    target_kubeconfig = p["to_kubeconfig"] or p["kubeconfig"]
    source = kube_client(module, pool_size=pool)
    target = KubeClient.from_kubeconfig(target_kubeconfig, p["to_context"], pool_size=pool)
    with source, target:
        journal = Path(p["journal"]) if p["journal"] else default_journal_path(source.server, target.server, os.environ)
        report = migrate(source, target, migrate_options(module, journal))
    doc = report.to_dict()
    summary = doc["summary"]
    # A pause is undone before the module returns, so it is no change; a re-run that finds every
    # object already in the target changes nothing.
    changed = not report.dry_run and bool(
        summary["deletedFromSource"] or any(item["outcome"] in ("created", "updated") for item in doc["objects"]))
    result = dict(changed=changed, summary=summary, report=doc)
    if report.failed:
        module.fail_json(msg=report.error or "the migration did not complete: see report",
                         error="PartialFailure", exit_status=1, **result)
    return result


def main():
    module = new_module(
        dict(
            to_kubeconfig=dict(type="path"),
            to_context=dict(type="str"),
            **SELECTION_OPTIONS,
            namespace_mapping=dict(type="dict", default={}),
            move=dict(type="bool", default=False),
            pause_rules=dict(type="list", elements="dict"),
            keep=dict(type="path"),
            existing=dict(type="str", default="fail", choices=["skip", "update", "fail"]),
            concurrency=dict(type="int", default=8),
            timeout=dict(type="float", default=300.0),
            journal=dict(type="path"),
        ),
    )
    with core_errors(module):
        result = run_migration(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
