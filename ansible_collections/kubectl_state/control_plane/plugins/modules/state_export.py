#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: state_export
short_description: Export a cluster's resources, cleaned, into a kubectl-state archive
version_added: 0.1.0
description:
  - Lists every selected resource of the cluster from the Kubernetes API, cleans each object of what the cluster
    sets itself, and writes them into an archive at O(path) on the host that runs the module, as
    C(kubectl state export PATH) does. The archive appears only once complete.
  - An archive already at O(path) is left alone (and described) unless O(overwrite), so a repeated run changes nothing.
author:
  - kubectl-state developers (@kubectl-state)
options:
  path:
    description:
      - The archive. A name ending in C(.tar.gz) or C(.tgz) writes one compressed file, anything else a directory.
    type: path
    required: true
  include_cluster_resources:
    description:
      - Cluster-scoped objects. V(auto) exports all of them when all namespaces are exported, else only those the
        exported objects refer to (their namespaces, CRDs, cluster roles, storage and priority classes, volumes).
    type: str
    choices: [auto, 'true', 'false']
    default: auto
  include_status:
    description:
      - Keep the status of objects.
    type: bool
    default: false
  keep_last_applied:
    description:
      - Keep the C(kubectl.kubernetes.io/last-applied-configuration) annotation.
    type: bool
    default: false
  secrets:
    description:
      - Secrets are included as they are (V(include)), left out (V(skip)), or have their data encrypted with age to
        O(recipients) (V(encrypt)).
    type: str
    choices: [include, skip, encrypt]
    default: include
  recipients:
    description:
      - age public keys (V(age1...)) to encrypt Secrets to, with O(secrets=encrypt).
    type: list
    elements: str
    default: []
  concurrency:
    description:
      - Collections listed at once.
    type: int
    default: 8
  page_size:
    description:
      - Objects per list request.
    type: int
    default: 500
  ignore_forbidden:
    description:
      - Skip resources the credentials may not list (each reported in RV(warnings)) instead of failing.
    type: bool
    default: false
  overwrite:
    description:
      - Replace an archive already at O(path) with a new export.
    type: bool
    default: false
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
  - kubectl_state.control_plane.selection
attributes:
  check_mode:
    support: full
    description: >-
      Runs the whole export (discovery, every list, the cleaning) and counts what would be written, writing it
      nowhere; so it takes as long as an export and fails where an export would.
  diff_mode:
    support: none
    description: An export creates a new archive; RV(archive) describes it.
"""

EXAMPLES = r"""
- name: Back up the shop namespaces with encrypted Secrets
  kubectl_state.control_plane.state_export:
    path: "/var/backups/k8s/shop-{{ now(utc=true, fmt='%Y%m%d') }}.tar.gz"
    namespaces: [shop, billing]
    secrets: encrypt
    recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
    kubeconfig: /etc/kubernetes/admin.conf

- name: See what a full export would hold, writing nothing
  kubectl_state.control_plane.state_export:
    path: /tmp/unused.tar.gz
  check_mode: true
  register: preview
"""

RETURN = r"""
path:
  description: The archive.
  returned: always
  type: str
objects:
  description: Objects exported (or, in check mode, that would be); null when an existing archive was kept.
  returned: always
  type: int
resources:
  description: Resources listed; null when an existing archive was kept.
  returned: always
  type: int
skipped:
  description: Objects left out, by reason (derived by the cluster, owned by a controller, secrets-skipped, ...).
  returned: always
  type: dict
warnings:
  description: Problems met that did not stop the export (resources skipped as forbidden, ...).
  returned: always
  type: list
  elements: str
seconds:
  description: How long the export took.
  returned: always
  type: float
archive:
  description: >-
    The archive at O(path) as C(kubectl state inspect -o json) describes it (createdAt, source, objects,
    byResource, byNamespace, skipped, ...); null in check mode when no archive is there.
  returned: always
  type: dict
"""

import io
import os
from pathlib import Path

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import (
    SELECTION_OPTIONS,
    core_errors,
    kube_client,
    new_module,
)


def occupied(path):
    """Whether something an export would not simply fill is at `path` (an empty dir or file is free)."""
    if os.path.isdir(path) and not os.path.islink(path):
        return bool(os.listdir(path))
    return os.path.lexists(path) and (os.path.islink(path) or os.path.getsize(path) > 0)


def export(module):
    from kubectl_state.core.archive.manifest import Source
    from kubectl_state.core.archive.stores import check_target, format_for_path
    from kubectl_state.core.archive.stream import YamlStreamWriter
    from kubectl_state.core.archive.summary import inspect
    from kubectl_state.core.archive.writer import open_archive_writer
    from kubectl_state.core.workflows.export import ExportOptions, check_options, export_cluster, secrets_encrypter

    p = module.params
    path = os.path.abspath(p["path"])
    result = dict(changed=False, path=path, objects=None, resources=None, skipped={}, warnings=[], seconds=0.0,
                  archive=None)
    if occupied(path) and not p["overwrite"]:
        # Already exported: describing it (which also validates its manifest) is the whole job.
        result["archive"] = inspect(path).to_dict()
        return result
    options = ExportOptions(
        namespaces=tuple(dict.fromkeys(p["namespaces"])),
        label_selector=p["selector"],
        include_resources=tuple(p["include_resources"]),
        exclude_resources=tuple(p["exclude_resources"]),
        include_cluster_resources=p["include_cluster_resources"],
        include_status=p["include_status"],
        keep_last_applied=p["keep_last_applied"],
        secrets=p["secrets"],
        concurrency=p["concurrency"],
        page_size=p["page_size"],
        ignore_forbidden=p["ignore_forbidden"],
    )
    check_options(options)
    encrypter = secrets_encrypter(options.secrets, p["recipients"])
    with kube_client(module, pool_size=max(options.concurrency, 4)) as kube:
        if module.check_mode:
            # Where the archive would go must be writable now, as it will be checked then.
            check_target(Path(path), format_for_path(path), p["overwrite"])
            # The whole export, into a stream that keeps nothing: every count is real, nothing is written.
            sink = YamlStreamWriter(_Discard(), encryption=encrypter)
        else:
            version = kube.server_version()
            source = Source(server=kube.server, kubernetes_version=version.get("gitVersion", ""),
                            context=p["context"])
            sink = open_archive_writer(path, source=source, filters=options.filters(), overwrite=p["overwrite"],
                                       encryption=encrypter)
        with sink:
            summary = export_cluster(kube, sink, options)
    result.update(summary.as_dict())
    result["changed"] = True
    if not module.check_mode:
        result["archive"] = inspect(path).to_dict()
    return result


class _Discard(io.TextIOBase):
    """A text stream that takes everything and keeps nothing."""

    def write(self, text):
        return len(text)


def main():
    module = new_module(
        dict(
            path=dict(type="path", required=True),
            **SELECTION_OPTIONS,
            include_cluster_resources=dict(type="str", default="auto", choices=["auto", "true", "false"]),
            include_status=dict(type="bool", default=False),
            keep_last_applied=dict(type="bool", default=False),
            secrets=dict(type="str", default="include", choices=["include", "skip", "encrypt"]),
            recipients=dict(type="list", elements="str", default=[]),
            concurrency=dict(type="int", default=8),
            page_size=dict(type="int", default=500),
            ignore_forbidden=dict(type="bool", default=False),
            overwrite=dict(type="bool", default=False),
        ),
    )
    with core_errors(module):
        result = export(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
