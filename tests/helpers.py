"""Helpers shared by the tests of kubectl-state's own commands (export, import, diff...).

`run_cli` runs `kubectl state` in-process with captured streams; the others build the
objects those tests export and restore, through the real kubectl and a kubeconfig only, so
they work on the API test server and on a real cluster alike.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import yaml

from kubectl_state.cli.env import Environment
from kubectl_state.cli.main import main
from tests.apiserver.testing import kubectl, manifests


def run_cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """`kubectl state ARGV...` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Environment(stdout=out, stderr=err, stdin=io.StringIO(stdin)))
    return code, out.getvalue(), err.getvalue()


def create(kubeconfig: str, *docs: dict[str, Any]) -> list[dict[str, Any]]:
    """`kubectl create` the documents; the created objects as the server returned them."""
    out = kubectl(kubeconfig, "create", "-f", "-", "-o", "json", stdin=manifests(*docs)).stdout
    # kubectl prints one JSON document per created object, back to back.
    decoder, found, index = json.JSONDecoder(), [], 0
    while index < len(out.rstrip()):
        obj, end = decoder.raw_decode(out, index)
        found.append(obj)
        index = end
        while index < len(out) and out[index].isspace():
            index += 1
    return found


def owner_ref(obj: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An ownerReferences entry pointing at `obj` (as controllers write them)."""
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": controller, "blockOwnerDeletion": True}


def create_widget_crd(kubeconfig: str, group: str) -> str:
    """A namespaced `widgets.<group>` CRD that keeps any fields, waited for until Established."""
    name = f"widgets.{group}"
    create(kubeconfig, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    })
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return name


def read_dir_archive(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A directory archive's manifest and its objects by path (read plainly, for assertions)."""
    manifest = json.loads((path / "manifest.json").read_text())
    objects = {e["path"]: yaml.safe_load((path / e["path"]).read_text()) for e in manifest["objects"]}
    return manifest, objects
