#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: state_import
short_description: Restore a kubectl-state archive into a cluster, owners first
version_added: 0.1.0
description:
  - Verifies the archive at O(path) on the host that runs the module, plans the restore (CRDs, namespaces, storage,
    RBAC, service accounts, secrets, config maps, ..., then the rest, owners before their dependents) and writes
    every object with server-side apply, as C(kubectl state import PATH) does.
  - Objects that exist already are skipped, updated or failed as O(existing) says; objects already as the archive
    has them are unchanged, so a repeated run changes nothing.
  - Fails when any object failed, with the whole report in RV(report).
author:
  - kubectl-state developers (@kubectl-state)
options:
  path:
    description:
      - The archive, a directory or a C(.tar.gz).
    type: path
    required: true
  namespace_mapping:
    description:
      - Restore namespace KEY as VALUE; references that carry namespaces are rewritten too.
    type: dict
    default: {}
  include_status:
    description:
      - Also write status (through the status subresource) where the archive has it.
    type: bool
    default: false
  existing:
    description:
      - An object that exists and differs from the archive is skipped (V(skip)), updated with server-side apply
        (V(update)), or counted as failed (V(fail)).
    type: str
    choices: [skip, update, fail]
    default: skip
  force_conflicts:
    description:
      - With O(existing=update), take over fields that other field managers own.
    type: bool
    default: false
  orphan_missing_owners:
    description:
      - Restore objects whose owner is neither in the archive nor in the cluster, without that owner reference.
    type: bool
    default: false
  identity:
    description:
      - age identity file to decrypt the archive's encrypted Secrets.
    type: path
  concurrency:
    description:
      - Objects written at once.
    type: int
    default: 8
  timeout:
    description:
      - Seconds to wait for restored CRDs to become Established.
    type: float
    default: 300.0
  journal:
    description:
      - Journal file recording what this import has done, so an interrupted one can continue with O(resume).
    type: path
  resume:
    description:
      - Continue an interrupted import from O(journal).
    type: bool
    default: false
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
  - kubectl_state.control_plane.selection
attributes:
  check_mode:
    support: full
    description: A server-side dry run (C(dryRun=All)) of every write; the report says what would happen.
  diff_mode:
    support: full
    description: The plan, step by step, each object with its outcome.
"""

EXAMPLES = r"""
- name: Restore the shop backup into a copy of its namespace
  kubectl_state.control_plane.state_import:
    path: /var/backups/k8s/shop.tar.gz
    namespace_mapping:
      shop: shop-copy
    namespaces: [shop]
    identity: /etc/kubectl-state/age.key
    kubeconfig: /etc/kubernetes/admin.conf
"""

RETURN = r"""
counts:
  description: Objects by outcome.
  returned: always
  type: dict
  sample: {"created": 12, "updated": 0, "unchanged": 3, "skipped": 1, "failed": 0}
report:
  description: >-
    The import report as C(kubectl state import -o json) prints it: every object with its outcome
    (created, updated, unchanged, skipped, failed) and the reason.
  returned: always
  type: dict
"""

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    SELECTION_OPTIONS,
    core_errors,
    kube_client,
    new_module,
)


def plan_text(plan, outcomes):
    lines = []
    for number, step in enumerate(plan.steps, start=1):
        lines.append(f"step {number}: {step.tier_name} ({len(step.objects)} objects)")
        for obj in step.objects:
            where = f"{obj.id.namespace}/{obj.id.name}" if obj.id.namespace else obj.id.name
            lines.append(f"  {obj.kind} {where}: {outcomes.get(obj.id, 'planned')}")
    return "".join(line + "\n" for line in lines)


def restore(module):
    from pathlib import Path

    from kubectl_state.core.archive.secrets import AgeDecrypter
    from kubectl_state.core.kube.discovery import discover
    from kubectl_state.core.plan.report import Outcome
    from kubectl_state.core.transform.namespaces import parse_namespace_mapping
    from kubectl_state.core.workflows.restore.importer import ImportOptions, import_plan, journal_header, plan_import
    from kubectl_state.core.workflows.restore.source import read_archive

    p = module.params
    if p["resume"] and (module.check_mode or not p["journal"]):
        module.fail_json(msg="resume continues a real import from its journal: it needs journal, and no check mode")
    options = ImportOptions(
        dry_run="server" if module.check_mode else "none",
        existing=p["existing"],
        force_conflicts=p["force_conflicts"],
        namespace_mapping=parse_namespace_mapping(f"{old}:{new}" for old, new in p["namespace_mapping"].items()),
        namespaces=tuple(dict.fromkeys(p["namespaces"])),
        label_selector=p["selector"],
        include_resources=tuple(p["include_resources"]),
        exclude_resources=tuple(p["exclude_resources"]),
        include_status=p["include_status"],
        concurrency=p["concurrency"],
        resume=p["resume"],
        timeout=p["timeout"],
        orphan_missing_owners=p["orphan_missing_owners"],
    )
    decrypter = AgeDecrypter.from_identity_file(p["identity"]) if p["identity"] else None
    source = read_archive(p["path"], decrypter=decrypter)
    with kube_client(module, pool_size=max(options.concurrency, 4)) as kube:
        discovery = discover(kube)
        plan = plan_import(source, options, discovery)
        report = import_plan(kube, discovery, plan, options, source=source,
                             journal_path=Path(p["journal"]) if p["journal"] else None,
                             journal_header=journal_header(source, kube.server, options))
    outcomes = {r.id: str(r.outcome) for r in report.results}
    result = dict(
        changed=any(r.outcome in (Outcome.CREATED, Outcome.UPDATED) for r in report.results),
        counts=report.counts(),
        report=report.to_dict(),
    )
    if module._diff:
        result["diff"] = dict(before="", after=plan_text(plan, outcomes), before_header=p["path"],
                              after_header=f"plan for {kube.server}")
    if report.failed:
        module.fail_json(msg=f"{len(report.failed)} of {len(report.results)} objects failed",
                         error="PartialFailure", exit_status=1, **result)
    return result


def main():
    module = new_module(
        dict(
            path=dict(type="path", required=True),
            namespace_mapping=dict(type="dict", default={}),
            **SELECTION_OPTIONS,
            include_status=dict(type="bool", default=False),
            existing=dict(type="str", default="skip", choices=["skip", "update", "fail"]),
            force_conflicts=dict(type="bool", default=False),
            orphan_missing_owners=dict(type="bool", default=False),
            identity=dict(type="path"),
            concurrency=dict(type="int", default=8),
            timeout=dict(type="float", default=300.0),
            journal=dict(type="path"),
            resume=dict(type="bool", default=False),
        ),
    )
    with core_errors(module):
        result = restore(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
